"""The numerical core on every available device (the CPU, and CUDA where there is a GPU).

Each test repeats a check of the CPU suite against an independent computation, with the model
and data on ``device``; on a machine with a GPU, ``benchmarks/gpu_check.sh`` runs this file with
``-m device``. Float32 on CUDA may use TF32 products: tolerances allow for that.
"""

from __future__ import annotations

import itertools

import pytest
import torch

import rbmvae
from rbmvae.basics.rng import make_generator
from rbmvae.likelihood import (
    ais_log_partition,
    iwae_log_likelihood,
    log_likelihood_quadrature,
    log_partition_exact,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
pytestmark = pytest.mark.device


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def _states(n, device, dtype=torch.float64):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=dtype, device=device)


def _brute_log_z(rbm):
    v = _states(rbm.n_visible, rbm.weight.device)
    h = _states(rbm.n_hidden, rbm.weight.device)
    energy = -(v @ rbm.visible_bias)[:, None] - (h @ rbm.hidden_bias)[None] - v @ rbm.weight @ h.T
    return float(torch.logsumexp(-energy.flatten(), 0).detach())


def test_exact_log_z_and_ais_agree_with_enumeration(device, tiny_rbm):
    rbm = tiny_rbm(n_visible=9, n_hidden=7, scale=1.0).to(device)
    exact = _brute_log_z(rbm)
    assert log_partition_exact(rbm) == pytest.approx(exact, abs=1e-9)
    # a base far from the RBM (zeros) and few betas: only an unbiased estimator gets close
    ais = ais_log_partition(
        rbm,
        torch.zeros(9, dtype=torch.float64, device=device),
        n_runs=4000,
        n_betas=200,
        generator=make_generator(0, device),
    )
    assert ais.log_z == pytest.approx(exact, abs=0.05)


def test_clamped_gibbs_matches_the_exact_conditional(device, tiny_rbm):
    rbm = tiny_rbm(n_visible=6, n_hidden=4, scale=1.5).to(device)
    observed = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64, device=device)
    mask = torch.tensor([False, False, False, True, True, True], device=device)
    # exact p(v_m | v_o) by enumerating the three missing pixels
    completions = _states(3, device)
    visible = observed.repeat(8, 1)
    visible[:, 3:] = completions
    weights = torch.softmax(-rbm.free_energy(visible), 0)
    exact = (weights[:, None] * completions).sum(0)
    n = 4000
    result = rbmvae.clamped_gibbs(
        rbm,
        observed.repeat(n, 1),
        mask.repeat(n, 1),
        steps=60,
        average_last=40,
        generator=make_generator(1, device),
    )
    estimate = result.images[:, 3:].mean(0)
    torch.testing.assert_close(estimate, exact, atol=0.01, rtol=0)


def test_vae_gradient_is_autograds_and_iwae_meets_quadrature(device, tiny_vae):
    vae = tiny_vae(n_visible=12, n_hidden=10, n_latent=2)
    with torch.no_grad():  # a rough encoder, as after some training (as in test_evaluation)
        vae.encoder_log_var.weight.mul_(0.05)
        vae.encoder_log_var.bias.fill_(-0.3)
        vae.encoder_mean.weight.mul_(0.2)
        vae.decoder_output.weight.mul_(0.5)
    vae = vae.to(device)
    x = (torch.rand(30, 12, generator=torch.Generator().manual_seed(2)) < 0.4).double().to(device)
    loss, grads = rbmvae.models.vae.negative_elbo_gradients(vae, x, make_generator(3, device))
    auto = rbmvae.models.vae.negative_elbo(vae, x, make_generator(3, device))[0].mean()
    for (name, _), grad in zip(
        vae.named_parameters(), torch.autograd.grad(auto, list(vae.parameters())), strict=True
    ):
        torch.testing.assert_close(grads[name], grad, msg=name)
    exact = log_likelihood_quadrature(vae, x, grid_size=201, limit=7.0).mean()
    estimate = iwae_log_likelihood(vae, x, k=5000, generator=make_generator(4, device))
    assert estimate == pytest.approx(float(exact), abs=0.05)


@pytest.mark.parametrize("kind", ["rbm", "vae"])
def test_training_runs_and_is_reproducible_on_the_device(device, kind, write_dataset, tmp_path):
    write_dataset(tmp_path / "d", n_train=64, n_test=16)
    data = rbmvae.load_dataset(None, tmp_path / "d")
    build = {"rbm": lambda: rbmvae.RBM(64, 8), "vae": lambda: rbmvae.VAE(64, 16, 2)}[kind]
    runs = []
    for _ in range(2):
        model = build().to(device)
        history = rbmvae.fit(model, data, epochs=2, batch_size=16, progress=False)
        runs.append(torch.cat([p.detach().flatten().cpu() for p in model.parameters()]))
        assert len(history) == 2 and all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.equal(runs[0], runs[1])  # same seed, same device: the same weights
