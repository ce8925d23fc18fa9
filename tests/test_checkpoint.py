import json

import pytest
import torch

from rbmvae.basics.errors import CheckpointError
from rbmvae.models import RBM
from rbmvae.training.checkpoint import META_FILE, WEIGHTS_FILE, load_model, save_model


@pytest.fixture
def saved(tmp_path):
    rbm = RBM(784, 12)
    save_model(rbm, tmp_path / "m", {"seed": 5})
    return rbm, tmp_path / "m"


def test_round_trip_and_metadata(saved):
    rbm, directory = saved
    loaded, meta = load_model(directory)
    for name, tensor in rbm.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
    assert meta["tensors"] == {
        "weight": [784, 12],
        "visible_bias": [784],
        "hidden_bias": [12],
    }
    assert meta["format_version"] == 1 and meta["seed"] == 5 and meta["kind"] == "rbm"
    assert not any(p.name.endswith(".tmp") for p in directory.iterdir())


def test_wrong_kind_is_refused(saved):
    with pytest.raises(CheckpointError, match="holds a rbm model, not a vae model"):
        load_model(saved[1], kind="vae")


def test_edited_weights_are_refused(saved, corrupt):
    corrupt.flip_byte(saved[1] / WEIGHTS_FILE, -3, 0xFF)
    with pytest.raises(CheckpointError, match="do not match the SHA-256"):
        load_model(saved[1])


def test_truncated_weights_are_refused(saved, corrupt):
    corrupt.truncate(saved[1] / WEIGHTS_FILE, 100)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(saved[1])


def test_pickle_is_never_loaded(saved, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    (saved[1] / WEIGHTS_FILE).write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError):
        load_model(saved[1])
    assert not marker.exists()


def test_newer_format_and_unknown_kind_and_missing_files(saved, tmp_path):
    meta_path = saved[1] / META_FILE
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format version 99 is newer"):
        load_model(saved[1])
    meta_path.write_text(json.dumps({**meta, "kind": "gan"}))
    with pytest.raises(CheckpointError, match="unknown model kind 'gan'"):
        load_model(saved[1])
    meta_path.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(saved[1])
    with pytest.raises(CheckpointError, match="model directory not found"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="model.json: missing"):
        load_model(tmp_path / "empty")


def test_shape_mismatch_is_refused(saved):
    meta_path = saved[1] / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["config"]["n_hidden"] = 13
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"tensor '\w+' has shape .*expected"):
        load_model(saved[1])
