"""The VAE's log-likelihood section: standard errors over the test images and, for a 2-D code,
the quadrature headline with IWAE beside it, each checked against an independent computation."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from rbmvae.basics.errors import ConfigError
from rbmvae.basics.rng import make_generator
from rbmvae.evaluation import EvaluationSettings
from rbmvae.evaluation.sections import LIKELIHOODS
from rbmvae.likelihood import elbo, iwae_log_likelihood
from rbmvae.models.vae import VAE


def _tiny_vae(n_latent: int) -> VAE:
    torch.manual_seed(3)
    vae = VAE(n_visible=12, n_hidden=6, n_latent=n_latent)
    with torch.no_grad():  # a posterior narrower than the prior, as a trained model has
        vae.encoder_log_var.bias.fill_(-2.0)
    return vae


def _images(n: int = 40) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, 12), 0.3), generator=torch.Generator().manual_seed(1))


def _section(vae, x, **settings) -> dict:
    measure, _ = LIKELIHOODS["vae"]
    return measure(vae, x, None, EvaluationSettings(iwae_k=64, **settings))


def test_standard_errors_are_those_of_the_per_image_values():
    vae, x = _tiny_vae(3), _images()
    section = _section(vae, x)
    iwae = iwae_log_likelihood(vae, x, k=64, generator=make_generator(0, "cpu"), per_image=True)
    lower = elbo(vae, x, generator=make_generator(0, "cpu"), per_image=True)
    for part, values, key in (
        (section["iwae"], iwae, "mean_log_likelihood"),
        (section["elbo"], lower, "mean"),
    ):
        expected = float(values.std(correction=1)) / math.sqrt(len(values))
        assert part[key]["value"] == pytest.approx(float(values.mean()), abs=1e-9)
        assert part["standard_error"]["value"] == pytest.approx(expected, rel=1e-9)
    assert "quadrature" not in section  # only a 2-D code is integrated


def _log_px_by_grid(vae, x: torch.Tensor, points: int = 1201, limit: float = 6.0) -> torch.Tensor:
    """An independent log p(x): a trapezoid rule over the plane in float64, one image at a time."""
    vae = copy.deepcopy(vae).double()
    axis = torch.linspace(-limit, limit, points, dtype=torch.float64)
    z = torch.cartesian_prod(axis, axis)
    weights = torch.ones(points, dtype=torch.float64)
    weights[[0, -1]] = 0.5
    log_w = torch.log(torch.outer(weights, weights).reshape(-1))
    logits = vae.decode_logits(z)
    prior = -0.5 * (z**2).sum(1) - math.log(2 * math.pi)
    out = []
    for row in x.double():
        log_joint = (row * logits - torch.nn.functional.softplus(logits)).sum(1) + prior
        out.append(torch.logsumexp(log_joint + log_w, 0) + 2 * math.log(axis[1] - axis[0]))
    return torch.stack(out)


@torch.no_grad()
def test_quadrature_matches_an_independent_integral_and_bounds_iwae():
    vae, x = _tiny_vae(2), _images(30)
    section = _section(vae, x, quadrature_grid=301, quadrature_check_images=10)["quadrature"]
    reference = _log_px_by_grid(vae, x)
    assert section["mean_log_likelihood"]["value"] == pytest.approx(
        float(reference.mean()), abs=1e-3
    )
    iwae = iwae_log_likelihood(vae, x, k=64, generator=make_generator(0, "cpu"), per_image=True)
    gap = float((iwae - reference).mean())
    assert section["iwae_minus_quadrature"]["value"] == pytest.approx(gap, abs=1e-3)
    assert gap < 0.01  # IWAE is a lower bound (in expectation) of the integral
    # a smooth integrand: the doubled grid moves the figure by far less than a millinat
    assert abs(section["check"]["finer_minus_grid"]["value"]) < 1e-3
    assert section["check"]["images"] == 10


def test_a_coarse_grid_is_caught_by_its_check():
    vae, x = _tiny_vae(2), _images(10)
    with torch.no_grad():
        vae.encoder_log_var.bias.fill_(-12.0)  # posteriors far narrower than the grid's spacing
        vae.decoder_output.weight.mul_(40.0)  # a sharply peaked likelihood in z
    section = _section(vae, x, quadrature_grid=11, quadrature_check_images=10)["quadrature"]
    assert abs(section["check"]["finer_minus_grid"]["value"]) > 0.01


def test_quadrature_settings_are_checked():
    with pytest.raises(ConfigError, match="quadrature_grid"):
        EvaluationSettings(quadrature_grid=1)
    with pytest.raises(ConfigError, match="quadrature_check_images"):
        EvaluationSettings(quadrature_check_images=-1)
    vae, x = _tiny_vae(2), _images(5)
    assert "quadrature" not in _section(vae, x, quadrature_grid=0)
