"""Training objectives: what each model kind contributes to the one loop of ``training.fit``.

An objective initializes its model from the data, fills ``p.grad`` for one minibatch, reports its
epoch-end monitor and keeps any sampler state for an exact resume. :data:`OBJECTIVES` maps a
model kind to the factory of its objective, built from the training settings (a ``TrainConfig``).
"""

from __future__ import annotations

from .base import Objective
from .rbm import RBM_INITS, RBM_METHODS, ContrastiveDivergence
from .tempering import ParallelTempering
from .vae import VAEObjective

OBJECTIVES = {
    "rbm": lambda config: rbm_objective(config),
    "vae": lambda config: VAEObjective(
        binarize=config.binarize,
        iwae_k=config.iwae_k,
        kl_warmup_epochs=config.kl_warmup_epochs,
        batch_size=config.batch_size,
    ),
}


def rbm_objective(config) -> ContrastiveDivergence:
    """CD-k / PCD-k (``ContrastiveDivergence``) or PT-PCD (``ParallelTempering``) from a config."""
    options = {
        "k": config.k,
        "k_final": getattr(config, "k_final", 0),
        "chains": getattr(config, "chains", 0),
        "init": getattr(config, "init", "hinton"),
        "centering": getattr(config, "centering", False),
        "bernoulli_bits": getattr(config, "bernoulli_bits", 24),
    }
    if config.method == "pt":
        return ParallelTempering(
            temperatures=config.pt_temperatures, min_beta=config.pt_min_beta, **options
        )
    return ContrastiveDivergence(method=config.method, **options)


__all__ = [
    "OBJECTIVES",
    "RBM_INITS",
    "RBM_METHODS",
    "ContrastiveDivergence",
    "Objective",
    "ParallelTempering",
    "VAEObjective",
]
