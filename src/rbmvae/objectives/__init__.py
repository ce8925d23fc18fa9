"""Training objectives: what each model kind contributes to the one loop of ``training.fit``.

An objective initializes its model from the data, fills ``p.grad`` for one minibatch, reports its
epoch-end monitor and keeps any sampler state for an exact resume. :data:`OBJECTIVES` maps a
model kind to the factory of its objective, built from the training settings (a ``TrainConfig``).
"""

from __future__ import annotations

from .base import Objective
from .rbm import RBM_METHODS, ContrastiveDivergence
from .vae import VAEObjective

OBJECTIVES = {
    "rbm": lambda config: ContrastiveDivergence(method=config.method, k=config.k),
    "vae": lambda config: VAEObjective(
        binarize=config.binarize,
        iwae_k=config.iwae_k,
        kl_warmup_epochs=config.kl_warmup_epochs,
        batch_size=config.batch_size,
    ),
}

__all__ = ["OBJECTIVES", "RBM_METHODS", "ContrastiveDivergence", "Objective", "VAEObjective"]
