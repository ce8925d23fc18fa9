"""The negative ELBO for the VAE (docs/derivation.md, s. 2)."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import one_of
from ..data import BINARIZATIONS, binarize
from ..models.vae import negative_elbo, negative_elbo_gradients
from ..rng import make_generator
from .base import Objective


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
