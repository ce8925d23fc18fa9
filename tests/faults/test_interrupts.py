"""Interrupted training and saving: Ctrl-C inside a step, Ctrl-C and ``kill -9`` of a real
training process (the resumed run is bit-identical to an uninterrupted one), and a crash between
any two renames of a checkpoint save."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import rbmvae.basics.atomic
from rbmvae.data import read_idx_directory
from rbmvae.models import RBM
from rbmvae.training import TrainingInterrupted, fit
from rbmvae.training.checkpoint import (
    META_FILE,
    WEIGHTS_FILE,
    load_model,
    load_training_state,
    save_model,
)
from rbmvae.training.objectives import ContrastiveDivergence


def test_ctrl_c_inside_a_step_is_honoured_at_its_end(tmp_path, monkeypatch, write_dataset):
    """A real SIGINT landing inside a step (random numbers drawn, update not yet applied) stops
    training after that step, so the saved state resumes bit for bit."""
    write_dataset(tmp_path / "data")
    data = read_idx_directory(tmp_path / "data")  # 4 steps per epoch
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
# Ctrl-C and kill -9 in a real process


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
def reference_run(tmp_path_factory, write_dataset):
    """The uninterrupted run every interrupted one must reproduce."""
    root = tmp_path_factory.mktemp("reference")
    data = root / "data"
    write_dataset(data, n_train=750, n_test=20)
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
# a crash between two renames


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

        monkeypatch.setattr(rbmvae.basics.atomic.os, "replace", replace)
        try:
            save_model(new, directory, {"marker": "new"})
            finished = True
        except _Crash:
            finished = False
        monkeypatch.setattr(rbmvae.basics.atomic.os, "replace", real_replace)
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
