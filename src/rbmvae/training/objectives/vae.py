"""The negative ELBO and the importance-weighted bound for the VAE (docs/derivation.md, s. 2)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ...basics.checks import one_of
from ...basics.errors import ConfigError
from ...basics.rng import make_generator
from ...data import BINARIZATIONS, binarize
from ...models.vae import gaussian_kl, negative_elbo, negative_elbo_gradients
from .base import Objective


def iwae_loss(
    model: nn.Module,
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | None,
    kl_weight: float = 1.0,
) -> torch.Tensor:
    """Minus the mean importance-weighted bound L_k of ``x`` (Eq. 2.7), differentiable.

    ``L_k = log (1/k) sum_j p(x | z_j) p(z_j)^b / q(z_j | x)^b`` with ``z_j = mean + std eps_j``
    (Eq. 2.3), ``eps`` of shape (k, n, K) drawn from ``generator``, and ``b = kl_weight`` (KL
    warm-up, Eq. 2.8: ``b < 1`` weakens the prior's pull early in training; ``b = 1`` is the bound).
    For ``k = 1`` the KL is taken in closed form (Eq. 2.4), which gives the ELBO's gradient with
    less variance: ``b KL - log p(x | z)``. Shape: ``x`` (n, D) -> scalar.
    """
    mean, log_var = model.encode(x)
    if k == 1:
        z = model.reparameterize(mean, log_var, generator)
        logits = model.decode_logits(z)
        reconstruction = (x * logits - nn.functional.softplus(logits)).sum(-1)
        return (kl_weight * gaussian_kl(mean, log_var) - reconstruction).mean()
    eps = torch.randn((k, *mean.shape), generator=generator, device=x.device, dtype=mean.dtype)
    z = mean + torch.exp(0.5 * log_var) * eps
    logits = model.decode_logits(z)  # (k, n, D)
    log_px = (x * logits - nn.functional.softplus(logits)).sum(-1)
    # log p(z) - log q(z | x): the (2 pi) constants cancel, and z - mean = std * eps
    log_ratio = 0.5 * (log_var + eps.pow(2) - z.pow(2)).sum(-1)
    bound = torch.logsumexp(log_px + kl_weight * log_ratio, dim=0) - math.log(k)
    return -bound.mean()


class VAEObjective(Objective):
    """The mean negative ELBO of a minibatch (docs/derivation.md, Eq. 2.6), with its gradient
    written out by hand (``models.vae.negative_elbo_gradients``, checked against autograd); or,
    with ``iwae_k > 1``, minus the importance-weighted bound L_k (Eq. 2.7), by autograd.

    One reparameterized sample of z per image (Eq. 2.3), the Bernoulli log-likelihood from the
    decoder's logits (Eq. 2.5) and the closed-form KL (Eq. 2.4). ``binarize`` is the training
    data's form (``none``: grey values as Bernoulli targets; ``stochastic``: a fresh binary draw
    each epoch); the epoch-end monitor evaluates the ELBO on data of the same form, binarized once
    with a fixed seed, and draws its z with a fixed-seed generator, so that it is deterministic and
    leaves the training generator alone.

    ``kl_warmup_epochs`` > 0 weights the KL term (for ``iwae_k > 1``: ``log p(z) - log q(z | x)``)
    by ``b = min(1, t / T)`` at training step t of ``T = kl_warmup_epochs * steps_per_epoch``
    (Eq. 2.8). The step count is part of the objective's saved state, so a resumed run continues
    the ramp exactly. Steps with ``b < 1`` use autograd; steps at ``b = 1`` with ``iwae_k = 1`` use
    the hand-written gradient.
    """

    def __init__(
        self,
        binarize: str = "none",
        monitor_seed: int = 0,
        monitor_batch: int = 2000,
        iwae_k: int = 1,
        kl_warmup_epochs: float = 0.0,
        batch_size: int = 128,
    ) -> None:
        one_of("binarization", binarize, BINARIZATIONS)
        if iwae_k < 1 or kl_warmup_epochs < 0:
            raise ConfigError(
                f"need iwae_k >= 1 and kl_warmup_epochs >= 0, got {iwae_k}, {kl_warmup_epochs}"
            )
        self.binarize = binarize
        self.monitor_seed = monitor_seed
        self.monitor_batch = monitor_batch
        self.iwae_k = iwae_k
        self.kl_warmup_epochs = kl_warmup_epochs
        self.batch_size = batch_size
        self._steps = 0  # training steps taken (the KL warm-up's clock)
        self._steps_per_epoch = 0
        self._monitor_cache: tuple | None = None

    def setup(
        self, model: nn.Module, train_images: torch.Tensor, generator: torch.Generator
    ) -> None:
        """Redraw every parameter from ``generator``; the decoder starts at the pixel marginals."""
        model.reset_parameters(generator=generator, visible_mean=train_images.mean(0))
        self._steps = 0
        self._steps_per_epoch = math.ceil(train_images.shape[0] / self.batch_size)

    def kl_weight(self) -> float:
        """The KL term's weight ``b`` of the next step (Eq. 2.8): 1 without warm-up."""
        if self.kl_warmup_epochs <= 0:
            return 1.0
        ramp = self.kl_warmup_epochs * max(1, self._steps_per_epoch)
        return min(1.0, self._steps / ramp)

    def step(
        self, model: nn.Module, batch: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """The minibatch loss (Eq. 2.6, or minus Eq. 2.7) with its gradient in ``.grad``.

        The ELBO's gradient is the chain rule written out (``models.vae.negative_elbo_gradients``),
        the same as autograd's on the loss but without building its graph.
        """
        weight = self.kl_weight()
        self._steps += 1
        if self.iwae_k == 1 and weight == 1.0:
            loss, grads = negative_elbo_gradients(model, batch, generator)
            for name, param in model.named_parameters():
                param.grad = grads[name]
            return loss
        with torch.enable_grad():
            model.zero_grad(set_to_none=True)
            loss = iwae_loss(model, batch, self.iwae_k, generator, weight)
            loss.backward()
        return loss.detach()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The warm-up clock (only when there is a warm-up: otherwise nothing to keep)."""
        if self.kl_warmup_epochs <= 0:
            return {}
        return {"steps": torch.tensor([self._steps, self._steps_per_epoch], dtype=torch.int64)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if "steps" in tensors:
            self._steps, self._steps_per_epoch = (int(v) for v in tensors["steps"].tolist())

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
        if self.kl_warmup_epochs > 0:
            metrics["kl_weight"] = self.kl_weight()
        return metrics
