"""Out-of-range arguments, unknown data sets and devices, CUDA without CUDA and output paths that
cannot be written: exit status 2 and one line naming the problem, at the command line."""

import os
import subprocess
import sys

import pytest
import torch

from rbmvae.basics.errors import ConfigError
from rbmvae.models import RBM, VAE


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
        (["reproduce", "--jobs", "0"], "--jobs: must be a positive integer, got 0"),
        (["reproduce", "--jobs", "many"], "--jobs: 'many' is not an integer"),
    ],
)
def test_out_of_range_arguments(argv, message, run_cli, assert_cli_error):
    assert_cli_error(run_cli(*argv), message, "--help)")


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
def test_unknown_data_set_or_device(argv, message, tiny_model, tmp_path, run_cli, assert_cli_error):
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{model}", str(tiny_model)) for a in argv]
    assert_cli_error(run_cli(*argv), message)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "rbm", "--device", "cuda", "--out", "{tmp}/c"],
        ["train", "vae", "--device", "cuda:1", "--out", "{tmp}/c"],
        ["sample", "--model", "{model}", "--device", "cuda"],
    ],
)
def test_cuda_without_cuda(argv, tiny_model, tmp_path, monkeypatch, run_cli, assert_cli_error):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a GPU machine
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{model}", str(tiny_model)) for a in argv]
    assert_cli_error(run_cli(*argv), "CUDA is not available here; use --device cpu")
    assert not (tmp_path / "c").exists()


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
def test_output_path_that_cannot_be_written(
    case, message, tiny_model, tmp_path, run_cli, assert_cli_error, temp_files
):
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
    assert_cli_error(run_cli(*argv), message)
    assert blocker.read_text() == "keep me"
    assert not temp_files(tmp_path)


def test_python_dash_m_runs_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "rbmvae", "train", "rbm", "--hidden", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "must be a positive integer" in result.stderr
