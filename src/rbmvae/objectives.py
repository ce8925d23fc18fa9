"""Training objectives: what each model kind contributes to the one loop of ``training.fit``.

An objective initializes its model from the data, fills ``p.grad`` for one minibatch, reports its
epoch-end monitor and keeps any sampler state for an exact resume. :data:`OBJECTIVES` maps a
model kind to the factory of its objective.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import one_of, positive_int
from .data import BINARIZATIONS, binarize
from .models.rbm import RBM, bernoulli, pseudo_log_likelihood
from .models.vae import negative_elbo, negative_elbo_gradients
from .rng import make_generator

RBM_METHODS = ("cd", "pcd")


class Objective:
    """What one model kind contributes to :func:`fit`. Subclasses override the hooks."""

    def setup(
        self, model: nn.Module, train_images: torch.Tensor, generator: torch.Generator
    ) -> None:
        """Initialize the model (and any sampler state) from the training data."""

    def parameter_groups(self, model: nn.Module, weight_decay: float) -> list[dict]:
        """Parameter groups for the optimizer; weight decay goes on weight matrices only."""
        decayed = [p for name, p in model.named_parameters() if "weight" in name]
        others = [p for name, p in model.named_parameters() if "weight" not in name]
        return [
            {"params": decayed, "weight_decay": weight_decay},
            {"params": others, "weight_decay": 0.0},
        ]

    def step(
        self, model: nn.Module, batch: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Fill ``p.grad`` for every parameter from one batch; return the scalar loss."""
        raise NotImplementedError

    def monitor(
        self, model: nn.Module, train_subset: torch.Tensor, test_images: torch.Tensor
    ) -> dict[str, float]:
        """Epoch-end metrics on a fixed training subset and the held-out test images."""
        return {}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Sampler state to keep for an exact resume."""
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass


class ContrastiveDivergence(Objective):
    """CD-k and persistent CD (PCD-k) for the RBM (docs/derivation.md, Eqs. 1.10-1.14).

    CD-k starts a Gibbs chain at each data batch; PCD keeps ``batch_size`` persistent chains (in
    hidden space) across updates. Following Hinton's guide, the hidden units driven by data are
    sampled, the last visible update of CD uses probabilities, and every hidden statistic uses
    probabilities; PCD's chains keep binary visible states.
    """

    def __init__(self, method: str = "cd", k: int = 1, monitor_seed: int = 0) -> None:
        one_of("RBM method", method, RBM_METHODS)
        positive_int("k", k)
        self.method = method
        self.k = k
        self.monitor_seed = monitor_seed
        self.chain_hidden: torch.Tensor | None = None
        self._monitor_cache: tuple | None = None

    def setup(self, model: RBM, train_images: torch.Tensor, generator: torch.Generator) -> None:
        model.reset_parameters(visible_mean=train_images.mean(0), generator=generator)
        self.chain_hidden = None

    def _init_chains(self, model: RBM, batch: torch.Tensor, generator: torch.Generator) -> None:
        with torch.no_grad():
            self.chain_hidden = bernoulli(model.hidden_probs(batch), generator)

    def step(self, model: RBM, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One CD-k / PCD-k update's gradients (Eqs. 1.11-1.14) and the CD objective (Eq. 1.10).

        Per step: ``2 k + 1`` products with W (under PCD the data and the chains' last visible
        states share one) and two for the weight gradient; the fewest random draws the algorithm
        needs (the hidden units driven by the data under CD and the chains' states, none for the
        last visible update of CD, which uses probabilities); sigmoids and samples in place on the
        products' outputs. The loss comes from the logits at hand and the visible-bias gradient:
        ``mean F(v_d) - mean F(v_m) = b'(mean v_m - mean v_d) + mean_m sum_j softplus(.) - mean_d
        sum_j softplus(.)`` (Eq. 1.7).
        """
        with torch.no_grad():
            if self.method == "pcd":
                chains = self._persistent_chains(model, batch, generator)
            else:
                chains = self._chains_from_data(model, batch, generator)
            data_softplus, data_probs, visible, model_softplus, model_probs = chains
            grads = model.contrastive_gradients(batch, data_probs, visible, model_probs)
            for param, grad in zip(
                (model.weight, model.visible_bias, model.hidden_bias), grads, strict=True
            ):
                param.grad = grad
            loss = torch.dot(model.visible_bias, grads[1])
            loss += model_softplus / visible.shape[0] - data_softplus / batch.shape[0]
            return loss

    def _chains_from_data(self, model: RBM, batch: torch.Tensor, generator: torch.Generator):
        """CD-k (Eq. 1.13): k Gibbs sweeps from h ~ p(h | v_data); the last visible state and both
        hidden statistics are probabilities."""
        softplus = torch.nn.functional.softplus
        data_logits = model.hidden_logits(batch)
        data_softplus = softplus(data_logits).sum()
        data_probs = data_logits.sigmoid_()
        hidden = bernoulli(data_probs, generator)
        for i in range(self.k):
            visible = model.visible_probs(hidden)
            if i < self.k - 1:
                visible = bernoulli(visible, generator, out=torch.empty_like(visible))
            model_logits = model.hidden_logits(visible)
            if i == self.k - 1:
                model_softplus = softplus(model_logits).sum()
            model_probs = model_logits.sigmoid_()
            if i < self.k - 1:
                hidden = bernoulli(model_probs, generator)
        return data_softplus, data_probs, visible, model_softplus, model_probs

    def _persistent_chains(self, model: RBM, batch: torch.Tensor, generator: torch.Generator):
        """PCD-k (Eq. 1.14): k sweeps of the persistent chains (binary states). The chains' last
        visible states are drawn under the data batch in one buffer, so that a single product
        with W gives the hidden inputs of both."""
        softplus = torch.nn.functional.softplus
        if self.chain_hidden is None:
            self._init_chains(model, batch, generator)
        hidden = self.chain_hidden
        n = batch.shape[0]
        for i in range(self.k):
            visible_probs = model.visible_probs(hidden)
            if i < self.k - 1:
                visible = bernoulli(visible_probs, generator, out=torch.empty_like(visible_probs))
                hidden = bernoulli(model.hidden_probs(visible), generator)
                continue
            both = batch.new_empty(n + visible_probs.shape[0], batch.shape[1])
            both[:n] = batch
            visible = bernoulli(visible_probs, generator, out=both[n:])
            logits = model.hidden_logits(both)
            data_softplus = softplus(logits[:n]).sum()
            model_softplus = softplus(logits[n:]).sum()
            probs = logits.sigmoid_()
            data_probs, model_probs = probs[:n], probs[n:]
            self.chain_hidden = bernoulli(model_probs, generator)
        return data_softplus, data_probs, visible, model_softplus, model_probs

    def monitor(
        self, model: RBM, train_subset: torch.Tensor, test_images: torch.Tensor
    ) -> dict[str, float]:
        """Reconstruction error, pseudo-log-likelihood and the free-energy gap (Hinton 2010, s. 6)."""
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
            pll = pseudo_log_likelihood(model, train_bin, generator=pll_generator).mean().item()
            gap = (model.free_energy(test_bin).mean() - model.free_energy(train_bin).mean()).item()
        return {
            "reconstruction_error": recon_error,
            "pseudo_log_likelihood": pll,
            "free_energy_gap": gap,
        }

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {} if self.chain_hidden is None else {"chain_hidden": self.chain_hidden}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.chain_hidden = tensors.get("chain_hidden")


class VAEObjective(Objective):
    """The mean negative ELBO of a minibatch (docs/derivation.md, Eq. 2.6), with its gradient
    written out by hand (``models.vae.negative_elbo_gradients``, checked against autograd).

    One reparameterized sample of z per image (Eq. 2.3), the Bernoulli log-likelihood from the
    decoder's logits (Eq. 2.5) and the closed-form KL (Eq. 2.4). ``binarize`` is the training
    data's form (``none``: grey values as Bernoulli targets; ``stochastic``: a fresh binary draw
    each epoch); the epoch-end monitor evaluates the ELBO on data of the same form, binarized once
    with a fixed seed, and draws its z with a fixed-seed generator, so that it is deterministic and
    leaves the training generator alone.
    """

    def __init__(
        self, binarize: str = "none", monitor_seed: int = 0, monitor_batch: int = 2000
    ) -> None:
        one_of("binarization", binarize, BINARIZATIONS)
        self.binarize = binarize
        self.monitor_seed = monitor_seed
        self.monitor_batch = monitor_batch
        self._monitor_cache: tuple | None = None

    def setup(
        self, model: nn.Module, train_images: torch.Tensor, generator: torch.Generator
    ) -> None:
        """Redraw every parameter from ``generator``; the decoder starts at the pixel marginals."""
        model.reset_parameters(generator=generator, visible_mean=train_images.mean(0))

    def step(
        self, model: nn.Module, batch: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """The mean negative ELBO of ``batch`` (Eq. 2.6); its closed-form gradient into ``.grad``.

        The gradient is the chain rule written out (``models.vae.negative_elbo_gradients``), the
        same as autograd's on the loss but without building its graph.
        """
        loss, grads = negative_elbo_gradients(model, batch, generator)
        for name, param in model.named_parameters():
            param.grad = grads[name]
        return loss

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, images: torch.Tensor, generator: torch.Generator
    ) -> tuple[float, float, float]:
        """Mean ``(ELBO, reconstruction log-likelihood, KL)`` over ``images``, in batches."""
        totals = torch.zeros(3, device=images.device, dtype=torch.float64)
        for start in range(0, images.shape[0], self.monitor_batch):
            loss, reconstruction, kl = negative_elbo(
                model, images[start : start + self.monitor_batch], generator
            )
            parts = torch.stack([-loss.sum(), reconstruction.sum(), kl.sum()])
            totals += parts.to(torch.float64)
        elbo, reconstruction, kl = (totals / max(1, images.shape[0])).tolist()
        return elbo, reconstruction, kl

    def monitor(
        self, model: nn.Module, train_subset: torch.Tensor, test_images: torch.Tensor
    ) -> dict[str, float]:
        """Train and test ELBO with their reconstruction and KL parts (nats per image)."""
        cache = self._monitor_cache
        if cache is None or cache[0] is not train_subset or cache[1] is not test_images:
            generator = make_generator(self.monitor_seed, train_subset.device, "monitor-binarize")
            train_data = binarize(train_subset, self.binarize, generator=generator)
            test_data = binarize(test_images, self.binarize, generator=generator)
            self._monitor_cache = (train_subset, test_images, train_data, test_data)
        train_data, test_data = self._monitor_cache[2:]
        metrics: dict[str, float] = {}
        for name, images in (("train", train_data), ("test", test_data)):
            generator = make_generator(self.monitor_seed, images.device, "monitor-elbo", name)
            elbo, reconstruction, kl = self.evaluate(model, images, generator)
            metrics[f"{name}_elbo"] = elbo
            metrics[f"{name}_reconstruction"] = reconstruction
            metrics[f"{name}_kl"] = kl
        return metrics


# The objective of each model kind, built from the training settings (a ``TrainConfig``).
OBJECTIVES = {
    "rbm": lambda config: ContrastiveDivergence(method=config.method, k=config.k),
    "vae": lambda config: VAEObjective(binarize=config.binarize),
}
