"""Inpainting: fill in missing pixels by sampling p(missing | observed) (docs/derivation.md, s. 5).

Every sampler here keeps the observed pixels exactly as given; only missing pixels (``mask`` True)
change. All of them are batched over images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .errors import ConfigError
from .models.rbm import RBM, bernoulli
from .models.vae import VAE, gaussian_log_density, standard_normal_log_density


@dataclass
class InpaintResult:
    """``images``: observed pixels as given, missing pixels filled with the sampler's estimate of
    p(v_i = 1 | observed); ``states``: the chains' last binary states (observed pixels as given)."""

    images: torch.Tensor
    states: torch.Tensor


def _check(images: torch.Tensor, mask: torch.Tensor, steps: int, average_last: int) -> None:
    if images.shape != mask.shape:
        raise ConfigError(
            f"mask shape {tuple(mask.shape)} differs from images {tuple(images.shape)}"
        )
    if steps <= 0:
        raise ConfigError(f"steps must be a positive integer, got {steps}")
    if not 0 < average_last <= steps:
        raise ConfigError(f"average_last must be between 1 and steps ({steps}), got {average_last}")


def start_state(
    images: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor | float
) -> torch.Tensor:
    """Observed pixels as given, missing ones set to ``fill`` (a value or a per-pixel vector)."""
    fill = torch.as_tensor(fill, dtype=images.dtype, device=images.device)
    return torch.where(mask, fill.expand_as(images), images)


class _MissingPixels:
    """The missing pixels of a batch as one flat index, to read, average and redraw them alone.

    ``visible`` is the chains' state (observed pixels as given); ``probs`` receives p(x_i = 1 | .)
    of the missing pixels each step, ``total`` their running sum, and :meth:`redraw` samples them
    (one uniform per missing pixel: observed pixels need no draw).
    """

    def __init__(self, images: torch.Tensor, mask: torch.Tensor, fill) -> None:
        self.images = images
        self.visible = start_state(images, mask, fill).contiguous()
        self.index = mask.reshape(-1).nonzero().squeeze(1)
        self.probs = images.new_empty(self.index.shape)
        self.noise = images.new_empty(self.index.shape)
        self.total = images.new_zeros(self.index.shape)

    def gather_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """``sigm(logits)`` at the missing pixels, into ``self.probs``."""
        return torch.index_select(logits.reshape(-1), 0, self.index, out=self.probs).sigmoid_()

    def redraw(self, generator: torch.Generator | None) -> None:
        """Draw every missing pixel from ``self.probs``; observed pixels stay as given."""
        sample = bernoulli(self.probs, generator, out=self.noise)
        self.visible.view(-1).index_copy_(0, self.index, sample)

    def result(self, average_last: int) -> InpaintResult:
        estimate = self.images.clone(memory_format=torch.contiguous_format)
        estimate.view(-1).index_copy_(0, self.index, self.total / average_last)
        return InpaintResult(images=estimate, states=self.visible)


@torch.no_grad()
def clamped_gibbs(
    rbm: RBM,
    images: torch.Tensor,
    mask: torch.Tensor,
    steps: int = 200,
    average_last: int = 100,
    fill: torch.Tensor | float | None = None,
    generator: torch.Generator | None = None,
) -> InpaintResult:
    """Clamped Gibbs sampling of p(v_missing | v_observed) in an RBM (Eq. 5.2).

    Each sweep samples ``h ~ p(h | v)`` (Eq. 1.5) and then only the missing visible units from
    ``p(v | h)`` (Eq. 1.6); the observed units stay clamped. Missing pixels start at ``fill``
    (default: the model's visible marginals sigm(b)). The returned estimate is ``p(v_i = 1 | h)``
    averaged over the last ``average_last`` sweeps (a Rao-Blackwellized estimate of
    p(v_i = 1 | observed)). Per sweep: the two products with W, written into reused buffers,
    and one uniform draw per hidden unit and per missing pixel; the sigmoid, the average and the
    draws of the visible layer touch the missing pixels alone.
    """
    _check(images, mask, steps, average_last)
    if fill is None:
        fill = torch.sigmoid(rbm.visible_bias)
    pixels = _MissingPixels(images, mask, fill)
    hidden_probs = images.new_empty(images.shape[0], rbm.n_hidden)
    hidden = torch.empty_like(hidden_probs)
    visible_logits = torch.empty_like(pixels.visible)
    for sweep in range(steps):
        torch.addmm(rbm.hidden_bias, pixels.visible, rbm.weight, out=hidden_probs).sigmoid_()
        bernoulli(hidden_probs, generator, out=hidden)
        torch.addmm(rbm.visible_bias, hidden, rbm.weight.t(), out=visible_logits)
        probs = pixels.gather_probs(visible_logits)
        if sweep >= steps - average_last:
            pixels.total += probs
        pixels.redraw(generator)
    return pixels.result(average_last)


def _vae_fill(vae: VAE, fill: torch.Tensor | float | None) -> torch.Tensor | float:
    if fill is not None:
        return fill
    weight = vae.decoder_output.weight
    return vae.decode(torch.zeros(1, vae.n_latent, device=weight.device, dtype=weight.dtype))[0]


@torch.no_grad()
def pseudo_gibbs(
    vae: VAE,
    images: torch.Tensor,
    mask: torch.Tensor,
    steps: int = 200,
    average_last: int = 100,
    fill: torch.Tensor | float | None = None,
    generator: torch.Generator | None = None,
) -> InpaintResult:
    """Pseudo-Gibbs sampling of p(x_missing | x_observed) in a VAE (Rezende et al. 2014; Eq. 5.3).

    Each step draws ``z ~ q(z | x)`` from the encoder at the current image, then the missing
    pixels from ``p(x | z)``; the observed pixels are put back unchanged. The chain only
    approximates the target, since q is not the exact posterior. Missing pixels start at ``fill``
    (default: the decoder at the prior mode, ``p(x = 1 | z = 0)``). The returned estimate is
    ``p(x_i = 1 | z)`` averaged over the last ``average_last`` steps.
    """
    _check(images, mask, steps, average_last)
    pixels = _MissingPixels(images, mask, _vae_fill(vae, fill))
    for step in range(steps):
        mean, log_var = vae.encode(pixels.visible)
        logits = vae.decode_logits(vae.reparameterize(mean, log_var, generator))
        probs = pixels.gather_probs(logits)
        if step >= steps - average_last:
            pixels.total += probs
        pixels.redraw(generator)
    return pixels.result(average_last)


@torch.no_grad()
def metropolis_within_gibbs(
    vae: VAE,
    images: torch.Tensor,
    mask: torch.Tensor,
    steps: int = 200,
    average_last: int = 100,
    fill: torch.Tensor | float | None = None,
    generator: torch.Generator | None = None,
    warmup: int | None = None,
) -> InpaintResult:
    """Metropolis-within-Gibbs sampling of p(z, x_missing | x_observed) (Mattei & Frellsen 2018).

    The chain's state is a code z and a completed image x. Each step proposes ``z' ~ q(z | x)``
    from the encoder at the current image and accepts it with probability ``min(1, r)``,
    ``r = p(x | z') p(z') q(z | x) / (p(x | z) p(z) q(z' | x))`` (Eq. 5.4, computed in log space,
    independently per image); then it draws the missing pixels from ``p(x | z)``. Unlike
    pseudo-Gibbs this chain has the exact conditional as its stationary distribution. Missing
    pixels start at ``fill`` (default: the decoder at the prior mode) and z at a draw from
    q(z | x). The estimate is ``p(x_i = 1 | z)`` averaged over the last ``average_last`` steps.

    The first ``warmup`` steps (default: half of the steps before averaging starts) accept every
    proposal, i.e. they are pseudo-Gibbs steps: from a poor start (e.g. 80% missing) an
    independence sampler can stay stuck for long, while pseudo-Gibbs moves quickly towards the
    data. This only changes the chain's starting point for the exact steps that follow.
    """
    _check(images, mask, steps, average_last)
    if warmup is None:
        warmup = (steps - average_last) // 2
    if not 0 <= warmup <= steps - average_last:
        raise ConfigError(
            f"warmup must be between 0 and steps - average_last ({steps - average_last}), "
            f"got {warmup}"
        )
    pixels = _MissingPixels(images, mask, _vae_fill(vae, fill))
    visible = pixels.visible
    mean, log_var = vae.encode(visible)
    z = vae.reparameterize(mean, log_var, generator)
    logits = vae.decode_logits(z)
    # sum_i softplus(l_i) of the current logits, the part of log p(x | z) that x leaves alone
    softplus_sum = F.softplus(logits).sum(-1)
    for step in range(steps):
        mean, log_var = vae.encode(visible)
        proposal = vae.reparameterize(mean, log_var, generator)
        proposal_logits = vae.decode_logits(proposal)
        proposal_softplus_sum = F.softplus(proposal_logits).sum(-1)
        # log p(x | z') - log p(x | z) = x'(l' - l) - sum softplus(l') + sum softplus(l) (Eq. 2.5)
        log_ratio = (
            torch.linalg.vecdot(visible, proposal_logits - logits)
            - proposal_softplus_sum
            + softplus_sum
            + standard_normal_log_density(proposal)
            + gaussian_log_density(z, mean, log_var)
            - standard_normal_log_density(z)
            - gaussian_log_density(proposal, mean, log_var)
        )
        uniform = torch.rand(
            log_ratio.shape, generator=generator, device=log_ratio.device, dtype=log_ratio.dtype
        )
        accept = torch.log(uniform) < log_ratio
        if step < warmup:
            accept = torch.ones_like(accept)
        z = torch.where(accept.unsqueeze(-1), proposal, z)
        logits = torch.where(accept.unsqueeze(-1), proposal_logits, logits)
        softplus_sum = torch.where(accept, proposal_softplus_sum, softplus_sum)
        probs = pixels.gather_probs(logits)
        if step >= steps - average_last:
            pixels.total += probs
        pixels.redraw(generator)
    return pixels.result(average_last)


VAE_SAMPLERS = {"pseudo-gibbs": pseudo_gibbs, "metropolis": metropolis_within_gibbs}


@torch.no_grad()
def inpaint(
    model: nn.Module,
    images: torch.Tensor,
    mask: torch.Tensor,
    *,
    steps: int = 200,
    average_last: int | None = None,
    fill: torch.Tensor | float | None = None,
    generator: torch.Generator | None = None,
    sampler: str | None = None,
) -> torch.Tensor:
    """Fill the pixels where ``mask`` is True; observed pixels are returned unchanged.

    RBM: clamped Gibbs sampling. VAE: pseudo-Gibbs or Metropolis-within-Gibbs (``sampler``).
    ``average_last`` defaults to half of ``steps``.
    """
    device = next(model.parameters()).device
    images = images.to(device)
    mask = mask.to(device)
    if average_last is None:
        average_last = max(1, steps // 2)
    if model.kind == "rbm":
        if sampler not in (None, "gibbs"):
            raise ConfigError(f"the RBM inpaints by clamped Gibbs sampling, not {sampler!r}")
        return clamped_gibbs(model, images, mask, steps, average_last, fill, generator).images
    if model.kind == "vae":
        sampler = sampler or "pseudo-gibbs"
        if sampler not in VAE_SAMPLERS:
            raise ConfigError(
                f"unknown VAE sampler {sampler!r}; choose one of {', '.join(VAE_SAMPLERS)}"
            )
        run = VAE_SAMPLERS[sampler]
        return run(model, images, mask, steps, average_last, fill, generator).images
    raise ConfigError(f"no inpainting for model kind {model.kind!r}")


def masked_mse(filled: torch.Tensor, original: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean squared error over the missing pixels only (Eq. 4.3)."""
    diff = (filled - original)[mask]
    return float(diff.pow(2).mean()) if diff.numel() else 0.0
