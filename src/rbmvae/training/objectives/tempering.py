"""Persistent contrastive divergence with parallel tempering for the negative phase
(docs/derivation.md, s. 1.12; Desjardins et al. 2010, Salakhutdinov 2009).

``M`` sets of persistent chains sample the tempered RBMs ``p_beta(v, h) ~ exp(-beta E(v, h))``
for inverse temperatures ``1 = beta_1 > ... > beta_M``; after each Gibbs sweep neighbouring
temperatures propose to exchange their states (Eq. 1.17), so that states mixed at a high
temperature reach the chains at beta = 1, whose states give the negative statistics.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ...basics.checks import positive_int
from ...basics.errors import ConfigError
from ...models.rbm import RBM, bernoulli
from .rbm import ContrastiveDivergence


def tempering_betas(n_temperatures: int, min_beta: float) -> torch.Tensor:
    """Inverse temperatures ``1 = beta_1 > ... > beta_M = min_beta``, evenly spaced (M,)."""
    positive_int("number of temperatures", n_temperatures)
    if not 0 <= min_beta < 1 and n_temperatures > 1:
        raise ConfigError(f"the smallest inverse temperature must be in [0, 1), got {min_beta}")
    return torch.linspace(1.0, min_beta, n_temperatures) if n_temperatures > 1 else torch.ones(1)


def tempered_log_f(
    model: RBM, visible: torch.Tensor, hidden_inputs: torch.Tensor, beta: torch.Tensor
) -> torch.Tensor:
    """``log f_beta(v) = beta b'v + sum_j softplus(beta (c_j + v'W_j))`` (Eq. 1.16), the tempered
    RBM with the hidden units summed out. Shapes: ``visible`` (..., C, D), ``hidden_inputs``
    ``c + vW`` (..., C, H), ``beta`` broadcastable to (..., C); returns (..., C)."""
    b = beta.unsqueeze(-1)
    return beta * (visible @ model.visible_bias) + F.softplus(b * hidden_inputs).sum(-1)


def swap_log_ratio(
    model: RBM,
    visible: torch.Tensor,
    hidden_inputs: torch.Tensor,
    betas: torch.Tensor,
    parity: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log acceptance ratios of exchanging the states of temperatures ``m`` and ``m + 1`` for the
    pairs whose ``m`` has ``parity`` (Eq. 1.17): ``log f_m(v_(m+1)) + log f_(m+1)(v_m) - log
    f_m(v_m) - log f_(m+1)(v_(m+1))``. Shapes: ``visible`` (M, C, D), ``hidden_inputs`` (M, C,
    H), ``betas`` (M,); returns the lower indices (P,) and the ratios (P, C)."""
    lower = torch.arange(parity, betas.numel() - 1, 2, device=visible.device)
    if lower.numel() == 0:
        return lower, visible.new_zeros(0, visible.shape[1])
    upper = lower + 1
    b_low, b_up = betas[lower].unsqueeze(-1), betas[upper].unsqueeze(-1)
    v_low, v_up = visible[lower], visible[upper]
    x_low, x_up = hidden_inputs[lower], hidden_inputs[upper]
    ratio = tempered_log_f(model, v_up, x_up, b_low) + tempered_log_f(model, v_low, x_low, b_up)
    ratio -= tempered_log_f(model, v_low, x_low, b_low) + tempered_log_f(model, v_up, x_up, b_up)
    return lower, ratio


def swap_neighbours(
    model: RBM,
    visible: torch.Tensor,
    hidden_inputs: torch.Tensor,
    betas: torch.Tensor,
    parity: int,
    generator: torch.Generator | None,
) -> None:
    """Metropolis exchanges (Eq. 1.17) between the neighbouring pairs of ``parity``, in place on
    ``visible`` (M, C, D) and its ``hidden_inputs`` (M, C, H); a pair is exchanged when ``u <
    exp(ratio)`` with one uniform ``u`` per pair and chain."""
    lower, ratio = swap_log_ratio(model, visible, hidden_inputs, betas, parity)
    if lower.numel() == 0:
        return
    uniform = torch.rand(ratio.shape, generator=generator, device=ratio.device, dtype=ratio.dtype)
    accept = torch.log(uniform) < ratio  # (P, C)
    for tensor in (visible, hidden_inputs):
        low, up = tensor[lower], tensor[lower + 1]
        mask = accept.unsqueeze(-1)
        tensor[lower] = torch.where(mask, up, low)
        tensor[lower + 1] = torch.where(mask, low, up)


@torch.no_grad()
def tempered_sweeps(
    model: RBM,
    visible: torch.Tensor,
    betas: torch.Tensor,
    sweeps: int,
    generator: torch.Generator | None,
    draw=bernoulli,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``sweeps`` rounds of a Gibbs sweep at every temperature (Eqs. 1.5, 1.6 with the energy
    scaled by beta) followed by the even and then the odd exchanges (Eq. 1.17).

    Shapes: ``visible`` (M, C, D) binary, ``betas`` (M,); returns the new visible states and
    their hidden inputs ``c + vW`` (M, C, H). ``draw``: :func:`bernoulli` or a function like it
    (``bernoulli_16bit``, Eq. 1.20)."""
    m, c, d = visible.shape
    scale = betas.to(visible).view(m, 1, 1)
    flat = visible.reshape(m * c, d)
    inputs = model.hidden_logits(flat).view(m, c, -1)
    for _ in range(sweeps):
        hidden = draw(torch.sigmoid(scale * inputs), generator)
        logits = model.visible_logits(hidden.view(m * c, -1)).view(m, c, d)
        visible = draw(torch.sigmoid(scale * logits), generator)
        inputs = model.hidden_logits(visible.view(m * c, d)).view(m, c, -1)
        for parity in (0, 1):
            swap_neighbours(model, visible, inputs, betas.to(visible), parity, generator)
    return visible, inputs


class ParallelTempering(ContrastiveDivergence):
    """PCD whose negative phase is parallel tempering (Eqs. 1.16, 1.17): ``chains`` chains (0:
    the first batch's rows) at each of ``temperatures`` inverse temperatures from 1 down to
    ``min_beta``; ``k`` rounds of sweeps and exchanges per update; the chains at beta = 1 give
    the negative statistics ``v`` and ``p(h | v)`` of Eqs. 1.11, 1.12."""

    def __init__(self, temperatures: int = 10, min_beta: float = 0.5, **options) -> None:
        super().__init__(method="pt", **options)
        self.betas = tempering_betas(temperatures, min_beta)
        self.chain_visible: torch.Tensor | None = None

    def setup(self, model: RBM, train_images: torch.Tensor, generator: torch.Generator) -> None:
        super().setup(model, train_images, generator)
        self.chain_visible = None

    def step(self, model: RBM, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One PT-PCD update's gradients (Eqs. 1.11, 1.12, 1.17) and the CD objective (Eq. 1.10)."""
        with torch.no_grad():
            if self.chain_visible is None:
                start = self._chain_starts(batch)
                self.chain_visible = start.unsqueeze(0).repeat(self.betas.numel(), 1, 1)
            visible, inputs = tempered_sweeps(
                model, self.chain_visible, self.betas, self.k, generator, self.draw
            )
            self.chain_visible = visible
            data_logits = model.hidden_logits(batch)
            data_softplus = F.softplus(data_logits).sum()
            model_visible, model_inputs = visible[0], inputs[0]
            model_softplus = F.softplus(model_inputs).sum()
            data_probs, model_probs = data_logits.sigmoid_(), model_inputs.sigmoid()
            term = model_softplus / model_visible.shape[0] - data_softplus / batch.shape[0]
            return self._apply(model, batch, term, data_probs, model_visible, model_probs)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        chains = {} if self.chain_visible is None else {"chain_visible": self.chain_visible}
        return {**super().state_tensors(), **chains}  # the parent's: the centering offsets

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        super().load_state_tensors(tensors)
        self.chain_visible = tensors.get("chain_visible")
