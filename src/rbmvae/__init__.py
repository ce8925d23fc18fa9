"""rbmvae: Restricted Boltzmann Machines and Variational Autoencoders for images.

A notebook session::

    import rbmvae
    data = rbmvae.load_dataset("mnist-sample")
    rbm = rbmvae.RBM(n_visible=784, n_hidden=100)
    history = rbmvae.fit(rbm, data, epochs=5)
    mask = rbmvae.random_mask(16, 784, 0.5)
    filled = rbmvae.inpaint(rbm, data.test_images[:16], mask)

    vae = rbmvae.VAE(n_latent=2)
    rbmvae.fit(vae, data, epochs=10)
    filled = rbmvae.inpaint(vae, data.test_images[:16], mask, sampler="metropolis")
    report = rbmvae.evaluate(vae, data, iwae_k=500, inpaint_images=200)

This module exports the library: data, masks, models, the training loop, checkpoints, samplers,
likelihood estimators and the evaluation. The study (``rbmvae reproduce``) lives in
``rbmvae.study``, the command line in ``rbmvae.cli``.
"""

from ._version import __version__
from .basics.errors import (
    BusyError,
    CheckpointError,
    ConfigError,
    DataError,
    OutputError,
    RbmvaeError,
    TrainingError,
)
from .basics.rng import derive_seed, make_generator
from .data import Dataset, binarize, load_dataset
from .data.idx import read_idx, write_idx
from .data.masks import half_mask, make_mask, random_mask, square_mask
from .evaluation import EvaluationSettings, evaluate, format_report
from .evaluation.scoring import knn_fill, mean_fill, missing_pixel_errors, zero_fill
from .likelihood import (
    ais_log_partition,
    elbo,
    iwae_log_likelihood,
    log_partition_exact,
    rbm_log_likelihood,
)
from .models import RBM, VAE
from .models.rbm import pseudo_log_likelihood
from .samplers import SAMPLERS, clamped_gibbs, inpaint, metropolis_within_gibbs, pseudo_gibbs
from .training import TrainConfig, fit
from .training.checkpoint import load_model, save_model
from .zoo import pretrained, pretrained_cards, pretrained_names

__all__ = [
    "RBM",
    "SAMPLERS",
    "VAE",
    "BusyError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Dataset",
    "EvaluationSettings",
    "OutputError",
    "RbmvaeError",
    "TrainConfig",
    "TrainingError",
    "__version__",
    "ais_log_partition",
    "binarize",
    "clamped_gibbs",
    "derive_seed",
    "elbo",
    "evaluate",
    "fit",
    "format_report",
    "half_mask",
    "inpaint",
    "iwae_log_likelihood",
    "knn_fill",
    "load_dataset",
    "load_model",
    "pretrained",
    "pretrained_cards",
    "pretrained_names",
    "log_partition_exact",
    "make_generator",
    "make_mask",
    "mean_fill",
    "metropolis_within_gibbs",
    "missing_pixel_errors",
    "pseudo_gibbs",
    "pseudo_log_likelihood",
    "random_mask",
    "rbm_log_likelihood",
    "read_idx",
    "save_model",
    "square_mask",
    "write_idx",
    "zero_fill",
]
