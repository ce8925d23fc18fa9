import dataclasses

import pytest
import torch

import rbmvae
from rbmvae.basics.errors import ConfigError, TrainingError
from rbmvae.data import Dataset
from rbmvae.models import RBM
from rbmvae.training import TrainConfig, TrainingInterrupted, fit
from rbmvae.training.checkpoint import load_model
from rbmvae.training.objectives import ContrastiveDivergence


def small(data: Dataset, n_train=600, n_test=300) -> Dataset:
    return dataclasses.replace(
        data,
        train_images=data.train_images[:n_train],
        train_labels=data.train_labels[:n_train],
        test_images=data.test_images[:n_test],
        test_labels=data.test_labels[:n_test],
    )


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_training_lowers_reconstruction_error(sample_data, method):
    rbm = RBM(784, 50)
    history = fit(rbm, small(sample_data, 2000), epochs=4, method=method, progress=False)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    errors = [r["reconstruction_error"] for r in history]
    assert errors[-1] < errors[0]
    for record in history:
        for key in ("loss", "pseudo_log_likelihood", "free_energy_gap", "train_seconds"):
            assert key in record and torch.isfinite(torch.tensor(record[key]))
    # the pseudo-log-likelihood of binary MNIST digits lies between log(2^-784) and 0
    assert -784 * 0.7 < history[-1]["pseudo_log_likelihood"] < 0


def test_same_seed_same_weights_other_seed_other_weights(sample_data):
    data = small(sample_data)
    runs = []
    for seed in (3, 3, 4):
        rbm = RBM(784, 16)
        fit(rbm, data, epochs=2, seed=seed, progress=False)
        runs.append(rbm.weight.detach().clone())
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_checkpoints_hold_model_and_history(sample_data, tmp_path):
    rbm = RBM(784, 16)
    history = fit(rbm, small(sample_data), epochs=2, out_dir=tmp_path / "m", progress=False)
    loaded, meta = load_model(tmp_path / "m")
    assert torch.equal(loaded.weight, rbm.weight)
    assert meta["kind"] == "rbm" and meta["config"] == {"n_visible": 784, "n_hidden": 16}
    assert meta["history"] == history and meta["epochs_completed"] == 2
    assert meta["train_config"]["method"] == "cd" and meta["dataset"]["name"] == "mnist-sample"
    assert (tmp_path / "m" / "training_state.safetensors").exists()


def test_ctrl_c_then_resume_is_bit_identical(sample_data, tmp_path, monkeypatch):
    data = small(sample_data)
    reference = RBM(784, 16)
    reference_history = fit(reference, data, epochs=3, progress=False, seed=9)

    calls = {"n": 0}
    original_step = ContrastiveDivergence.step

    def interrupting_step(self, model, batch, generator):
        calls["n"] += 1
        if calls["n"] == 9:  # mid-way through the second epoch (6 steps per epoch)
            raise KeyboardInterrupt
        return original_step(self, model, batch, generator)

    monkeypatch.setattr(ContrastiveDivergence, "step", interrupting_step)
    interrupted = RBM(784, 16)
    with pytest.raises(TrainingInterrupted, match="epoch 2, step 2"):
        fit(interrupted, data, epochs=3, out_dir=tmp_path / "run", progress=False, seed=9)
    monkeypatch.setattr(ContrastiveDivergence, "step", original_step)

    resumed = RBM(784, 16)
    history = fit(
        resumed, data, epochs=3, out_dir=tmp_path / "run", resume=True, progress=False, seed=9
    )
    for name, tensor in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], tensor), name
    strip = ("train_seconds", "monitor_seconds")
    assert [{k: v for k, v in r.items() if k not in strip} for r in history] == [
        {k: v for k, v in r.items() if k not in strip} for r in reference_history
    ]


def test_resume_refuses_other_settings(sample_data, tmp_path):
    data = small(sample_data)
    fit(RBM(784, 8), data, epochs=1, out_dir=tmp_path, progress=False)
    with pytest.raises(rbmvae.CheckpointError, match="other settings"):
        fit(
            RBM(784, 8),
            data,
            epochs=2,
            learning_rate=0.5,
            out_dir=tmp_path,
            resume=True,
            progress=False,
        )
    with pytest.raises(rbmvae.CheckpointError, match="rbm model"):
        fit(RBM(784, 9), data, epochs=2, out_dir=tmp_path, resume=True, progress=False)


def test_non_finite_loss_stops_with_epoch_and_step(sample_data, tmp_path):
    data = small(sample_data)
    fit(RBM(784, 8), data, epochs=1, out_dir=tmp_path, progress=False)
    good, _ = load_model(tmp_path)
    with pytest.raises(
        TrainingError, match=r"non-finite (loss|weight) at epoch 1, step [2-6]; no epoch"
    ):
        fit(RBM(784, 8), data, epochs=1, progress=False, out_dir=tmp_path, learning_rate=1e30)
    still, _ = load_model(tmp_path)
    assert torch.equal(still.weight, good.weight)


def test_config_validation():
    with pytest.raises(ConfigError, match="epochs must be a positive integer"):
        TrainConfig.defaults_for("rbm", epochs=0)
    with pytest.raises(ConfigError, match="batch size must be a positive integer"):
        TrainConfig.defaults_for("rbm", batch_size=-1)
    with pytest.raises(ConfigError, match="unknown method 'xx'"):
        TrainConfig.defaults_for("rbm", method="xx")
    with pytest.raises(ConfigError, match="unknown training setting"):
        TrainConfig.defaults_for("rbm", colour="red")
    config = TrainConfig.defaults_for("rbm", epochs=10)
    assert config.learning_rate_at(0) == config.learning_rate
    assert config.learning_rate_at(5) == pytest.approx(config.learning_rate / 2)
    assert config.momentum_at(0) == 0.5 and config.momentum_at(5) == 0.9


def test_sgd_is_torch_optims_sgd():
    """rbmvae's SGD makes torch.optim.SGD's updates (momentum switched on mid-run, weight decay on
    one group) and reads and writes its state_dict."""
    from rbmvae.training.loop import SGD

    g = torch.Generator().manual_seed(0)
    theirs_params = [torch.randn(5, 3, generator=g, requires_grad=True) for _ in range(2)]
    ours_params = [p.detach().clone().requires_grad_() for p in theirs_params]

    def groups(params):
        return [{"params": [params[0]], "weight_decay": 0.01}, {"params": [params[1]]}]

    theirs = torch.optim.SGD(groups(theirs_params), lr=0.1, momentum=0.0)
    ours = SGD(groups(ours_params), lr=0.1, momentum=0.0)
    for step in range(6):
        grads = [torch.randn(5, 3, generator=g) for _ in range(2)]
        for optimizer, params in ((theirs, theirs_params), (ours, ours_params)):
            for group in optimizer.param_groups:
                group["lr"], group["momentum"] = 0.1 / (step + 1), 0.0 if step < 2 else 0.9
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad.clone()
            optimizer.step()
        for mine, expected in zip(ours_params, theirs_params, strict=True):
            torch.testing.assert_close(mine, expected)
    # a state saved by torch.optim.SGD continues here exactly as there, and back
    restored = [p.detach().clone().requires_grad_() for p in theirs_params]
    again = SGD(groups(restored), lr=0.5, momentum=0.5)
    again.load_state_dict(theirs.state_dict())
    assert [g["momentum"] for g in again.param_groups] == [0.9, 0.9]
    twin_params = [p.detach().clone().requires_grad_() for p in restored]
    twin = torch.optim.SGD(groups(twin_params), lr=0.5)
    twin.load_state_dict(again.state_dict())
    for param, expected in zip(twin_params, theirs_params, strict=True):
        torch.testing.assert_close(
            twin.state[param]["momentum_buffer"], theirs.state[expected]["momentum_buffer"]
        )
    grads = [torch.randn(5, 3, generator=g) for _ in range(2)]
    for optimizer, params in ((theirs, theirs_params), (again, restored)):
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad.clone()
        optimizer.step()
    for mine, expected in zip(restored, theirs_params, strict=True):
        torch.testing.assert_close(mine, expected)
