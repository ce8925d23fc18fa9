"""Inpainting: fill in missing pixels by sampling p(missing | observed) (docs/derivation.md, s. 5).

Every sampler here keeps the observed pixels exactly as given; only missing pixels (``mask`` True)
change. All of them are batched over images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..basics.checks import positive_int
from ..basics.errors import ConfigError
from ..models.rbm import RBM, bernoulli
from ..models.vae import VAE, gaussian_log_density, standard_normal_log_density


@dataclass
class InpaintResult:
    """``images``: observed pixels as given, missing pixels filled with the sampler's estimate of
    p(v_i = 1 | observed); ``states``: the chains' last binary states (observed pixels as given)."""

    images: torch.Tensor
    states: torch.Tensor
    acceptance: float | None = None  # Metropolis-within-Gibbs: accepted share of exact steps


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


StepFunction = Callable[[torch.Tensor, int], torch.Tensor]


def run_masked_chain(
    step: StepFunction,
    images: torch.Tensor,
    mask: torch.Tensor,
    steps: int,
    average_last: int,
    fill: torch.Tensor | float,
    generator: torch.Generator | None,
) -> InpaintResult:
    """The one loop of every inpainting sampler: a chain over the missing pixels alone.

    ``step(visible, i)`` advances the sampler's own state given the current completed images
    ``visible`` (N, D) and returns the logits (N, D) of the conditional the missing pixels are
    drawn from next (Eq. 5.1). The loop draws them (observed pixels stay as given) and averages
    their probabilities over the last ``average_last`` of ``steps`` steps.
    """
    _check(images, mask, steps, average_last)
    pixels = _MissingPixels(images, mask, fill)
    for i in range(steps):
        probs = pixels.gather_probs(step(pixels.visible, i))
        if i >= steps - average_last:
            pixels.total += probs
        pixels.redraw(generator)
    return pixels.result(average_last)


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
    p(v_i = 1 | observed)).

    Shape: ``images`` and ``mask`` (N, D); ``fill`` scalar or (D,). Result tensors (N, D).
    """
    if fill is None:
        fill = torch.sigmoid(rbm.visible_bias)
    # buffers reused by every sweep
    hidden_probs = images.new_empty(images.shape[0], rbm.n_hidden)
    hidden = torch.empty_like(hidden_probs)
    visible_logits = torch.empty_like(images, memory_format=torch.contiguous_format)

    def sweep(visible: torch.Tensor, i: int) -> torch.Tensor:
        bernoulli(rbm.hidden_probs(visible, out=hidden_probs), generator, out=hidden)
        return rbm.visible_logits(hidden, out=visible_logits)

    return run_masked_chain(sweep, images, mask, steps, average_last, fill, generator)


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

    Shape: ``images`` and ``mask`` (N, D); ``fill`` scalar or (D,). Result tensors (N, D).
    """

    def step(visible: torch.Tensor, i: int) -> torch.Tensor:
        mean, log_var = vae.encode(visible)
        return vae.decode_logits(vae.reparameterize(mean, log_var, generator))

    return run_masked_chain(
        step, images, mask, steps, average_last, _vae_fill(vae, fill), generator
    )


class _IndependenceSampler:
    """The state (z, its logits and their softplus sum) of Metropolis-within-Gibbs, and its step.

    Each step proposes ``z' ~ q(z | x)`` and accepts it with probability ``min(1, r)`` (Eq. 5.4);
    steps before ``warmup`` accept every proposal (pseudo-Gibbs steps).
    """

    def __init__(self, vae: VAE, visible: torch.Tensor, warmup: int, generator) -> None:
        self.vae, self.warmup, self.generator = vae, warmup, generator
        mean, log_var = vae.encode(visible)
        self.z = vae.reparameterize(mean, log_var, generator)
        self.logits = vae.decode_logits(self.z)
        # sum_i softplus(l_i) of the current logits, the part of log p(x | z) that x leaves alone
        self.softplus_sum = F.softplus(self.logits).sum(-1)
        self.accepted, self.proposed = 0, 0  # over the exact (post-warm-up) steps

    def __call__(self, visible: torch.Tensor, i: int) -> torch.Tensor:
        vae, z, logits = self.vae, self.z, self.logits
        mean, log_var = vae.encode(visible)
        proposal = vae.reparameterize(mean, log_var, self.generator)
        proposal_logits = vae.decode_logits(proposal)
        proposal_softplus_sum = F.softplus(proposal_logits).sum(-1)
        # log p(x | z') - log p(x | z) = x'(l' - l) - sum softplus(l') + sum softplus(l) (Eq. 2.5)
        log_ratio = (
            torch.linalg.vecdot(visible, proposal_logits - logits)
            - proposal_softplus_sum
            + self.softplus_sum
            + standard_normal_log_density(proposal)
            + gaussian_log_density(z, mean, log_var)
            - standard_normal_log_density(z)
            - gaussian_log_density(proposal, mean, log_var)
        )
        uniform = torch.rand(
            log_ratio.shape,
            generator=self.generator,
            device=log_ratio.device,
            dtype=log_ratio.dtype,
        )
        accept = torch.log(uniform) < log_ratio
        if i < self.warmup:
            accept = torch.ones_like(accept)
        else:
            self.accepted += int(accept.sum())
            self.proposed += accept.numel()
        self.z = torch.where(accept.unsqueeze(-1), proposal, z)
        self.logits = torch.where(accept.unsqueeze(-1), proposal_logits, logits)
        self.softplus_sum = torch.where(accept, proposal_softplus_sum, self.softplus_sum)
        return self.logits


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

    Shape: ``images`` and ``mask`` (N, D); ``fill`` scalar or (D,). Result tensors (N, D).
    """
    _check(images, mask, steps, average_last)
    if warmup is None:
        warmup = (steps - average_last) // 2
    if not 0 <= warmup <= steps - average_last:
        raise ConfigError(
            f"warmup must be between 0 and steps - average_last ({steps - average_last}), "
            f"got {warmup}"
        )
    start = start_state(images, mask, _vae_fill(vae, fill))
    step = _IndependenceSampler(vae, start, warmup, generator)
    result = run_masked_chain(step, images, mask, steps, average_last, start, generator)
    result.acceptance = step.accepted / max(1, step.proposed)
    return result


# The samplers of each model kind, the first one its default (the registry that ``inpaint``, the
# evaluation and the command line read their choices from).
SAMPLERS: dict[str, dict[str, Callable[..., InpaintResult]]] = {
    "rbm": {"gibbs": clamped_gibbs},
    "vae": {"pseudo-gibbs": pseudo_gibbs, "metropolis": metropolis_within_gibbs},
}


def samplers_for(model: nn.Module) -> dict[str, Callable[..., InpaintResult]]:
    """The inpainting samplers of ``model``'s kind (default first)."""
    try:
        return SAMPLERS[model.kind]
    except (AttributeError, KeyError):
        kind = getattr(model, "kind", type(model).__name__)
        raise ConfigError(f"no inpainting for model kind {kind!r}") from None


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
    chains: int = 1,
    full_result: bool = False,
) -> torch.Tensor | InpaintResult:
    """Fill the pixels where ``mask`` is True; observed pixels are returned unchanged.

    ``sampler`` is one of ``SAMPLERS[model.kind]`` (RBM: ``gibbs``, clamped Gibbs; VAE:
    ``pseudo-gibbs`` (default) or ``metropolis``, Metropolis-within-Gibbs). ``average_last``
    defaults to half of ``steps``. ``chains`` independent chains run per image, all in one batch,
    and their estimates are averaged (Eq. 5.9): one chain settles in one mode of a broad
    conditional (80% missing, a missing half) and its average is too sure of it. ``fill`` is a
    value, a (D,) vector, (N, D) per image, or (N, chains, D) per chain (each chain its own
    start). Shape: ``images`` and ``mask`` (N, D) -> (N, D); with ``full_result`` the whole
    :class:`InpaintResult` (its ``acceptance`` for Metropolis; ``states`` (N, chains, D) when
    ``chains > 1``).
    """
    choices = samplers_for(model)
    name = sampler or next(iter(choices))
    if name not in choices:
        raise ConfigError(
            f"unknown sampler {name!r} for {model.label()}; choose one of {', '.join(choices)}"
        )
    positive_int("chains", chains)
    device = next(model.parameters()).device
    if average_last is None:
        average_last = max(1, steps // 2)
    images, mask = images.to(device), mask.to(device)
    _check(images, mask, steps, average_last)  # before the chains' copies, on the shapes given
    run = choices[name]
    if chains == 1:
        if isinstance(fill, torch.Tensor) and fill.dim() == 3:
            fill = fill.squeeze(1)
        result = run(model, images, mask, steps, average_last, fill, generator)
        return result if full_result else result.images
    n = images.shape[0]
    if isinstance(fill, torch.Tensor):
        fill = fill.to(device)
        if fill.dim() == 3:
            if fill.shape != (n, chains, images.shape[1]):
                raise ConfigError(
                    f"a per-chain fill must have shape {(n, chains, images.shape[1])}, "
                    f"got {tuple(fill.shape)}"
                )
            fill = fill.reshape(n * chains, -1)
        elif fill.dim() == 2:
            fill = fill.repeat_interleave(chains, 0)
    # the chains of image i are rows i * chains ... i * chains + chains - 1
    result = run(
        model,
        images.repeat_interleave(chains, 0),
        mask.repeat_interleave(chains, 0),
        steps,
        average_last,
        fill,
        generator,
    )
    result = InpaintResult(
        images=result.images.view(n, chains, -1).mean(1),
        states=result.states.view(n, chains, -1),
        acceptance=result.acceptance,
    )
    return result if full_result else result.images
