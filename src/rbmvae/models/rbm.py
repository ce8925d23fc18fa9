"""The binary Restricted Boltzmann Machine (docs/derivation.md, section 1).

Notation: visible units v in {0,1}^D, hidden units h in {0,1}^H, weights W (D x H), visible
biases b (D), hidden biases c (H). Tensors are stored as ``weight`` (W), ``visible_bias`` (b) and
``hidden_bias`` (c). The model holds parameters and the maths; it does no I/O and keeps no hidden
state between calls: every random draw takes an explicit ``torch.Generator``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..basics.checks import positive_int
from ..basics.rng import make_generator


def bernoulli(
    probs: torch.Tensor, generator: torch.Generator | None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary samples with P(1) = ``probs``, as 0/1 floats of ``probs``' dtype.

    Drawn as ``u < probs`` with ``u ~ U[0, 1)``: one uniform per element, written into ``out`` (a
    new tensor if None; never ``probs`` itself) and compared in place, so no boolean tensor or
    conversion pass is made. It gives the same samples as ``(torch.rand(...) < probs).float()``
    from the same generator. Shape: ``out`` has ``probs``' shape.
    """
    if out is None:
        out = torch.empty_like(probs, memory_format=torch.contiguous_format)
    torch.rand(probs.shape, generator=generator, out=out)
    return out.lt_(probs)


def random_lanes(n: int, generator: torch.Generator | None, device=None) -> torch.Tensor:
    """``n`` uniform 16-bit integers in [-32768, 32767] (int16), four from each 64-bit word the
    generator draws: the generator runs a quarter as often as for ``n`` float32 uniforms."""
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(2**63), None, generator=generator)  # every one of the 64 bits random
    return words.view(torch.int16)[:n]


def bernoulli_from_lanes(
    probs: torch.Tensor, lanes: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """1 where ``u + 1/2 < 2^16 p`` with ``u = lane + 2^15`` uniform on {0, ..., 2^16 - 1}, so
    that P(1) = round(2^16 p) / 2^16 (Eq. 1.20). ``lanes`` int16 of ``probs``' shape; the result
    (in ``out``, or a new tensor) as 0/1 floats of ``probs``' dtype."""
    if out is None:
        out = torch.empty_like(probs, memory_format=torch.contiguous_format)
    threshold = probs.mul(65536.0).sub_(32768.5)
    out.copy_(lanes)
    return out.lt_(threshold)


def bernoulli_16bit(
    probs: torch.Tensor, generator: torch.Generator | None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary samples with P(1) = round(2^16 p) / 2^16, within 2^-17 of ``probs`` (Eq. 1.20), from
    16 random bits per element (:func:`random_lanes`): the same interface as :func:`bernoulli`,
    at less than half its cost per draw on a CPU, where the serial generator dominates."""
    lanes = random_lanes(probs.numel(), generator, probs.device).view(probs.shape)
    return bernoulli_from_lanes(probs, lanes, out)


# The Bernoulli draws of training by the bits of their uniforms (``TrainConfig.bernoulli_bits``):
# 24, torch.rand's float32 uniforms (one generator call each); 16, Eq. 1.20.
BERNOULLI_DRAWS = {24: bernoulli, 16: bernoulli_16bit}


class RBM(nn.Module):
    """A Restricted Boltzmann Machine with binary visible and hidden units.

    Energy ``E(v, h) = -b'v - c'h - v'Wh`` (Eq. 1.1). ``forward(v)`` returns ``p(h = 1 | v)``.
    """

    kind = "rbm"

    def __init__(self, n_visible: int = 784, n_hidden: int = 500) -> None:
        super().__init__()
        positive_int("n_visible", n_visible)
        positive_int("n_hidden", n_hidden)
        self.n_visible = n_visible
        self.n_hidden = n_hidden
        self.weight = nn.Parameter(torch.empty(n_visible, n_hidden))
        self.visible_bias = nn.Parameter(torch.zeros(n_visible))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden))
        self.reset_parameters()

    def config(self) -> dict:
        """Constructor arguments, stored in checkpoints."""
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden}

    def label(self) -> str:
        """The model's name in tables and figures, e.g. ``"RBM, 500 hidden"``."""
        return f"RBM, {self.n_hidden} hidden"

    @torch.no_grad()
    def reset_parameters(
        self,
        visible_mean: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        weight_std: float = 0.01,
    ) -> None:
        """Initialize as Hinton's practical guide (2010, section 8) advises.

        ``W ~ N(0, weight_std^2)``, ``c = 0``, and ``b_i = log(p_i / (1 - p_i))`` where ``p_i`` is
        the fraction of training images with pixel i on (clipped to [1e-3, 1 - 1e-3]), so that the
        visible units start at the data's marginals.
        """
        device = self.weight.device
        noise = torch.randn(self.weight.shape, generator=generator, device=device)
        self.weight.copy_(noise * weight_std)
        self.hidden_bias.zero_()
        if visible_mean is None:
            self.visible_bias.zero_()
        else:
            p = visible_mean.to(device=device, dtype=self.visible_bias.dtype).clamp(1e-3, 1 - 1e-3)
            self.visible_bias.copy_(torch.log(p) - torch.log1p(-p))

    # -- conditionals (Eqs. 1.5, 1.6) --------------------------------------------------------

    def hidden_logits(self, visible: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``c + vW``, the input to each hidden unit (Eq. 1.5).

        Shape: ``visible`` (N, D) -> (N, H); written into ``out`` when given.
        """
        return torch.addmm(self.hidden_bias, visible, self.weight, out=out)

    def hidden_probs(self, visible: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``p(h_j = 1 | v) = sigm(c_j + v'W_{:,j})`` (Eq. 1.5). Shape: (N, D) -> (N, H)."""
        return self.hidden_logits(visible, out=out).sigmoid_()

    def visible_logits(self, hidden: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``b + hW'``, the input to each visible unit (Eq. 1.6).

        Shape: ``hidden`` (N, H) -> (N, D); written into ``out`` when given.
        """
        return torch.addmm(self.visible_bias, hidden, self.weight.t(), out=out)

    def visible_probs(self, hidden: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``p(v_i = 1 | h) = sigm(b_i + W_{i,:}h)`` (Eq. 1.6). Shape: (N, H) -> (N, D)."""
        return self.visible_logits(hidden, out=out).sigmoid_()

    def sample_hidden(
        self, visible: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(p(h = 1 | v), h ~ p(h | v))``: a draw from the factorized conditional (Eq. 1.5)."""
        probs = self.hidden_probs(visible)
        return probs, bernoulli(probs, generator)

    def sample_visible(
        self, hidden: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(p(v = 1 | h), v ~ p(v | h))``: a draw from the factorized conditional (Eq. 1.6)."""
        probs = self.visible_probs(hidden)
        return probs, bernoulli(probs, generator)

    def forward(self, visible: torch.Tensor) -> torch.Tensor:
        return self.hidden_probs(visible)

    # -- energies (Eqs. 1.1, 1.7) --------------------------------------------------------------

    def energy(self, visible: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """``E(v, h) = -b'v - c'h - v'Wh`` per row (Eq. 1.1)."""
        interaction = ((visible @ self.weight) * hidden).sum(-1)
        return -(visible @ self.visible_bias) - (hidden @ self.hidden_bias) - interaction

    def free_energy(self, visible: torch.Tensor) -> torch.Tensor:
        """``F(v) = -b'v - sum_j softplus(c_j + v'W_{:,j})`` per row (Eq. 1.7)."""
        return -(visible @ self.visible_bias) - F.softplus(self.hidden_logits(visible)).sum(-1)

    def free_energy_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """``F(h) = -c'h - sum_i softplus(b_i + W_{i,:}h)``, the visible units summed out (Eq. 1.8)."""
        return -(hidden @ self.hidden_bias) - F.softplus(self.visible_logits(hidden)).sum(-1)

    # -- sampling --------------------------------------------------------------------------------

    @torch.no_grad()
    def gibbs_chain(
        self, visible: torch.Tensor, steps: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run ``steps`` full block-Gibbs sweeps ``v -> h -> v`` from ``visible`` (Eqs. 1.5, 1.6).

        Returns ``(v, p(v = 1 | h))`` of the last sweep: a binary sample and its mean-field image.
        """
        probs = visible
        for _ in range(steps):
            _, hidden = self.sample_hidden(visible, generator)
            probs, visible = self.sample_visible(hidden, generator)
        return visible, probs

    @torch.no_grad()
    def sample(
        self,
        n: int,
        steps: int = 1000,
        generator: torch.Generator | None = None,
        start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``n`` samples of p(v) (Eq. 1.4): Gibbs chains of ``steps`` sweeps, shown as p(v = 1 | h).

        Chains start from ``start`` if given, else from Bernoulli draws of sigm(b) (the model's
        visible biases alone), which for a trained model is close to the data's pixel marginals.
        """
        device = self.weight.device
        if start is None:
            base = torch.sigmoid(self.visible_bias).expand(n, -1)
            start = bernoulli(base.contiguous(), generator)
        start = start.to(device)
        _, probs = self.gibbs_chain(start, steps, generator)
        return probs

    # -- learning ----------------------------------------------------------------------------------

    @torch.no_grad()
    def contrastive_gradients(
        self,
        visible_data: torch.Tensor,
        hidden_data_probs: torch.Tensor,
        visible_model: torch.Tensor,
        hidden_model_probs: torch.Tensor,
        stacked: dict | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gradients of ``mean F(v_data) - mean F(v_model)`` for W, b and c (Eqs. 1.11, 1.12).

        This is minus the approximate log-likelihood gradient: the positive phase uses the data and
        p(h | v_data), the negative phase the chain's states and p(h | v_model). The weight gradient
        ``V_model' H_model / n_model - V_data' H_data / n_data`` is two matrix products into one
        buffer (the GEMM's own scaling applies the 1/n and the sign), without stacking copies.

        ``stacked``, when the data's rows and the model's are the two parts of one buffer each:
        ``visible_t`` = [V_data; V_model]' (D, n_data + n_model) with its parts ``data_t`` and
        ``chains_t`` (the transposes of ``visible_data`` and ``visible_model``), ``probs_t`` =
        [H_data; H_model]' (H, n_data + n_model) and ``weights`` (n_data + n_model,),
        ``-1/n_data`` on the data's rows and ``1/n_model`` on the model's; each bias gradient is
        then one matrix-vector product, ``visible' weights`` and ``probs' weights``, the same
        sums.
        """
        n_data = visible_data.shape[0]
        n_model = visible_model.shape[0]
        data_t, model_t = (
            (visible_data.t(), visible_model.t())
            if stacked is None
            else (stacked["data_t"], stacked["chains_t"])  # the same, transposed once
        )
        grad_weight = torch.mm(model_t, hidden_model_probs)
        grad_weight.addmm_(data_t, hidden_data_probs, beta=1.0 / n_model, alpha=-1.0 / n_data)
        if stacked is not None:
            weights = stacked["weights"]
            grad_visible = torch.mv(stacked["visible_t"], weights)
            grad_hidden = torch.mv(stacked["probs_t"], weights)
        else:
            grad_visible = visible_model.mean(0) - visible_data.mean(0)
            grad_hidden = hidden_model_probs.mean(0) - hidden_data_probs.mean(0)
        return grad_weight, grad_visible, grad_hidden


@torch.no_grad()
def pseudo_log_likelihood(
    rbm: RBM,
    visible: torch.Tensor,
    seed: int = 0,
    generator: torch.Generator | None = None,
    free_energy: torch.Tensor | None = None,
) -> torch.Tensor:
    """Stochastic pseudo-log-likelihood per image (Eq. 4.1), as in Besag (1975).

    For each binary image one pixel i is drawn at random and
    ``PLL(v) ~= D * log sigm(F(v with v_i flipped) - F(v))``, an unbiased estimate of
    ``sum_i log p(v_i | v_-i)``. The pixel choice comes from ``generator`` (default: one seeded
    with ``seed``); ``free_energy``: F(v) (N,) when the caller has it already. Shape:
    ``visible`` (N, D) -> (N,).
    """
    n, n_visible = visible.shape
    if generator is None:
        generator = make_generator(seed, visible.device)
    pixels = torch.randint(0, n_visible, (n,), generator=generator, device=visible.device)
    flipped = visible.clone()
    rows = torch.arange(n, device=visible.device)
    flipped[rows, pixels] = 1.0 - flipped[rows, pixels]
    energy = rbm.free_energy(visible) if free_energy is None else free_energy
    return n_visible * F.logsigmoid(rbm.free_energy(flipped) - energy)
