"""Inpainting: fill in missing pixels by sampling p(missing | observed) (docs/derivation.md, s. 5).

Every sampler here keeps the observed pixels exactly as given; only missing pixels (``mask`` True)
change. All of them are batched over images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .errors import ConfigError
from .models.rbm import RBM, bernoulli


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

    Each sweep samples ``h ~ p(h | v)`` and then only the missing visible units from
    ``p(v | h)``; the observed units stay clamped. Missing pixels start at ``fill`` (default: the
    model's visible marginals sigm(b)). The returned estimate is ``p(v_i = 1 | h)`` averaged over the
    last ``average_last`` sweeps (a Rao-Blackwellized estimate of p(v_i = 1 | observed)).
    """
    _check(images, mask, steps, average_last)
    if fill is None:
        fill = torch.sigmoid(rbm.visible_bias)
    visible = start_state(images, mask, fill)
    total = torch.zeros_like(images)
    for sweep in range(steps):
        _, hidden = rbm.sample_hidden(visible, generator)
        probs = rbm.visible_probs(hidden)
        if sweep >= steps - average_last:
            total += probs
        visible = torch.where(mask, bernoulli(probs, generator), images)
    estimate = torch.where(mask, total / average_last, images)
    return InpaintResult(images=estimate, states=visible)


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
        from .models.vae import vae_inpaint

        return vae_inpaint(
            model,
            images,
            mask,
            steps=steps,
            average_last=average_last,
            fill=fill,
            generator=generator,
            sampler=sampler or "pseudo-gibbs",
        )
    raise ConfigError(f"no inpainting for model kind {model.kind!r}")


def masked_mse(filled: torch.Tensor, original: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean squared error over the missing pixels only."""
    diff = (filled - original)[mask]
    return float(diff.pow(2).mean()) if diff.numel() else 0.0
