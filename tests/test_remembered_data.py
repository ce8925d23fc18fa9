"""Small fixes of the command line: a checkpoint remembers where its data came from, ``data
info`` takes ``--dataset`` like every other command, and progress off a terminal is one line per
epoch."""

from __future__ import annotations

import shutil

import rbmvae


def test_a_model_trained_with_data_dir_needs_no_data_dir_later(
    tmp_path, write_dataset, run_cli, assert_cli_error
):
    data = tmp_path / "my-digits"
    write_dataset(data, n_train=60, n_test=20)
    out = tmp_path / "model"
    args = ["train", "rbm", "--hidden", "5", "--epochs", "1", "--quiet"]
    assert run_cli(*args, "--data-dir", data, "--out", out)[0] == 0
    code, text, err = run_cli(
        "inpaint", "--model", out, "--n", "4", "--steps", "2", "--out", tmp_path / "g.png"
    )
    assert code == 0, err
    assert "4 test images" in text and (tmp_path / "g.png").exists()
    # moved away: one line naming the data set and what to do
    shutil.move(data, tmp_path / "elsewhere")
    result = run_cli("inpaint", "--model", out, "--out", tmp_path / "h.png")
    assert_cli_error(result, "dir:my-digits", "--data-dir")
    # given again explicitly, it works again
    code, _, err = run_cli(
        "inpaint",
        "--model",
        out,
        "--n",
        "2",
        "--steps",
        "2",
        "--data-dir",
        tmp_path / "elsewhere",
        "--out",
        tmp_path / "h.png",
    )
    assert code == 0, err


def test_data_info_takes_dataset_like_every_command(run_cli):
    by_option = run_cli("data", "info", "--dataset", "mnist-sample")
    positional = run_cli("data", "info", "mnist-sample")
    assert by_option.code == positional.code == 0
    assert by_option.out == positional.out and '"n_train": 5000' in by_option.out


def test_progress_off_a_terminal_is_one_line_per_epoch(capsys, write_dataset, tmp_path):
    write_dataset(tmp_path / "d")
    data = rbmvae.load_dataset(None, tmp_path / "d")
    rbmvae.fit(rbmvae.RBM(64, 4), data, epochs=3, progress=True)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err
    assert [line.split(":")[0] for line in lines] == ["train rbm"] * 3
    assert [line.split()[3] for line in lines] == ["1/3", "2/3", "3/3"]
    rbmvae.fit(rbmvae.RBM(64, 4), data, epochs=2, progress=False)
    assert capsys.readouterr().err == ""
