"""A NaN or infinity in training stops it with one line and keeps the last good checkpoint."""

import pytest
import torch

from rbmvae.basics.errors import TrainingError
from rbmvae.models import RBM
from rbmvae.training.checkpoint import META_FILE, STATE_FILE, WEIGHTS_FILE, load_model
from rbmvae.training.loop import _check_finite
from rbmvae.training.objectives import ContrastiveDivergence


def _train_argv(data, out):
    return [
        "train", "rbm", "--data-dir", data, "--hidden", "4", "--epochs", "3",
        "--batch-size", "10", "--out", out, "--quiet", "--device", "cpu",
    ]  # fmt: skip


@pytest.mark.parametrize("what", ["loss", "weight"])
def test_non_finite_value_stops_and_keeps_the_last_good_checkpoint(
    what, tmp_path, monkeypatch, write_dataset, snapshot, run_cli, assert_cli_error
):
    data = tmp_path / "data"
    write_dataset(data)  # 40 images, batches of 10: 4 steps per epoch
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
        run_cli(*_train_argv(data, out)),
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
