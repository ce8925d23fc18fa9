"""VAE log-likelihoods: the ELBO, the importance-weighted estimate (IWAE), quadrature over a 2-D
code, and active units (docs/derivation.md, sections 2-4)."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ..basics.devices import module_device
from ..basics.errors import ConfigError
from ..models.vae import (
    VAE,
    decoder_log_likelihood,
    negative_elbo,
    standard_normal_log_density,
)

# ------------------------------------------------------------------------------------------------
# VAE: ELBO, importance-weighted log-likelihood, active units


@torch.inference_mode()
def iwae_log_likelihood(
    vae,
    x: torch.Tensor,
    k: int = 5000,
    chunk: int = 25,
    batch_size: int = 100,
    generator: torch.Generator | None = None,
    per_image: bool = False,
) -> float | torch.Tensor:
    """Importance-weighted estimate of ``log p(x)`` with ``k`` samples (Eq. 3.7; Burda et al. 2016).

    ``log p(x) ~= log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x)`` with ``z_k ~ q(z | x)``, the
    bound L_K of Eq. 2.7, which rises to ``log p(x)`` as K grows. Images go ``batch_size`` at a time
    and samples ``chunk`` at a time (at most ``batch_size * chunk`` decoder rows in memory; the
    default is sized to stay in a CPU cache, see benchmarks/RESULTS.md); ``log p(x | z)`` comes
    from ``decoder_log_likelihood`` (one pass over the logits); the log-mean-exp runs in float64
    across chunks. Returns the mean in nats, or float64 values per image.
    """

    if k <= 0 or chunk <= 0 or batch_size <= 0:
        raise ConfigError(
            f"k, chunk and batch_size must be positive, got {k}, {chunk}, {batch_size}"
        )
    device = module_device(vae)
    parts = []
    for batch in x.split(batch_size):
        batch = batch.to(device)
        mean, log_var = vae.encode(batch)
        std = torch.exp(0.5 * log_var)
        total = torch.full((batch.shape[0],), -math.inf, dtype=torch.float64, device=device)
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            eps = torch.randn(
                (m, *mean.shape), generator=generator, device=device, dtype=mean.dtype
            )
            z = mean + std * eps
            log_px = decoder_log_likelihood(vae, batch, z)
            # log p(z) - log q(z | x): the (2 pi) constants cancel, and z - mean = std * eps.
            log_ratio = 0.5 * (log_var + eps.pow(2) - z.pow(2)).sum(-1)
            log_w = (log_px + log_ratio).double()
            total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
        parts.append(total - math.log(k))
    values = torch.cat(parts)
    return values if per_image else float(values.mean())


@torch.inference_mode()
def elbo(
    vae,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    batch_size: int = 1000,
    per_image: bool = False,
) -> float | torch.Tensor:
    """The evidence lower bound ``E_q[log p(x | z)] - KL(q(z | x) || p(z))`` (Eq. 2.2), in nats.

    One reparameterized sample per image (an unbiased estimate); the mean over ``x``, or per image.
    """

    device = module_device(vae)
    parts = [-negative_elbo(vae, b.to(device), generator)[0].double() for b in x.split(batch_size)]
    values = torch.cat(parts)
    return values if per_image else float(values.mean())


@torch.inference_mode()
def posterior_mean_variance(vae, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Per latent unit, the variance over ``x`` of the posterior mean ``E_q[z_u | x]`` (Eq. 4.2)."""
    device = module_device(vae)
    means = torch.cat([vae.encode(b.to(device))[0] for b in x.split(batch_size)])
    return means.double().var(dim=0, correction=0)


def active_units(vae, x: torch.Tensor, threshold: float = 0.01) -> int:
    """The number of latent units whose posterior mean varies over the data by more than
    ``threshold`` (Eq. 4.2; Burda et al. 2016 use 0.01)."""
    return int((posterior_mean_variance(vae, x) > threshold).sum())


@torch.no_grad()
def log_likelihood_quadrature(
    vae, x: torch.Tensor, grid_size: int = 401, limit: float = 6.0, chunk: int = 4096
) -> torch.Tensor:
    """``log p(x)`` per row of a VAE with a 2-D code, by quadrature over a latent grid (Eq. 3.8).

    ``p(x) = integral p(x | z) N(z; 0, I) dz`` is approximated on a ``grid_size`` x ``grid_size``
    grid over ``[-limit, limit]^2`` with spacing ``d``: ``log p(x) ~= logsumexp_j (log p(x | z_j) +
    log N(z_j; 0, I)) + 2 log d``. Exact up to the grid's resolution and the mass outside it; the
    grid is decoded in chunks of ``chunk`` points, all images at once. ``vae`` is a
    :class:`rbmvae.models.vae.VAE`.
    """
    if not isinstance(vae, VAE) or vae.n_latent != 2:
        raise ConfigError("quadrature over the latent grid needs a VAE with a 2-D code")
    if grid_size < 2 or not limit > 0:
        raise ConfigError(f"need grid_size >= 2 and limit > 0, got {grid_size} and {limit}")
    device = vae.decoder_output.weight.device
    x = x.to(device=device, dtype=vae.decoder_output.weight.dtype)
    axis = torch.linspace(-limit, limit, grid_size, device=device, dtype=x.dtype)
    grid = torch.cartesian_prod(axis, axis)
    parts = []
    for points in grid.split(chunk):
        logits = vae.decode_logits(points)
        # log p(x | z_j) = x'l_j - sum_i softplus(l_ij) (Eq. 2.5) for every (image, point) pair
        log_joint = x @ logits.t() - F.softplus(logits).sum(-1)
        parts.append(torch.logsumexp(log_joint + standard_normal_log_density(points), dim=1))
    spacing = 2.0 * limit / (grid_size - 1)
    return torch.logsumexp(torch.stack(parts, dim=1), dim=1) + 2.0 * math.log(spacing)
