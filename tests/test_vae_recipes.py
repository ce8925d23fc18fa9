"""The VAE's training options: the IWAE-k objective, KL warm-up, the decaying learning rates, and
a bit-exact resume with all of them on (Eqs. 2.6-2.8)."""

from __future__ import annotations

import math

import pytest
import torch

from rbmvae.models.vae import VAE, negative_elbo, negative_elbo_gradients
from rbmvae.training import TrainConfig, TrainingInterrupted, fit
from rbmvae.training.objectives.vae import VAEObjective, iwae_loss


def _vae(seed: int = 0) -> VAE:
    vae = VAE(n_visible=12, n_hidden=10, n_latent=3)
    vae.reset_parameters(generator=torch.Generator().manual_seed(seed))
    return vae


def _batch(seed: int = 1) -> torch.Tensor:
    return (torch.rand(16, 12, generator=torch.Generator().manual_seed(seed)) < 0.4).float()


def test_iwae_loss_with_one_sample_is_the_elbo_and_its_gradient_the_hand_written_one():
    vae, x = _vae(), _batch()
    loss = iwae_loss(vae, x, 1, torch.Generator().manual_seed(3))
    expected = negative_elbo(vae, x, torch.Generator().manual_seed(3))[0].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    _, grads = negative_elbo_gradients(vae, x, torch.Generator().manual_seed(3))
    for name, param in vae.named_parameters():
        torch.testing.assert_close(param.grad, grads[name], atol=1e-5, rtol=1e-4)


def test_iwae_bound_rises_with_k():
    vae, x = _vae(), _batch()
    bounds = [
        -float(iwae_loss(vae, x.repeat(50, 1), k, torch.Generator().manual_seed(k)).detach())
        for k in (1, 5, 50)
    ]
    assert bounds[0] < bounds[1] < bounds[2]


def test_kl_weight_rises_linearly_over_the_warm_up():
    objective = VAEObjective(binarize="stochastic", kl_warmup_epochs=2, batch_size=10)
    objective.setup(_vae(), torch.rand(40, 12), torch.Generator().manual_seed(0))  # 4 steps/epoch
    weights = []
    for _ in range(10):
        weights.append(objective.kl_weight())
        objective._steps += 1
    assert weights == pytest.approx([0, 1 / 8, 2 / 8, 3 / 8, 4 / 8, 5 / 8, 6 / 8, 7 / 8, 1, 1])


def test_learning_rate_schedules_end_at_the_final_fraction():
    for schedule in ("cosine", "exponential"):
        config = TrainConfig.defaults_for(
            "vae", epochs=11, lr_schedule=schedule, final_lr_fraction=0.01
        )
        rates = [config.learning_rate_at(e) for e in range(11)]
        assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-5)
        assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    config = TrainConfig.defaults_for("vae", epochs=11, lr_schedule="cosine")
    assert config.learning_rate_at(5) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert math.isclose(TrainConfig.defaults_for("vae").learning_rate_at(7), 1e-3)


def test_ctrl_c_then_resume_is_bit_identical_with_warm_up_and_iwae(
    sample_data, tmp_path, monkeypatch
):
    data = sample_data.subset(600, 100)
    settings = dict(
        epochs=3,
        kl_warmup_epochs=1.5,
        iwae_k=3,
        lr_schedule="cosine",
        binarize="stochastic",
        batch_size=100,
        seed=4,
        progress=False,
    )
    reference = VAE(784, 32, 4)
    reference_history = fit(reference, data, **settings)

    calls = {"n": 0}
    original_step = VAEObjective.step

    def interrupting_step(self, model, batch, generator):
        calls["n"] += 1
        if calls["n"] == 8:  # second epoch, step 2 (6 steps per epoch), still warming up
            raise KeyboardInterrupt
        return original_step(self, model, batch, generator)

    monkeypatch.setattr(VAEObjective, "step", interrupting_step)
    with pytest.raises(TrainingInterrupted, match="epoch 2, step 1"):
        fit(VAE(784, 32, 4), data, out_dir=tmp_path / "run", **settings)
    monkeypatch.setattr(VAEObjective, "step", original_step)
    resumed = VAE(784, 32, 4)
    history = fit(resumed, data, out_dir=tmp_path / "run", resume=True, **settings)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], tensor), name
    strip = ("train_seconds", "monitor_seconds")
    assert [{k: v for k, v in r.items() if k not in strip} for r in history] == [
        {k: v for k, v in r.items() if k not in strip} for r in reference_history
    ]
    assert history[0]["kl_weight"] == pytest.approx(6 / 9)
