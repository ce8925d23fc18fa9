"""Damaged, edited, foreign or missing checkpoint and training-state files: refused at the command
line in one line, quickly, and never by unpickling anything."""

import json
import os
import pickle
import time

import pytest
import torch

from rbmvae.basics.errors import CheckpointError
from rbmvae.training.checkpoint import (
    META_FILE,
    STATE_FILE,
    WEIGHTS_FILE,
    load_model,
    load_training_state,
    save_training_state,
)


def _truncate(d, corrupt):
    corrupt.truncate(d / WEIGHTS_FILE, -40)
    return "model.safetensors: truncated or corrupt"


def _edit_weights(d, corrupt):
    corrupt.flip_byte(d / WEIGHTS_FILE)
    return "do not match the SHA-256 in model.json"


def _edit_json(d, **changes):
    path = d / META_FILE
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def _json_of_another_file(d, corrupt):
    (d / META_FILE).write_text(json.dumps({"format": "some-other-tool", "version": 3}))
    return "not an rbmvae checkpoint description"


def _json_list(d, corrupt):
    (d / META_FILE).write_text("[1, 2, 3]")
    return "not an rbmvae checkpoint description"


def _json_unknown_kind(d, corrupt):
    _edit_json(d, kind="gan")
    return "unknown model kind 'gan'"


def _json_of_another_model(d, corrupt):
    _edit_json(d, kind="vae", config={"n_visible": 64, "n_hidden": 4, "n_latent": 2})
    return "tensors do not match a vae model"


def _json_newer(d, corrupt):
    _edit_json(d, format_version=2)
    return "format version 2 is newer than this rbmvae reads (1); upgrade rbmvae"


def _json_bool_version(d, corrupt):
    _edit_json(d, format_version=True)
    return "invalid format_version True"


def _json_huge_model(d, corrupt):
    _edit_json(d, config={"n_visible": 64, "n_hidden": 10**9})
    return "expected (", "1000000000", "the files do not belong together"


def _json_negative_size(d, corrupt):
    _edit_json(d, config={"n_visible": 64, "n_hidden": -3})
    return "n_hidden must be a positive integer, got -3"


def _missing_json(d, corrupt):
    (d / META_FILE).unlink()
    return "model.json: missing"


def _missing_weights(d, corrupt):
    (d / WEIGHTS_FILE).unlink()
    return "model.safetensors: missing weights file"


def _pickle_as_weights(d, corrupt):
    (d / WEIGHTS_FILE).write_bytes(pickle.dumps(_Evil()))
    return "model.safetensors: truncated or corrupt"


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


CHECKPOINT_FAULTS = {
    "truncated-weights": _truncate,
    "edited-weights": _edit_weights,
    "json-of-another-tool": _json_of_another_file,
    "json-not-an-object": _json_list,
    "json-unknown-kind": _json_unknown_kind,
    "json-of-another-model": _json_of_another_model,
    "json-newer-version": _json_newer,
    "json-bool-version": _json_bool_version,
    "json-huge-model": _json_huge_model,
    "json-negative-size": _json_negative_size,
    "missing-json": _missing_json,
    "missing-weights": _missing_weights,
    "pickle-as-weights": _pickle_as_weights,
}


@pytest.mark.parametrize("fault", list(CHECKPOINT_FAULTS))
def test_bad_checkpoint_at_the_command_line(
    fault, tiny_model, tmp_path, monkeypatch, corrupt, run_cli, assert_cli_error
):
    monkeypatch.chdir(tmp_path)
    expected = CHECKPOINT_FAULTS[fault](tiny_model, corrupt)
    expected = (expected,) if isinstance(expected, str) else expected
    started = time.perf_counter()
    argv = ["inpaint", "--model", tiny_model, "--data-dir", tmp_path / "tiny-data"]
    assert_cli_error(run_cli(*argv, "--n", "2", "--steps", "2"), *expected)
    assert time.perf_counter() - started < 5  # refused before allocating a 10^9-unit model
    assert not (tmp_path / "pwned-by-pickle").exists()
    assert not (tmp_path / "inpainting.png").exists()


def test_another_model_kind_is_refused_by_vae_commands(tiny_model, run_cli, assert_cli_error):
    assert_cli_error(
        run_cli("manifold", "--model", tiny_model),
        "holds an RBM, 4 hidden; manifold needs a VAE",
    )


def test_no_pickle_is_ever_loaded(tiny_model, tmp_path, monkeypatch, run_cli):
    """Loading, inpainting and sampling run with every unpickling entry point disabled."""

    def forbidden(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    class NoUnpickler:
        def __init__(self, *args, **kwargs):
            forbidden()

    for module, name in [(pickle, "load"), (pickle, "loads"), (torch, "load")]:
        monkeypatch.setattr(module, name, forbidden)
    monkeypatch.setattr(pickle, "Unpickler", NoUnpickler)
    data = tmp_path / "tiny-data"
    png = tmp_path / "x.png"
    argv = ["inpaint", "--model", tiny_model, "--data-dir", data, "--n", "2", "--steps", "2"]
    assert run_cli(*argv, "--out", png)[0] == 0
    sample = ["sample", "--model", tiny_model, "--n", "2", "--steps", "2"]
    assert run_cli(*sample, "--out", png)[0] == 0
    out = tmp_path / "trained"
    argv = ["train", "rbm", "--data-dir", data, "--hidden", "3", "--quiet", "--out", out]
    assert run_cli(*argv, "--epochs", "2")[0] == 0
    assert run_cli(*argv, "--epochs", "3", "--resume")[0] == 0
    assert load_model(out)[1]["epochs_completed"] == 3


def _state_truncated(d, corrupt):
    corrupt.truncate(d / STATE_FILE, -16)
    return "training_state.safetensors: truncated or corrupt"


def _state_edited(d, corrupt):
    corrupt.flip_byte(d / STATE_FILE)
    return "training_state.safetensors: tensors do not match their SHA-256"


def _state_missing(d, corrupt):
    (d / STATE_FILE).unlink()
    return "nothing to resume"


@pytest.mark.parametrize("fault", [_state_truncated, _state_edited, _state_missing])
def test_bad_training_state_at_the_command_line(
    fault, tmp_path, write_dataset, corrupt, run_cli, assert_cli_error
):
    data = tmp_path / "data"
    write_dataset(data)
    out = tmp_path / "m"
    argv = ["train", "rbm", "--data-dir", data, "--hidden", "3", "--quiet", "--out", out]
    assert run_cli(*argv, "--epochs", "1")[0] == 0
    expected = fault(out, corrupt)
    assert_cli_error(run_cli(*argv, "--epochs", "2", "--resume"), expected)


def test_training_state_without_its_fields_is_refused(tmp_path):
    save_training_state(tmp_path, {"generator": torch.zeros(3, dtype=torch.uint8)}, {"epoch": 1})
    with pytest.raises(CheckpointError, match="training state lacks valid kind, model_config"):
        load_training_state(tmp_path)
