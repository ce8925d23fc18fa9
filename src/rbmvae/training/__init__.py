"""Training: the one loop :func:`fit` (``loop``), its settings :class:`TrainConfig` with the
per-kind defaults and named recipes (``config``), the resumable state of a run (``state``), model
directories and their safetensors checkpoints (``checkpoint``), and what each model kind
contributes to the loop (``objectives/``).

This package exports the loop and its settings, so ``from rbmvae.training import fit,
TrainConfig`` works."""

from .config import CHOICES, KIND_DEFAULTS, RECIPES, TrainConfig
from .loop import TrainingInterrupted, fit, make_objective

__all__ = [
    "CHOICES",
    "KIND_DEFAULTS",
    "RECIPES",
    "TrainConfig",
    "TrainingInterrupted",
    "fit",
    "make_objective",
]
