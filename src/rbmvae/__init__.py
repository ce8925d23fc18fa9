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
    report = rbmvae.evaluate(vae, data, iwae_k=500, n=200)
"""

__version__ = "0.1.0"

from .checkpoint import load_model, save_model  # noqa: E402
from .data import Dataset, binarize, load_dataset, read_idx  # noqa: E402
from .errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    DataError,
    RbmvaeError,
    TrainingError,
)
from .evaluation import evaluate  # noqa: E402
from .inpainting import (  # noqa: E402
    clamped_gibbs,
    inpaint,
    masked_mse,
    metropolis_within_gibbs,
    pseudo_gibbs,
)
from .masks import half_mask, make_mask, random_mask, square_mask  # noqa: E402
from .models import RBM, VAE  # noqa: E402
from .reproduce import resolve_settings, run_study  # noqa: E402
from .training import TrainConfig, fit  # noqa: E402

__all__ = [
    "RBM",
    "VAE",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Dataset",
    "RbmvaeError",
    "TrainConfig",
    "TrainingError",
    "__version__",
    "binarize",
    "clamped_gibbs",
    "evaluate",
    "metropolis_within_gibbs",
    "pseudo_gibbs",
    "resolve_settings",
    "run_study",
    "fit",
    "half_mask",
    "inpaint",
    "load_dataset",
    "load_model",
    "make_mask",
    "masked_mse",
    "random_mask",
    "read_idx",
    "save_model",
    "square_mask",
]
