"""The interface every training objective implements (the hooks of ``training.fit``)."""

from __future__ import annotations

import torch
from torch import nn


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

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called before each epoch (0-based) of ``epochs``, also when resuming mid-epoch."""

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
