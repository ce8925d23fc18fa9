"""Measured quality of trained models (docs/derivation.md, section 4)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .devices import make_generator
from .models.rbm import RBM


@torch.no_grad()
def pseudo_log_likelihood(rbm: RBM, visible: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Stochastic pseudo-log-likelihood per image (Eq. 4.1), as in Besag (1975).

    For each binary image one pixel i is drawn at random and
    ``PLL(v) ~= D * log sigm(F(v with v_i flipped) - F(v))``, an unbiased estimate of
    ``sum_i log p(v_i | v_-i)``. The pixel choice is fixed by ``seed``.
    """
    n, n_visible = visible.shape
    generator = make_generator(seed, visible.device)
    pixels = torch.randint(0, n_visible, (n,), generator=generator, device=visible.device)
    flipped = visible.clone()
    rows = torch.arange(n, device=visible.device)
    flipped[rows, pixels] = 1.0 - flipped[rows, pixels]
    return n_visible * F.logsigmoid(rbm.free_energy(flipped) - rbm.free_energy(visible))
