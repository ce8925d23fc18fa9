import json

import pytest
import torch

from rbmvae.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "rbm"
    assert (
        main(
            [
                "train",
                "rbm",
                "--hidden",
                "20",
                "--epochs",
                "2",
                "--out",
                str(out),
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    return out


def test_train_writes_a_checkpoint(trained):
    meta = json.loads((trained / "model.json").read_text())
    assert meta["kind"] == "rbm" and meta["config"]["n_hidden"] == 20
    assert meta["epochs_completed"] == 2


def test_train_refuses_to_overwrite(trained, run_cli, assert_cli_error):
    assert_cli_error(
        run_cli("train", "rbm", "--hidden", "20", "--epochs", "1", "--out", trained, "--quiet"),
        "already holds a model",
    )


def test_inpaint_json_and_grid(trained, tmp_path, run_cli):
    out = tmp_path / "grid.png"
    code, stdout, _ = run_cli(
        "inpaint",
        "--model",
        str(trained),
        "--missing",
        "0.5",
        "--n",
        "8",
        "--steps",
        "20",
        "--out",
        str(out),
        "--json",
    )
    assert code == 0
    result = json.loads(stdout)
    assert result["missing_pixels"] == 8 * 392 and result["n_images"] == 8
    assert 0 < result["mse_model"] < 1 and 0 < result["mse_training_mean_fill"] < 1
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inpaint_chains_from_the_neighbours(trained, tmp_path, run_cli):
    args = ["inpaint", "--model", str(trained), "--missing", "0.8", "--n", "6", "--steps", "6"]
    args += ["--out", str(tmp_path / "grid.png"), "--json"]
    code, stdout, _ = run_cli(*args, "--chains", "3", "--start", "neighbours")
    assert code == 0
    result = json.loads(stdout)
    assert result["chains"] == 3 and result["start"] == "neighbours"
    assert result["mse_model"] < result["mse_training_mean_fill"]
    code, _, stderr = run_cli(*args, "--start", "random")
    assert code != 0 and "invalid choice: 'random'" in stderr


def test_inpaint_half_mask(trained, tmp_path, run_cli):
    code, stdout, _ = run_cli(
        "inpaint",
        "--model",
        str(trained),
        "--missing",
        "half:top",
        "--n",
        "4",
        "--steps",
        "10",
        "--out",
        str(tmp_path / "h.png"),
        "--json",
    )
    assert code == 0 and json.loads(stdout)["missing_pixels"] == 4 * 392


def test_sample(trained, tmp_path, run_cli):
    out = tmp_path / "s.png"
    code, _, _ = run_cli("sample", "--model", trained, "--n", "9", "--steps", "10", "--out", out)
    assert code == 0 and out.stat().st_size > 100


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "rbm", "--hidden", "0"], "must be a positive integer"),
        (["train", "rbm", "--epochs", "-1"], "must be a positive integer"),
        (["train", "rbm", "--batch-size", "0"], "must be a positive integer"),
        (["inpaint", "--model", "x", "--missing", "1.0"], "outside [0, 1)"),
        (["inpaint", "--model", "x", "--missing", "-0.2"], "outside [0, 1)"),
        (["train", "rbm", "--method", "gibbs"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv, message, run_cli, assert_cli_error):
    assert_cli_error(run_cli(*argv), message)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "rbm", "--dataset", "imagenet", "--out", "{tmp}/a"], "unknown data set"),
        (["train", "rbm", "--device", "tpu", "--out", "{tmp}/b"], "unknown device"),
        (["inpaint", "--model", "{tmp}/missing"], "model directory not found"),
        (["data", "download", "mnist-sample"], "not downloadable"),
    ],
)
def test_runtime_errors_exit_2_with_one_line(argv, message, tmp_path, run_cli, assert_cli_error):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert_cli_error(run_cli(*argv), message)


def test_cuda_refused_without_cuda(tmp_path, run_cli, assert_cli_error):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    argv = ["train", "rbm", "--device", "cuda", "--out", tmp_path / "c"]
    assert_cli_error(run_cli(*argv), "CUDA is not available")


def test_unwritable_output(tmp_path, run_cli, assert_cli_error):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_cli_error(run_cli("train", "rbm", "--out", blocker / "sub", "--quiet"))


def test_data_info(run_cli):
    code, out, _ = run_cli("data", "info", "mnist-sample")
    info = json.loads(out)
    assert code == 0 and info["n_train"] == 5000 and info["n_test"] == 10000
