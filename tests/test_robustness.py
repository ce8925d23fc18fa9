"""Bad input, interruptions and faults (issue 7): one test (or more) per row of the matrix.

Rows that tests/test_data.py, test_checkpoint.py, test_training.py and test_cli.py already check
at the level of the Python API are checked here at the command line: exit status 2, exactly one
line on stderr, starting ``rbmvae: error:``, and no traceback.
"""

import gzip
import hashlib
import http.server
import json
import os
import pickle
import random
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

import rbmvae.atomic
import rbmvae.data
from rbmvae import figures
from rbmvae.checkpoint import (
    META_FILE,
    STATE_FILE,
    WEIGHTS_FILE,
    load_model,
    load_training_state,
    save_model,
)
from rbmvae.cli import main
from rbmvae.data import (
    STANDARD_FILES,
    RemoteDataset,
    fetch_files,
    read_idx,
    read_idx_directory,
    write_idx,
)
from rbmvae.errors import CheckpointError, ConfigError, DataError, TrainingError
from rbmvae.models import RBM, VAE
from rbmvae.report import write_report
from rbmvae.training import ContrastiveDivergence, TrainingInterrupted, _check_finite, fit

# ------------------------------------------------------------------------------------------------
# helpers


def run(capsys, *argv):
    """Run the command line in-process; returns (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as stop:  # argparse usage errors
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_cli_error(result, *fragments):
    """Exit status 2, one line on stderr starting ``rbmvae: error:``, naming ``fragments``."""
    code, _, err = result
    assert code == 2, err
    assert err.startswith("rbmvae: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def write_tiny(directory, n_train=40, n_test=12, shape=(8, 8), gz=True, seed=0):
    """A small data set of random images under the four standard names."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, array in arrays.items():
        write_idx(directory / (STANDARD_FILES[key] + (".gz" if gz else "")), array)
    return directory


def file_of(directory, key):
    return Path(directory) / (STANDARD_FILES[key] + ".gz")


def snapshot(directory):
    """Every file in ``directory`` with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir()) if p.is_file()}


def temp_files(directory):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------------------------------------
# Data


def _break_missing(d):
    file_of(d, "test_labels").unlink()
    return "missing t10k-labels-idx1-ubyte", "put the four standard files there"


def _break_truncated_gzip(d):
    path = file_of(d, "train_images")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "train-images-idx3-ubyte.gz: unreadable", REFETCH


def _break_magic(d):
    path = file_of(d, "train_labels")
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(b"\x12\x34" + raw[2:]))
    return "wrong magic number 0x1234", REFETCH


def _break_dimensions(d):
    write_idx(file_of(d, "test_labels"), np.zeros((12, 2, 2), dtype=np.uint8))
    return "t10k-labels-idx1-ubyte.gz: wrong number of dimensions 3 (expected 1)", REFETCH


def _break_counts(d):
    write_idx(file_of(d, "train_labels"), np.zeros(39, dtype=np.uint8))
    return "39 labels for 40 images", "the two files must come from the same set"


def _break_sizes(d):
    write_idx(file_of(d, "test_images"), np.zeros((12, 6, 8), dtype=np.uint8))
    return "images are (6, 8) but the training images are (8, 8)", "need the same size"


def _break_empty(d):
    for path in list(Path(d).iterdir()):
        path.unlink()
    return "missing train-images-idx3-ubyte", "put the four standard files there"


REFETCH = "replace it with a valid copy (delete it and fetch it again)"

DATA_FAULTS = {
    "missing-file": _break_missing,
    "truncated-gzip": _break_truncated_gzip,
    "wrong-magic": _break_magic,
    "wrong-dimensions": _break_dimensions,
    "count-mismatch": _break_counts,
    "train-test-size-mismatch": _break_sizes,
    "empty-directory": _break_empty,
}


@pytest.mark.parametrize("command", ["data-info", "data-info-positional", "train"])
@pytest.mark.parametrize("fault", list(DATA_FAULTS))
def test_bad_data_directory_is_one_clear_line(fault, command, tmp_path, capsys):
    directory = write_tiny(tmp_path / "data")
    what, todo = DATA_FAULTS[fault](directory)
    argv = {
        "data-info": ["data", "info", "--data-dir", directory],
        "data-info-positional": ["data", "info", directory],
        "train": ["train", "rbm", "--data-dir", directory, "--out", tmp_path / "m", "--quiet"],
    }[command]
    assert_cli_error(run(capsys, *argv), what, todo)
    assert not (tmp_path / "m" / META_FILE).exists()


def test_missing_file_or_directory_is_refused(tmp_path, capsys):
    with pytest.raises(DataError, match=r"nowhere\.gz: file not found; check the path"):
        read_idx(tmp_path / "nowhere.gz")
    assert_cli_error(
        run(capsys, "data", "info", "--data-dir", tmp_path / "nope"),
        "nope: data directory not found; check the --data-dir path",
    )


def test_gzip_detected_by_content_not_name(tmp_path):
    """A gzip file without .gz (or a raw file with it) is read, not misreported as corrupt."""
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    (tmp_path / "a-no-suffix").write_bytes((tmp_path / "a.gz").read_bytes())
    write_idx(tmp_path / "b", array)
    (tmp_path / "b.gz").write_bytes((tmp_path / "b").read_bytes())
    for name in ("a-no-suffix", "b.gz"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)


def test_any_image_size_works_everywhere_when_consistent(tmp_path, capsys, monkeypatch):
    """8x6 images: `data info`, `train rbm --data-dir`, then `inpaint` and `sample` draw 8x6."""
    directory = write_tiny(tmp_path / "data", shape=(8, 6))
    code, out, _ = run(capsys, "data", "info", "--data-dir", directory)
    assert code == 0 and json.loads(out)["image_shape"] == [8, 6]
    model_dir = tmp_path / "rbm86"
    argv = ["train", "rbm", "--data-dir", directory, "--hidden", "5", "--epochs", "1"]
    code, _, err = run(capsys, *argv, "--batch-size", "8", "--out", model_dir, "--quiet")
    assert code == 0, err
    model, meta = load_model(model_dir)
    assert model.n_visible == 48 and meta["dataset"]["image_shape"] == [8, 6]

    drawn = []
    original_tile = figures.tile_images

    def spy(images, image_shape=(28, 28), *args, **kwargs):
        drawn.append((tuple(image_shape), tuple(np.shape(images))))
        return original_tile(images, image_shape, *args, **kwargs)

    monkeypatch.setattr(figures, "tile_images", spy)
    png = tmp_path / "inpaint.png"
    argv = ["inpaint", "--model", model_dir, "--data-dir", directory, "--missing", "square:3"]
    code, out, err = run(capsys, *argv, "--n", "4", "--steps", "4", "--out", png, "--json")
    assert code == 0, err
    assert json.loads(out)["missing_pixels"] == 4 * 9
    assert drawn == [((8, 6), (12, 48, 3))]  # original, masked and inpainted rows of 4
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn.clear()
    sample = ["sample", "--model", model_dir, "--n", "6", "--steps", "3"]
    code, _, err = run(capsys, *sample, "--out", tmp_path / "s.png")
    assert code == 0, err
    assert drawn == [((8, 6), (6, 48))]

    # the model's data must be given, and data of another size is refused in one line
    assert_cli_error(
        run(capsys, "inpaint", "--model", model_dir, "--out", png),
        "trained on dir:data; give its directory with --data-dir",
    )
    assert_cli_error(
        run(capsys, "inpaint", "--model", model_dir, "--dataset", "mnist-sample", "--out", png),
        "the model takes 48 pixels but mnist-sample has 28x28 = 784",
    )


def test_data_dir_is_not_silently_ignored(tmp_path, capsys):
    """`--data-dir` alone reads that directory; with the embedded sample it is refused."""
    directory = write_tiny(tmp_path / "data", n_train=7, n_test=3)
    code, out, _ = run(capsys, "data", "info", "--data-dir", directory)
    assert code == 0 and json.loads(out)["n_train"] == 7
    out_dir = tmp_path / "m"
    argv = ["train", "rbm", "--data-dir", directory, "--hidden", "3", "--epochs", "1"]
    assert run(capsys, *argv, "--out", out_dir, "--quiet")[0] == 0
    assert json.loads((out_dir / META_FILE).read_text())["dataset"]["n_train"] == 7
    assert_cli_error(
        run(capsys, "data", "info", "mnist-sample", "--data-dir", directory),
        "mnist-sample is embedded in the package and takes no --data-dir",
    )


# --- downloads, against a local HTTP server --------------------------------------------------


class _Server:
    """A local HTTP server whose responses a test sets per path (bytes, and a claimed length)."""

    def __init__(self):
        self.routes = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                if name not in routes:
                    self.send_error(404)
                    return
                body, claimed = routes[name]
                self.send_response(200)
                self.send_header("Content-Length", str(claimed))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True  # a short body then a closed connection: cut off

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def serve(self, directory, cut_off=()):
        """Serve the four files of ``directory``; those in ``cut_off`` stop halfway."""
        for stem in STANDARD_FILES.values():
            body = (Path(directory) / (stem + ".gz")).read_bytes()
            sent = body[: len(body) // 2] if stem in cut_off else body
            self.routes[stem + ".gz"] = (sent, len(body))


@pytest.fixture
def server():
    served = _Server()
    served.thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


def _md5s(directory):
    return {
        key: hashlib.md5((Path(directory) / (stem + ".gz")).read_bytes()).hexdigest()
        for key, stem in STANDARD_FILES.items()
    }


def test_download_cut_off_midway_leaves_nothing(server, tmp_path):
    source = write_tiny(tmp_path / "source", n_train=400)
    server.serve(source, cut_off={"train-labels-idx1-ubyte"})
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as caught:
        fetch_files(_md5s(source), [server.url], cache)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("train-labels-idx1-ubyte.gz: download failed")
    assert "IncompleteRead" in message and "retry" in message
    assert not (cache / "train-labels-idx1-ubyte.gz").exists()
    assert sorted(p.name for p in cache.iterdir()) == ["train-images-idx3-ubyte.gz"]
    # the complete file is then fetched on the next try, and verified
    server.serve(source)
    found = fetch_files(_md5s(source), [server.url], cache)
    assert read_idx_directory(cache).train_images.shape == (400, 64) and len(found) == 4


@pytest.mark.parametrize("fault", ["wrong-hash", "cut-off"])
def test_download_failures_at_the_command_line(fault, server, tmp_path, capsys, monkeypatch):
    source = write_tiny(tmp_path / "source")
    md5 = _md5s(source)
    if fault == "wrong-hash":
        md5["test_images"] = "0" * 32
        server.serve(source)
    else:
        server.serve(source, cut_off={"t10k-images-idx3-ubyte"})
    fake = RemoteDataset(name="mnist", mirrors=(server.url,), md5=md5)
    monkeypatch.setitem(rbmvae.data.REMOTE_DATASETS, "mnist", fake)
    cache = tmp_path / "cache"
    code, _, err = run(capsys, "data", "download", "mnist", "--data-dir", cache)
    errors = [line for line in err.splitlines() if line.startswith("rbmvae: error:")]
    assert code == 2 and len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    assert "Traceback" not in err
    assert "t10k-images-idx3-ubyte.gz: download failed" in errors[0]
    assert ("hash mismatch" if fault == "wrong-hash" else "IncompleteRead") in errors[0]
    assert not (cache / "t10k-images-idx3-ubyte.gz").exists()
    assert not [p for p in cache.iterdir() if p.name.startswith("t10k-images")]


# ------------------------------------------------------------------------------------------------
# Arguments


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inpaint", "--model", "m", "--missing", "nan"], "outside [0, 1)"),
        (["inpaint", "--model", "m", "--missing", "1"], "outside [0, 1)"),
        (["inpaint", "--model", "m", "--missing", "lots"], "is not a fraction"),
        (["train", "vae", "--latent", "0"], "--latent: must be a positive integer, got 0"),
        (["train", "vae", "--hidden", "-4"], "--hidden: must be a positive integer, got -4"),
        (["train", "vae", "--epochs", "0"], "--epochs: must be a positive integer, got 0"),
        (["train", "vae", "--batch-size", "0"], "--batch-size: must be a positive integer"),
        (["train", "rbm", "--k", "0"], "--k: must be a positive integer, got 0"),
        (["train", "rbm", "--epochs", "2.5"], "'2.5' is not an integer"),
        (["train", "rbm", "--lr", "0"], "--lr: must be positive"),
        (["sample", "--model", "m", "--n", "0"], "--n: must be a positive integer"),
    ],
)
def test_out_of_range_arguments(argv, message, capsys):
    assert_cli_error(run(capsys, *argv), message, "--help)")


def test_model_sizes_are_checked_in_the_api():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="n_hidden must be a positive integer"):
            RBM(784, bad)
        with pytest.raises(ConfigError, match="n_latent must be a positive integer"):
            VAE(784, 16, bad)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "info", "imagenet"], "unknown data set 'imagenet'; choose one of"),
        (["train", "vae", "--dataset", "cifar", "--out", "{tmp}/v"], "unknown data set 'cifar'"),
        (["sample", "--model", "{model}", "--device", "tpu"], "unknown device 'tpu'"),
        (["inpaint", "--model", "{model}", "--device", "gpu"], "unknown device 'gpu'"),
    ],
)
def test_unknown_data_set_or_device(argv, message, tiny_model, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{model}", str(tiny_model)) for a in argv]
    assert_cli_error(run(capsys, *argv), message)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "rbm", "--device", "cuda", "--out", "{tmp}/c"],
        ["train", "vae", "--device", "cuda:1", "--out", "{tmp}/c"],
        ["sample", "--model", "{model}", "--device", "cuda"],
    ],
)
def test_cuda_without_cuda(argv, tiny_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a GPU machine
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{model}", str(tiny_model)) for a in argv]
    assert_cli_error(run(capsys, *argv), "CUDA is not available here; use --device cpu")
    assert not (tmp_path / "c").exists()


@pytest.fixture
def tiny_model(tmp_path):
    """A small RBM checkpoint on 8x8 images, with its data directory beside it."""
    directory = write_tiny(tmp_path / "tiny-data")
    dataset = {"name": f"dir:{directory.name}", "image_shape": [8, 8]}
    save_model(RBM(64, 4), tmp_path / "tiny-model", {"dataset": dataset, "marker": "old"})
    return tmp_path / "tiny-model"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("train-out-is-a-file", "exists and is not a directory"),
        ("train-out-under-a-file", "cannot create output directory"),
        ("png-under-a-file", "a-file: is a file, not a directory; choose another output path"),
        ("png-is-a-directory", "is a directory; give a file name"),
        ("download-dir-under-a-file", "cannot create the data directory"),
    ],
)
def test_output_path_that_cannot_be_written(case, message, tiny_model, tmp_path, capsys):
    # we run as root, so read-only permissions mean nothing: a path under a regular file can
    # never be created, whoever asks
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    sample = ["sample", "--model", tiny_model, "--n", "2", "--steps", "1", "--out"]
    argv = {
        "train-out-is-a-file": ["train", "rbm", "--out", blocker, "--quiet"],
        "train-out-under-a-file": ["train", "rbm", "--out", blocker / "sub" / "m", "--quiet"],
        "png-under-a-file": [*sample, blocker / "s.png"],
        "png-is-a-directory": [*sample, tmp_path],
        "download-dir-under-a-file": ["data", "download", "mnist", "--data-dir", blocker / "x"],
    }[case]
    assert_cli_error(run(capsys, *argv), message)
    assert blocker.read_text() == "keep me"
    assert not temp_files(tmp_path)


# ------------------------------------------------------------------------------------------------
# Checkpoints


def _truncate(d):
    path = d / WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[:-40])
    return "model.safetensors: truncated or corrupt"


def _edit_weights(d):
    path = d / WEIGHTS_FILE
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0x01
    path.write_bytes(bytes(blob))
    return "do not match the SHA-256 in model.json"


def _edit_json(d, **changes):
    path = d / META_FILE
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def _json_of_another_file(d):
    (d / META_FILE).write_text(json.dumps({"format": "some-other-tool", "version": 3}))
    return "not an rbmvae checkpoint description"


def _json_list(d):
    (d / META_FILE).write_text("[1, 2, 3]")
    return "not an rbmvae checkpoint description"


def _json_unknown_kind(d):
    _edit_json(d, kind="gan")
    return "unknown model kind 'gan'"


def _json_of_another_model(d):
    _edit_json(d, kind="vae", config={"n_visible": 64, "n_hidden": 4, "n_latent": 2})
    return "tensors do not match a vae model"


def _json_newer(d):
    _edit_json(d, format_version=2)
    return "format version 2 is newer than this rbmvae reads (1); upgrade rbmvae"


def _json_bool_version(d):
    _edit_json(d, format_version=True)
    return "invalid format_version True"


def _json_huge_model(d):
    _edit_json(d, config={"n_visible": 64, "n_hidden": 10**9})
    return "expected (", "1000000000", "the files do not belong together"


def _json_negative_size(d):
    _edit_json(d, config={"n_visible": 64, "n_hidden": -3})
    return "n_hidden must be a positive integer, got -3"


def _missing_json(d):
    (d / META_FILE).unlink()
    return "model.json: missing"


def _missing_weights(d):
    (d / WEIGHTS_FILE).unlink()
    return "model.safetensors: missing weights file"


def _pickle_as_weights(d):
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
def test_bad_checkpoint_at_the_command_line(fault, tiny_model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = CHECKPOINT_FAULTS[fault](tiny_model)
    expected = (expected,) if isinstance(expected, str) else expected
    started = time.perf_counter()
    argv = ["inpaint", "--model", tiny_model, "--data-dir", tmp_path / "tiny-data"]
    assert_cli_error(run(capsys, *argv, "--n", "2", "--steps", "2"), *expected)
    assert time.perf_counter() - started < 5  # refused before allocating a 10^9-unit model
    assert not (tmp_path / "pwned-by-pickle").exists()
    assert not (tmp_path / "inpainting.png").exists()


def test_another_model_kind_is_refused_by_vae_commands(tiny_model, capsys):
    assert_cli_error(
        run(capsys, "manifold", "--model", tiny_model),
        "holds a rbm model; manifold needs a VAE",
    )


def test_no_pickle_is_ever_loaded(tiny_model, tmp_path, capsys, monkeypatch):
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
    assert run(capsys, *argv, "--out", png)[0] == 0
    sample = ["sample", "--model", tiny_model, "--n", "2", "--steps", "2"]
    assert run(capsys, *sample, "--out", png)[0] == 0
    out = tmp_path / "trained"
    argv = ["train", "rbm", "--data-dir", data, "--hidden", "3", "--quiet", "--out", out]
    assert run(capsys, *argv, "--epochs", "2")[0] == 0
    assert run(capsys, *argv, "--epochs", "3", "--resume")[0] == 0
    assert load_model(out)[1]["epochs_completed"] == 3


def _state_truncated(d):
    path = d / STATE_FILE
    path.write_bytes(path.read_bytes()[:-16])
    return "training_state.safetensors: truncated or corrupt"


def _state_edited(d):
    path = d / STATE_FILE
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0x01
    path.write_bytes(bytes(blob))
    return "training_state.safetensors: tensors do not match their SHA-256"


def _state_missing(d):
    (d / STATE_FILE).unlink()
    return "nothing to resume"


@pytest.mark.parametrize("fault", [_state_truncated, _state_edited, _state_missing])
def test_bad_training_state_at_the_command_line(fault, tmp_path, capsys):
    data = write_tiny(tmp_path / "data")
    out = tmp_path / "m"
    argv = ["train", "rbm", "--data-dir", data, "--hidden", "3", "--quiet", "--out", out]
    assert run(capsys, *argv, "--epochs", "1")[0] == 0
    expected = fault(out)
    assert_cli_error(run(capsys, *argv, "--epochs", "2", "--resume"), expected)


def test_training_state_without_its_fields_is_refused(tmp_path):
    from rbmvae.checkpoint import save_training_state

    save_training_state(tmp_path, {"generator": torch.zeros(3, dtype=torch.uint8)}, {"epoch": 1})
    with pytest.raises(CheckpointError, match="training state lacks valid kind, model_config"):
        load_training_state(tmp_path)


# ------------------------------------------------------------------------------------------------
# Training: non-finite values


def _train_argv(data, out):
    return [
        "train", "rbm", "--data-dir", data, "--hidden", "4", "--epochs", "3",
        "--batch-size", "10", "--out", out, "--quiet", "--device", "cpu",
    ]  # fmt: skip


@pytest.mark.parametrize("what", ["loss", "weight"])
def test_non_finite_value_stops_and_keeps_the_last_good_checkpoint(
    what, tmp_path, capsys, monkeypatch
):
    data = write_tiny(tmp_path / "data")  # 40 images, batches of 10: 4 steps per epoch
    out = tmp_path / "m"
    original = ContrastiveDivergence.step
    calls = {"n": 0}
    before = {}

    def failing_step(self, model, batch, generator):
        calls["n"] += 1
        loss = original(self, model, batch, generator)
        if calls["n"] == 4 + 3:  # epoch 2, step 3
            before.update(snapshot(out))  # what the last good epoch left on disk
            if what == "loss":
                return torch.tensor(float("nan"))
            model.weight.grad[1, 2] = float("inf")
        return loss

    monkeypatch.setattr(ContrastiveDivergence, "step", failing_step)
    assert_cli_error(
        run(capsys, *_train_argv(data, out)),
        f"non-finite {what} at epoch 2, step 3;",
        f"the last good checkpoint (epoch 1) is kept in {out}",
        "lower the learning rate",
    )
    assert set(before) == {META_FILE, WEIGHTS_FILE, STATE_FILE}
    assert snapshot(out) == before  # byte for byte
    model, meta = load_model(out)
    assert meta["epochs_completed"] == 1 and torch.isfinite(model.weight).all()


def test_weight_check_is_exact():
    """Finite but huge weights pass; one NaN or inf anywhere is caught and named."""
    rbm = RBM(64, 4)
    with torch.no_grad():
        rbm.weight.fill_(3.0e38)  # float32's largest values: their float32 sum would overflow
    _check_finite(rbm, 0, 0, "kept")
    for bad in (float("nan"), float("inf"), float("-inf")):
        with torch.no_grad():
            rbm.hidden_bias[3] = bad
        with pytest.raises(TrainingError, match="non-finite hidden_bias at epoch 1, step 1; kept"):
            _check_finite(rbm, 0, 0, "kept")


def test_ctrl_c_inside_a_step_is_honoured_at_its_end(tmp_path, monkeypatch):
    """A real SIGINT landing inside a step (random numbers drawn, update not yet applied) stops
    training after that step, so the saved state resumes bit for bit."""
    data = read_idx_directory(write_tiny(tmp_path / "data"))  # 4 steps per epoch
    settings_ = {"epochs": 3, "batch_size": 10, "seed": 5, "progress": False}
    reference = RBM(64, 4)
    fit(reference, data, **settings_)
    original = ContrastiveDivergence.step
    calls = {"n": 0}

    def step(self, model, batch, generator):
        calls["n"] += 1
        loss = original(self, model, batch, generator)
        if calls["n"] == 4 + 2:
            os.kill(os.getpid(), signal.SIGINT)  # delivered before this function returns
        return loss

    monkeypatch.setattr(ContrastiveDivergence, "step", step)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match="interrupted at epoch 2, step 2; state saved"):
        fit(RBM(64, 4), data, out_dir=tmp_path / "run", **settings_)
    monkeypatch.setattr(ContrastiveDivergence, "step", original)
    assert signal.getsignal(signal.SIGINT) is handler  # fit put the previous handler back
    resumed = RBM(64, 4)
    fit(resumed, data, out_dir=tmp_path / "run", resume=True, **settings_)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], tensor), name


# ------------------------------------------------------------------------------------------------
# Training: Ctrl-C and kill -9 in a real process


SUB_EPOCHS = 8
SUB_STEPS = 150  # 750 images in batches of 5


def _sub_argv(data, out, *extra):
    return [
        sys.executable, "-m", "rbmvae", "train", "rbm", "--data-dir", str(data),
        "--hidden", "8", "--epochs", str(SUB_EPOCHS), "--batch-size", "5", "--seed", "7",
        "--out", str(out), "--quiet", "--device", "cpu", *extra,
    ]  # fmt: skip


def _sub_env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _run_sub(argv, timeout=120):
    return subprocess.run(argv, capture_output=True, text=True, env=_sub_env(), timeout=timeout)


def _start_then_signal(argv, out, sig, extra_delay=0.0):
    """Start training, wait until the first epoch is saved, then send ``sig``."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_sub_env()
    )
    deadline = time.monotonic() + 90
    while not (out / META_FILE).exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the first epoch never finished"
        time.sleep(0.005)
    time.sleep(extra_delay)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr


def _weights(directory):
    return load_file(str(Path(directory) / WEIGHTS_FILE))


def _assert_same_weights(a, b):
    first, second = _weights(a), _weights(b)
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name  # bit for bit


def _history(directory):
    strip = ("train_seconds", "monitor_seconds")
    meta = json.loads((Path(directory) / META_FILE).read_text())
    return [{k: v for k, v in r.items() if k not in strip} for r in meta["history"]]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """The uninterrupted run every interrupted one must reproduce."""
    root = tmp_path_factory.mktemp("reference")
    data = write_tiny(root / "data", n_train=750, n_test=20)
    result = _run_sub(_sub_argv(data, root / "ref"))
    assert result.returncode == 0, result.stderr
    return data, root / "ref"


def test_ctrl_c_saves_and_resume_is_bit_identical(reference_run, tmp_path):
    data, reference = reference_run
    out = tmp_path / "run"
    code, _, stderr = _start_then_signal(_sub_argv(data, out), out, signal.SIGINT)
    assert code == 130, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith("rbmvae: interrupted at epoch ")
    assert f"state saved in {out}; run the same command with --resume to continue" in stderr
    model, meta = load_model(out)  # a loadable checkpoint
    assert 1 <= meta["epochs_completed"] < SUB_EPOCHS and model.n_hidden == 8
    # the message names where it stopped, and that is where the saved state stands
    epoch, step = map(
        int, re.match(r"rbmvae: interrupted at epoch (\d+), step (\d+);", stderr).groups()
    )
    info = load_training_state(out)[1]
    if step == SUB_STEPS:  # stopped at the end of an epoch
        assert (info["epoch"], info["step"]) == (epoch, 0)
    else:
        assert (info["epoch"], info["step"]) == (epoch - 1, step) and 0 < step < SUB_STEPS
    result = _run_sub(_sub_argv(data, out, "--resume"))
    assert result.returncode == 0, result.stderr
    _assert_same_weights(out, reference)
    assert _history(out) == _history(reference)


def test_kill_9_then_resume_is_bit_identical(reference_run, tmp_path):
    data, reference = reference_run
    out = tmp_path / "run"
    delay = random.Random().uniform(0.0, 0.1)  # anywhere, saves included
    code, _, _ = _start_then_signal(_sub_argv(data, out), out, signal.SIGKILL, delay)
    assert code == -signal.SIGKILL
    # whatever moment the kill hit, what is under the final names is complete
    model, meta = load_model(out)
    assert 1 <= meta["epochs_completed"] <= SUB_EPOCHS
    assert load_training_state(out)[1]["epoch"] >= meta["epochs_completed"]
    result = _run_sub(_sub_argv(data, out, "--resume"))
    assert result.returncode == 0, result.stderr
    _assert_same_weights(out, reference)
    assert _history(out) == _history(reference)


# ------------------------------------------------------------------------------------------------
# Writes


class _Crash(BaseException):
    """Stands for the process dying: nothing after it runs (not even except-Exception blocks)."""


def test_a_crash_between_any_two_renames_leaves_a_loadable_checkpoint(tmp_path, monkeypatch):
    """save_model replaces two files; a crash before any rename leaves old or new, never a mix."""
    old, new = RBM(64, 4), RBM(64, 4)
    with torch.no_grad():
        new.weight.add_(1.0)
    real_replace = os.replace
    outcomes = []
    for crash_at in range(10):
        directory = tmp_path / f"m{crash_at}"
        save_model(old, directory, {"marker": "old"})
        calls = {"n": 0}

        def replace(src, dst, crash_at=crash_at, calls=calls):
            if calls["n"] == crash_at:
                raise _Crash
            calls["n"] += 1
            return real_replace(src, dst)

        monkeypatch.setattr(rbmvae.atomic.os, "replace", replace)
        try:
            save_model(new, directory, {"marker": "new"})
            finished = True
        except _Crash:
            finished = False
        monkeypatch.setattr(rbmvae.atomic.os, "replace", real_replace)
        model, meta = load_model(directory)
        expected = new if meta["marker"] == "new" else old
        assert torch.equal(model.weight, expected.weight), crash_at
        assert "pending_update" not in meta
        outcomes.append(meta["marker"])
        save_model(old, directory, {"marker": "again"})  # and the next save starts from there
        assert load_model(directory)[1]["marker"] == "again"
        if finished:
            break
    # three renames (description with the new one pending, weights, new description): a crash
    # before the first two keeps the old model, a crash before the third gives the new one
    assert outcomes == ["old", "old", "new", "new"]


def _half_then_fail(self, data):
    with open(self, "wb") as handle:
        handle.write(data[: len(data) // 2])
    raise OSError(28, "No space left on device")


def _replace_fails(src, dst):
    raise OSError(5, "Input/output error")


@pytest.mark.parametrize("failure", ["disk-full-midway", "rename-fails"])
@pytest.mark.parametrize("target", ["checkpoint", "figure", "report", "idx"])
def test_failed_write_keeps_the_old_file_and_no_temporary(target, failure, tmp_path, monkeypatch):
    directory = tmp_path / "out"
    directory.mkdir()
    rbm = RBM(64, 4)

    def write(marker):
        if target == "checkpoint":
            save_model(rbm, directory, {"marker": marker})
        elif target == "figure":
            images = torch.full((4, 64), 0.3 if marker == "old" else 0.7)
            figures.save_image_grid(images, directory / "grid.png", (8, 8), title=marker)
        elif target == "report":
            write_report(directory / "report.html", marker, marker, [])
        else:
            value = 1 if marker == "old" else 2
            write_idx(directory / "x.gz", np.full((3, 2, 2), value, dtype=np.uint8))

    write("old")
    before = snapshot(directory)
    if failure == "disk-full-midway":
        monkeypatch.setattr(Path, "write_bytes", _half_then_fail)
        if target == "idx":  # write_idx streams through gzip: make that stream fail midway
            real_write = gzip.GzipFile.write

            def write_half(self, data):
                real_write(self, data[: len(data) // 2])
                raise OSError(28, "No space left on device")

            monkeypatch.setattr(gzip.GzipFile, "write", write_half)
    else:
        monkeypatch.setattr(rbmvae.atomic.os, "replace", _replace_fails)
    with pytest.raises(ConfigError) as caught:
        write("new")
    message = str(caught.value)
    assert "cannot write" in message and "\n" not in message and "previous file" in message
    assert snapshot(directory) == before
    assert not temp_files(directory)
    monkeypatch.undo()
    if target == "checkpoint":
        assert load_model(directory)[1]["marker"] == "old"
    elif target == "idx":
        assert read_idx(directory / "x.gz").max() == 1


def test_write_failure_at_the_command_line(tiny_model, tmp_path, capsys, monkeypatch):
    png = tmp_path / "s.png"
    png.write_bytes(b"old picture")
    monkeypatch.setattr(Path, "write_bytes", _half_then_fail)
    argv = ["sample", "--model", tiny_model, "--n", "2", "--steps", "1", "--out", png]
    assert_cli_error(run(capsys, *argv), "s.png: cannot write (No space left on device)")
    monkeypatch.undo()
    assert png.read_bytes() == b"old picture" and not temp_files(tmp_path)


# ------------------------------------------------------------------------------------------------
# The IDX reader against random and mutated bytes


def _idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    return (
        bytes([0, 0, 8, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )


_SEEDS = [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.arange(7, dtype=np.uint8),
    np.full((5, 28, 28), 200, dtype=np.uint8),
    np.zeros((0, 2, 2), dtype=np.uint8),
]

_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 16)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(None)),
    st.tuples(st.just("ndim"), st.just(0), st.sampled_from([0, 1, 2, 3, 4, 255])),
    st.tuples(
        st.just("dimension"),
        st.integers(1, 4),  # which 32-bit header field after the magic number
        st.sampled_from([0, 1, 255, 2**16, 10**9, 2**31, 2**32 - 1]),
    ),
)


def _mutate(data: bytes, mutations) -> bytes:
    data = bytearray(data)
    for kind, where, what in mutations:
        if kind in ("ndim", "dimension"):
            start = 4 * where
            data.extend(b"\x00" * max(0, start + 4 - len(data)))
            field = bytes([0, 0, 8, what]) if kind == "ndim" else what.to_bytes(4, "big")
            data[start : start + 4] = field
            continue
        position = where % (len(data) + 1)
        if kind == "flip" and position < len(data):
            data[position] ^= 1 << what
        elif kind == "insert":
            data[position:position] = what
        elif kind == "delete":
            del data[position : position + what]
        elif kind == "truncate":
            del data[position:]
    return bytes(data)


def _check_reader(path: Path, expected_ndim=None) -> None:
    """read_idx returns a consistent array or raises DataError; memory stays within the file."""
    size = path.stat().st_size
    gz = path.read_bytes()[:2] == b"\x1f\x8b"
    could_hold = size * 1100 if gz else size  # deflate cannot expand beyond about 1032:1
    tracemalloc.start()
    started = time.perf_counter()
    try:
        array = read_idx(path, expected_ndim=expected_ndim)
    except DataError as error:
        assert "\n" not in str(error) and str(path) in str(error)
        event(re.sub(r"0x\w+|\d[\d,]*", "N", str(error).split(": ", 1)[1].split(";")[0])[:50])
        array = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - started < 2
    assert peak < 3 * could_hold + 256 * 1024, (peak, size)
    if array is not None:
        event("read a valid array")
        assert array.dtype == np.uint8 and array.nbytes <= could_hold
        raw = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
        ndim = raw[3]
        assert array.shape == struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
        assert array.tobytes() == raw[4 + 4 * ndim :]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.sampled_from(range(len(_SEEDS))),
    mutations=st.lists(_mutation, max_size=6),
    compress=st.sampled_from(["raw", "gz-before", "gz-after"]),
    suffix=st.sampled_from(["", ".gz"]),
    expected_ndim=st.sampled_from([None, 1, 3]),
)
@example(seed=0, mutations=[("dimension", 1, 10**9)], compress="raw", suffix="", expected_ndim=3)
@example(seed=2, mutations=[("dimension", 1, 10**9)], compress="gz-after", suffix=".gz",
         expected_ndim=None)  # fmt: skip
@example(  # dimensions whose product wraps around to 0 in 64-bit arithmetic
    seed=0,
    mutations=[("dimension", 1, 2**31), ("dimension", 2, 2**31), ("dimension", 3, 4),
               ("truncate", 16, None)],
    compress="raw", suffix="", expected_ndim=None,
)  # fmt: skip
def test_idx_reader_never_fails_otherwise(
    tmp_path, seed, mutations, compress, suffix, expected_ndim
):
    data = _idx_bytes(_SEEDS[seed])
    if compress == "raw":
        blob = _mutate(data, mutations)
    elif compress == "gz-after":  # a valid gzip stream of a mutated IDX file
        blob = gzip.compress(_mutate(data, mutations))
    else:  # a mutated gzip stream
        blob = _mutate(gzip.compress(data), mutations)
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(blob)
    _check_reader(path, expected_ndim)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=2048), gz=st.booleans())
def test_idx_reader_on_random_bytes(tmp_path, blob, gz):
    path = tmp_path / "random.idx"
    path.write_bytes(gzip.compress(blob) if gz else blob)
    _check_reader(path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("ndim", [1, 3, 255])
def test_header_claiming_a_billion_images_is_refused_before_allocation(tmp_path, gz, ndim):
    dims = [10**9] + [28] * (ndim - 1) if ndim <= 3 else [2**32 - 1] * ndim
    header = bytes([0, 0, 8, ndim]) + struct.pack(f">{ndim}I", *dims)
    blob = header + bytes(1024 - len(header) % 1024)
    path = tmp_path / ("liar.gz" if gz else "liar")
    path.write_bytes(gzip.compress(blob) if gz else blob)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(
        DataError, match="liar(.gz)?: header claims dimensions .* truncated or corrupt"
    ):
        read_idx(path)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 256 * 1024 and elapsed < 0.5, (peak, elapsed)


# ------------------------------------------------------------------------------------------------


def test_python_dash_m_runs_the_command_line():
    result = _run_sub([sys.executable, "-m", "rbmvae", "train", "rbm", "--hidden", "0"])
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "must be a positive integer" in result.stderr
