"""A model directory used by two processes at once, and a checkpoint holding non-finite numbers:
each ends in one line and exit status 2, and nothing already written is touched."""

from __future__ import annotations

import subprocess
import sys
import time

import torch

from rbmvae.basics.errors import BusyError, CheckpointError
from rbmvae.models import RBM
from rbmvae.training.checkpoint import LOCK_FILE, directory_lock, load_model, save_model

HOLDER = """
import sys, time
from rbmvae.training.checkpoint import directory_lock
with directory_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def _hold(directory):
    """A second process holding ``directory``'s lock until killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_second_process_is_refused_and_writes_nothing(
    tmp_path, write_dataset, run_cli, assert_cli_error, snapshot
):
    data = tmp_path / "data"
    write_dataset(data)
    out = tmp_path / "model"
    args = ["train", "rbm", "--hidden", "4", "--epochs", "1", "--data-dir", data, "--quiet"]
    assert run_cli(*args, "--out", out)[0] == 0

    def files():
        return {name: data for name, data in snapshot(out).items() if name != LOCK_FILE}

    before = files()
    holder = _hold(out)
    try:
        result = run_cli(*args, "--out", out, "--force")
        assert_cli_error(result, "another process is using this model directory")
        assert files() == before  # the first run's files, byte for byte
    finally:
        holder.kill()
        holder.wait()
    # once the other process is gone the directory is free again
    assert run_cli(*args, "--out", out, "--force")[0] == 0


def test_the_lock_is_reentrant_in_one_process_and_exclusive_across(tmp_path):
    with directory_lock(tmp_path) as held, directory_lock(tmp_path):
        assert (held / LOCK_FILE).exists()
    holder = _hold(tmp_path)
    try:
        started = time.perf_counter()
        try:
            with directory_lock(tmp_path):
                raise AssertionError("the lock of another process was taken")
        except BusyError as error:
            assert "another process" in str(error) and "\n" not in str(error)
        assert time.perf_counter() - started < 5  # refused at once, not after a wait
    finally:
        holder.kill()
        holder.wait()


def test_a_well_formed_checkpoint_with_nan_weights_is_refused(tmp_path, run_cli, assert_cli_error):
    rbm = RBM(16, 3)
    with torch.no_grad():
        rbm.weight[2, 1] = float("nan")
        rbm.hidden_bias[0] = float("inf")
    save_model(rbm, tmp_path / "bad")  # a valid file whose SHA-256 matches: only the values are bad
    try:
        load_model(tmp_path / "bad")
    except CheckpointError as error:
        message = str(error)
    else:
        raise AssertionError("a checkpoint with NaN weights was loaded")
    assert "hidden_bias, weight hold NaN or infinite values" in message
    result = run_cli("sample", "--model", tmp_path / "bad", "--n", "2", "--out", tmp_path / "s.png")
    assert_cli_error(result, "NaN or infinite")
    assert not (tmp_path / "s.png").exists()
