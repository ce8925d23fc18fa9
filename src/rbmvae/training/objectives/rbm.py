"""Contrastive divergence for the RBM: CD-k (with a rising k), persistent CD with any number of
chains, the centered gradient (docs/derivation.md, s. 1.7, 1.8, 1.11, 1.13) and the assignment's
initialization."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ...basics.checks import one_of, positive_int
from ...basics.errors import ConfigError
from ...basics.rng import make_generator
from ...data import binarize
from ...models.rbm import BERNOULLI_DRAWS, RBM, pseudo_log_likelihood
from .base import Objective

RBM_METHODS = ("cd", "pcd", "pt")
RBM_INITS = ("hinton", "assignment")
# How fast the hidden offset of the centered gradient follows the data's hidden means (Eq. 1.19;
# Melchior, Fischer and Wiskott 2016 recommend 0.01).
CENTERING_RATE = 0.01


def centered_gradients(
    grad_weight: torch.Tensor,
    grad_visible: torch.Tensor,
    grad_hidden: torch.Tensor,
    visible_offset: torch.Tensor,
    hidden_offset: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The centered RBM's update written in the ordinary parameters (Eq. 1.18).

    ``grad_*`` are the ordinary gradients of Eqs. 1.11, 1.12 (W: (D, H), b: (D,), c: (H,));
    ``visible_offset`` mu (D,) and ``hidden_offset`` lambda (H,) are the centering offsets.
    Returns ``(W - mu c' - b lambda', b - W_c lambda, c - W_c' mu)`` with ``W_c`` the first: the
    gradient with respect to the centered parameters, moved back into W, b and c.
    """
    weight = grad_weight - torch.outer(visible_offset, grad_hidden)
    weight -= torch.outer(grad_visible, hidden_offset)
    return weight, grad_visible - weight @ hidden_offset, grad_hidden - weight.t() @ visible_offset


def k_at(k: int, k_final: int, epoch: int, epochs: int) -> int:
    """The number of Gibbs sweeps in ``epoch`` (0-based) of ``epochs`` (Eq. 1.15): ``k`` in the
    first epoch rising linearly to ``k_final`` in the last; ``k_final = 0`` keeps ``k``."""
    if k_final <= 0 or epochs <= 1:
        return k if k_final <= 0 else k_final
    return int(round(k + (k_final - k) * epoch / (epochs - 1)))


@torch.no_grad()
def assignment_init(model: RBM, generator: torch.Generator) -> None:
    """The original assignment's start: ``W ~ N(0, 0.1^2)`` truncated at two standard deviations
    (TensorFlow's ``truncated_normal``), every bias 0.1."""
    torch.nn.init.trunc_normal_(model.weight, 0.0, 0.1, -0.2, 0.2, generator=generator)
    model.visible_bias.fill_(0.1)
    model.hidden_bias.fill_(0.1)


class ContrastiveDivergence(Objective):
    """CD-k and persistent CD (PCD-k) for the RBM (docs/derivation.md, Eqs. 1.10-1.14).

    CD-k starts a Gibbs chain at each data batch, with ``k`` sweeps rising to ``k_final`` over the
    epochs when ``k_final > 0`` (Eq. 1.15); PCD keeps ``chains`` persistent chains (in hidden
    space; 0: as many as the first batch has rows) across updates. Following Hinton's guide, the hidden units driven by data are
    sampled, the last visible update of CD uses probabilities, and every hidden statistic uses
    probabilities; PCD's chains keep binary visible states. ``centering`` replaces the gradient
    by the centered one (Eq. 1.18) with the training images' mean as the visible offset and a
    running mean of the data's hidden probabilities as the hidden offset (Eq. 1.19).
    ``bernoulli_bits`` 16 draws the chains' units from 16 random bits each (Eq. 1.20).
    """

    monitor_gap = True  # the epoch-end monitor's free-energy gap between training and test rows

    def __init__(
        self,
        method: str = "cd",
        k: int = 1,
        monitor_seed: int = 0,
        k_final: int = 0,
        chains: int = 0,
        init: str = "hinton",
        centering: bool = False,
        bernoulli_bits: int = 24,
    ) -> None:
        one_of("RBM method", method, RBM_METHODS)
        if bernoulli_bits not in BERNOULLI_DRAWS:
            raise ConfigError(f"bernoulli bits must be 24 or 16, got {bernoulli_bits!r}")
        one_of("RBM initialization", init, RBM_INITS)
        positive_int("k", k)
        self.method = method
        self.k = self.k_start = k
        self.k_final = k_final
        self.chains = chains
        self.init = init
        self.centering = bool(centering)
        self.draw = BERNOULLI_DRAWS[bernoulli_bits]  # every draw of the chains (Eq. 1.20)
        self.offsets: dict[str, torch.Tensor] = {}
        self.monitor_seed = monitor_seed
        self.chain_hidden: torch.Tensor | None = None
        self._monitor_cache: tuple | None = None
        self._buffer_cache: dict[tuple, dict] = {}

    def setup(self, model: RBM, train_images: torch.Tensor, generator: torch.Generator) -> None:
        if self.init == "assignment":
            assignment_init(model, generator)
        else:
            model.reset_parameters(visible_mean=train_images.mean(0), generator=generator)
        self.chain_hidden = None
        if self.centering:  # Eq. 1.19's starting offsets: the pixel means, and 1/2
            self.offsets = {
                "visible_offset": train_images.mean(0).to(model.weight.dtype),
                "hidden_offset": model.weight.new_full((model.n_hidden,), 0.5),
            }

    def start_epoch(self, epoch: int, epochs: int) -> None:
        self.k = k_at(self.k_start, self.k_final, epoch, epochs)

    def _chain_starts(self, batch: torch.Tensor) -> torch.Tensor:
        """The images the persistent chains start from: ``chains`` rows, the batch's repeated."""
        n = self.chains or batch.shape[0]
        return batch.repeat((n + batch.shape[0] - 1) // batch.shape[0], 1)[:n]

    def _init_chains(self, model: RBM, batch: torch.Tensor, generator: torch.Generator) -> None:
        with torch.no_grad():
            start = self._chain_starts(batch)
            self.chain_hidden = self.draw(model.hidden_probs(start), generator)

    def step(self, model: RBM, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One CD-k / PCD-k update's gradients (Eqs. 1.11-1.14) and the CD objective (Eq. 1.10).

        Per step: ``2 k + 1`` products with W (under PCD the data and the chains' last visible
        states share one) and two for the weight gradient; the fewest random draws the algorithm
        needs (the hidden units driven by the data under CD and the chains' states, none for the
        last visible update of CD, which uses probabilities). The data's rows and the chains' last
        rows live in one pair of buffers kept between steps (:meth:`_buffers`), so that each
        bias gradient is one matrix-vector product and the loss two reductions; the products,
        sigmoids and draws write into them in place. The loss comes from the logits at hand and
        the visible-bias gradient: ``mean F(v_d) - mean F(v_m) = b'(mean v_m - mean v_d) +
        mean_m sum_j softplus(.) - mean_d sum_j softplus(.)`` (Eq. 1.7).
        """
        with torch.no_grad():
            if self.method == "pcd":
                return self._persistent_chains(model, batch, generator)
            return self._chains_from_data(model, batch, generator)

    def _buffers(self, model: RBM, batch: torch.Tensor, n_chains: int) -> dict:
        """Buffers for a batch of ``batch``'s shape and ``n_chains`` chains, made once per shape:
        ``visible`` (n + M, D) with the data's rows first and the chains' last visible states
        after, ``logits`` and ``probs`` (n + M, H) of their hidden units, ``weights`` (n + M,):
        ``-1/n`` for each data row and ``1/M`` for each chain, the views of each part (and the
        transposes :meth:`RBM.contrastive_gradients` reads), and ``chain_visible`` (M, D) for the
        visible probabilities of the chains' last sweep."""
        n, width = batch.shape
        key = (n, width, n_chains, model.n_hidden, batch.dtype, batch.device)
        found = self._buffer_cache.get(key)
        if found is not None:
            return found
        if len(self._buffer_cache) > 4:  # shapes seen long ago (another model, another batch size)
            self._buffer_cache.clear()
        rows = n + n_chains
        visible = batch.new_empty(rows, width)
        logits = batch.new_empty(rows, model.n_hidden)
        probs = torch.empty_like(logits)
        weights = torch.cat([batch.new_full((n,), -1.0 / n), batch.new_full((n_chains,), 1.0)])
        weights[n:] /= n_chains
        buffers = {
            "visible": visible, "logits": logits, "probs": probs, "weights": weights,
            "data": visible[:n], "chains": visible[n:],
            "data_logits": logits[:n], "chain_logits": logits[n:],
            "data_probs": probs[:n], "chain_probs": probs[n:],
            "chain_visible": batch.new_empty(n_chains, width),
            # transposed views for RBM.contrastive_gradients, made once
            "visible_t": visible.t(), "data_t": visible[:n].t(), "chains_t": visible[n:].t(),
            "probs_t": probs.t(),
        }  # fmt: skip
        self._buffer_cache[key] = buffers
        return buffers

    def _apply(
        self, model: RBM, batch, softplus_term, data_probs, visible, model_probs, stacked=None
    ):
        """Write the CD gradients (Eqs. 1.11-1.12; centered: Eq. 1.18) into ``.grad`` and return
        the CD objective (Eq. 1.10) from the chains' statistics: ``visible`` (M, D) and
        ``model_probs`` (M, H) for the model term, ``data_probs`` (B, H) for the data term, and
        ``softplus_term`` = ``mean_m sum_j softplus(.) - mean_d sum_j softplus(.)``; ``stacked``:
        the buffers of :meth:`_buffers` when the rows live there."""
        grads = model.contrastive_gradients(
            batch, data_probs, visible, model_probs, stacked=stacked
        )
        loss = torch.dot(model.visible_bias, grads[1])
        if self.centering:
            if not self.offsets:
                raise RuntimeError("the centered gradient needs setup() (or a resumed state)")
            hidden_offset = self.offsets["hidden_offset"]  # Eq. 1.19, updated in place
            hidden_offset.lerp_(data_probs.mean(0), CENTERING_RATE)
            grads = centered_gradients(*grads, self.offsets["visible_offset"], hidden_offset)
        for param, grad in zip(
            (model.weight, model.visible_bias, model.hidden_bias), grads, strict=True
        ):
            param.grad = grad
        return loss.add_(softplus_term)

    @staticmethod
    def _softplus_term(buffers: dict) -> torch.Tensor:
        """``mean_m sum_j softplus(.) - mean_d sum_j softplus(.)`` from the stacked logits."""
        return torch.dot(F.softplus(buffers["logits"]).sum(1), buffers["weights"])

    def _chains_from_data(self, model: RBM, batch: torch.Tensor, generator: torch.Generator):
        """CD-k (Eq. 1.13): k Gibbs sweeps from h ~ p(h | v_data); the last visible state and both
        hidden statistics are probabilities."""
        buffers = self._buffers(model, batch, batch.shape[0])
        buffers["data"].copy_(batch)
        data_logits = model.hidden_logits(batch, out=buffers["data_logits"])
        data_probs = torch.sigmoid(data_logits, out=buffers["data_probs"])
        hidden = self.draw(data_probs, generator)
        for i in range(self.k):
            last = i == self.k - 1
            visible = model.visible_probs(hidden, out=buffers["chains"] if last else None)
            if last:
                model_logits = model.hidden_logits(visible, out=buffers["chain_logits"])
                model_probs = torch.sigmoid(model_logits, out=buffers["chain_probs"])
            else:
                visible = self.draw(visible, generator, out=torch.empty_like(visible))
                hidden = self.draw(model.hidden_probs(visible), generator, out=hidden)
        term = self._softplus_term(buffers)
        return self._apply(model, batch, term, data_probs, visible, model_probs, buffers)

    def _persistent_chains(self, model: RBM, batch: torch.Tensor, generator: torch.Generator):
        """PCD-k (Eq. 1.14): k sweeps of the persistent chains (binary states). The chains' last
        visible states are drawn under the data batch in one buffer, so that a single product
        with W gives the hidden inputs of both; their hidden states are drawn into the chains'
        own tensor."""
        if self.chain_hidden is None:
            self._init_chains(model, batch, generator)
        hidden = self.chain_hidden
        buffers = self._buffers(model, batch, hidden.shape[0])
        for _ in range(self.k - 1):  # PCD-k (Eq. 1.14), with any number of chains
            visible = self.draw(model.visible_probs(hidden), generator)
            hidden = self.draw(model.hidden_probs(visible), generator, out=hidden)
        visible_probs = model.visible_probs(hidden, out=buffers["chain_visible"])
        buffers["data"].copy_(batch)
        visible = self.draw(visible_probs, generator, out=buffers["chains"])
        logits = model.hidden_logits(buffers["visible"], out=buffers["logits"])
        torch.sigmoid(logits, out=buffers["probs"])
        term = self._softplus_term(buffers)
        data_probs, model_probs = buffers["data_probs"], buffers["chain_probs"]
        self.chain_hidden = self.draw(model_probs, generator, out=hidden)
        return self._apply(model, batch, term, data_probs, visible, model_probs, buffers)

    def monitor(
        self, model: RBM, train_subset: torch.Tensor, test_images: torch.Tensor
    ) -> dict[str, float]:
        """Reconstruction error, pseudo-log-likelihood and (``monitor_gap``) the free-energy gap
        (Hinton 2010, s. 6); the free energy of the binarized training rows serves both."""
        if self._monitor_cache is None or self._monitor_cache[0].shape != train_subset.shape:
            generator = make_generator(self.monitor_seed, train_subset.device, "monitor-binarize")
            train_bin = binarize(train_subset, "stochastic", generator=generator)
            test_bin = binarize(
                test_images[: train_subset.shape[0]], "stochastic", generator=generator
            )
            self._monitor_cache = (train_bin, test_bin)
        train_bin, test_bin = self._monitor_cache
        with torch.no_grad():
            reconstruction = model.visible_probs(model.hidden_probs(train_subset))
            recon_error = (reconstruction - train_subset).pow(2).mean().item()
            pll_generator = make_generator(self.monitor_seed, train_bin.device, "monitor-pll")
            train_energy = model.free_energy(train_bin)
            pll = pseudo_log_likelihood(
                model, train_bin, generator=pll_generator, free_energy=train_energy
            )
            metrics = {"reconstruction_error": recon_error, "pseudo_log_likelihood": pll.mean()}
            if self.monitor_gap:
                gap = model.free_energy(test_bin).mean() - train_energy.mean()
                metrics["free_energy_gap"] = gap
        return {k: v if isinstance(v, float) else v.item() for k, v in metrics.items()}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        chains = {} if self.chain_hidden is None else {"chain_hidden": self.chain_hidden}
        return {**chains, **self.offsets}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.chain_hidden = tensors.get("chain_hidden")
        self.offsets = {k: tensors[k] for k in ("visible_offset", "hidden_offset") if k in tensors}
