"""``VAE``: the package's variational autoencoder as a scikit-learn transformer.

``fit`` trains an :class:`rbmvae.VAE` with :func:`rbmvae.fit` (the negative ELBO of
docs/derivation.md, Eq. 2.6, with Adam); ``transform`` gives the posterior means of q(z | x),
``inverse_transform`` the decoder's means p(x = 1 | z), ``score_samples`` the importance-weighted
log p(x) (Eq. 3.7).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from ..likelihood import iwae_log_likelihood
from ..models.rbm import bernoulli
from ..models.vae import VAE as VAEModel
from ..training import TrainConfig, fit
from ._common import (
    FLOAT_DTYPES,
    TRAINING_DTYPE,
    CheckpointMixin,
    TagsMixin,
    check_int,
    check_positive,
    device_of,
    draw_seed,
    fitted_random_state,
    generator_from,
    report_pass,
    row_chunks,
    to_numpy,
    to_tensor,
    training_data,
    validate,
)

_IWAE_ROWS = (
    "score_samples draws the importance samples for the rows together, in the order given, so a "
    "row's estimate depends on the rows scored with it (it is exact only as iwae_k grows)"
)
EXPECTED_FAILED_CHECKS = {
    "check_methods_subset_invariance": _IWAE_ROWS,
    "check_methods_sample_order_invariance": _IWAE_ROWS,
}


class VAE(
    TagsMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, CheckpointMixin, BaseEstimator
):
    """Variational autoencoder with Bernoulli pixels as a scikit-learn transformer.

    Encoder n_features -> n_hidden (ReLU) -> mean and log-variance of a Gaussian code of size
    ``n_components``; decoder back to Bernoulli logits (``rbmvae.VAE``). Trained by
    ``rbmvae.fit`` with its VAE defaults (Adam, constant rate, one reparameterized sample).

    Parameters
    ----------
    n_components : int, default=2
        Size of the code z.
    n_hidden : int, default=256
        Units of the encoder's and the decoder's hidden layer.
    learning_rate : float, default=1e-3
        Adam's learning rate.
    batch_size : int, default=128
        Rows per minibatch.
    n_iter : int, default=20
        Passes over the training data (epochs).
    binarize : {"none", "stochastic", "threshold"}, default="none"
        Training rows as given (grey values as Bernoulli targets), a fresh Bernoulli draw of each
        row every pass (then the model is a distribution over binary rows), or ``x > 0.5``.
    iwae_k : int, default=1000
        Importance samples per row in ``score_samples`` and ``score``.
    verbose : int, default=0
        1 prints one line per pass (ELBO of up to 1,000 training rows, time); 2 adds progress
        bars.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights and the training; ``sample`` draws from ``random_state_``;
        ``score_samples`` from ``random_state`` anew at each call (repeatable for an int).
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where the model computes; inputs and outputs stay NumPy arrays.

    Attributes
    ----------
    module_ : rbmvae.VAE
        The trained network, on the CPU, in float32 (trained so for float32 and float64 input
        alike; ``transform`` and ``inverse_transform`` return the input's dtype).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when they are all strings.
    history_ : list of dict
        ``rbmvae.fit``'s per-pass records (loss, train ELBO and its parts, times).
    """

    _EXPECTED_FAILED_CHECKS = EXPECTED_FAILED_CHECKS
    _kind = "vae"
    _TRAIN_CONFIG_PARAMS = {
        "learning_rate": "learning_rate",
        "batch_size": "batch_size",
        "epochs": "n_iter",
        "binarize": "binarize",
        "seed": "random_state",
    }

    def __init__(
        self,
        n_components=2,
        *,
        n_hidden=256,
        learning_rate=1e-3,
        batch_size=128,
        n_iter=20,
        binarize="none",
        iwae_k=1000,
        verbose=0,
        random_state=None,
        device="cpu",
    ):
        self.n_components = n_components
        self.n_hidden = n_hidden
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.binarize = binarize
        self.iwae_k = iwae_k
        self.verbose = verbose
        self.random_state = random_state
        self.device = device

    def _train_config(self, seed: int) -> TrainConfig:
        """The ``TrainConfig`` of the parameters (validated there; errors are ValueErrors)."""
        return TrainConfig.defaults_for(
            "vae",
            epochs=check_int("n_iter", self.n_iter, 1),
            batch_size=check_int("batch_size", self.batch_size, 1),
            learning_rate=check_positive("learning_rate", self.learning_rate),
            binarize=self.binarize,
            seed=seed,
        )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    def _module(self) -> VAEModel:
        """The trained network on the estimator's device (a copy unless that is the CPU)."""
        device = device_of(self)
        if device.type == "cpu":
            return self.module_
        return copy.deepcopy(self.module_).to(device)

    def _dtype(self) -> torch.dtype:
        return self.module_.decoder_output.weight.dtype

    def fit(self, X, y=None):
        """Fit the VAE to the rows of X: ``n_iter`` passes minimizing the negative ELBO.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, values in [0, 1].
        y : None
            Ignored.

        Returns
        -------
        self : VAE
            The fitted estimator.
        """
        sizes = [check_int(name, getattr(self, name), 1) for name in ("n_components", "n_hidden")]
        check_int("iwae_k", self.iwae_k, 1)
        check_int("verbose", int(self.verbose), 0)
        device = device_of(self)
        self._train_config(0)
        X = validate(self, X, reset=True)
        self.random_state_ = check_random_state(self.random_state)
        config = self._train_config(draw_seed(self.random_state_))
        model = VAEModel(n_visible=X.shape[1], n_hidden=sizes[1], n_latent=sizes[0])
        model = model.to(device=device, dtype=TRAINING_DTYPE)  # float32 for either input dtype
        data = training_data(to_tensor(X, TRAINING_DTYPE, device), type(self).__name__)
        self.history_ = fit(model, data, config, progress=self.verbose > 1)
        self.module_ = model.cpu().eval()
        self._n_features_out = sizes[0]
        for record in self.history_:
            report_pass(self, record, "ELBO", "train_elbo")
        return self

    @torch.no_grad()
    def _rows(self, X, function, dtype=None) -> np.ndarray:
        """``function(model, rows)`` over X in chunks, concatenated, as an ndarray of ``dtype``."""
        model = self._module()
        chunks = row_chunks(X, self._dtype(), device_of(self))
        return to_numpy(torch.cat([function(model, rows) for rows in chunks]), dtype)

    def transform(self, X):
        """The posterior means ``E[z | x]``: the encoder's mean of q(z | x) (the mu of Eq. 2.3).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Codes, in X's dtype.
        """
        check_is_fitted(self)
        X = validate(self, X, reset=False)
        return self._rows(X, lambda model, rows: model.encode(rows)[0], X.dtype)

    def inverse_transform(self, X):
        """The decoder's means ``p(x = 1 | z)`` for codes z (Eq. 2.5).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes z.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Pixel probabilities, in the codes' dtype.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=FLOAT_DTYPES)
        if Z.shape[1] != self.module_.n_latent:
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__} codes have "
                f"{self.module_.n_latent} (n_components)"
            )
        return self._rows(Z, lambda model, rows: model.decode(rows), Z.dtype)

    def sample(self, n_samples=1, *, binary=False):
        """Rows drawn from the model: ``z ~ N(0, I)``, decoded (from ``random_state_``).

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows.
        binary : bool, default=False
            Return Bernoulli draws of the pixels instead of their probabilities.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        n_samples = check_int("n_samples", n_samples, 1)
        device = device_of(self)
        generator = generator_from(fitted_random_state(self), device)
        with torch.no_grad():
            probs = self._module().sample(n_samples, generator)
            rows = bernoulli(probs, generator) if binary else probs
        return to_numpy(rows)

    def score_samples(self, X):
        """The importance-weighted estimate of ``log p(x)`` per row (Eq. 3.7), in nats.

        ``log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x)`` with K = ``iwae_k`` draws from
        q(z | x), taken from ``random_state`` (repeatable for an int); a lower bound that rises to
        log p(x) as K grows (Burda et al. 2016).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows in [0, 1] (binary for a likelihood).

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            float64.
        """
        check_is_fitted(self)
        X = validate(self, X, reset=False)
        generator = generator_from(self.random_state, device_of(self))
        k = check_int("iwae_k", self.iwae_k, 1)

        def iwae(model: VAEModel, rows: torch.Tensor) -> torch.Tensor:
            return iwae_log_likelihood(model, rows, k=k, generator=generator, per_image=True)

        return self._rows(X, iwae)

    def score(self, X, y=None):
        """The mean of ``score_samples(X)``: the average log-likelihood in nats.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows in [0, 1].
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return float(self.score_samples(X).mean())

    # -- interchange -------------------------------------------------------------------------------

    def to_model(self) -> VAEModel:
        """A copy of the trained network as an :class:`rbmvae.VAE` (on the estimator's device)."""
        check_is_fitted(self)
        return copy.deepcopy(self.module_).to(device_of(self))

    @classmethod
    def from_model(cls, model: VAEModel, **params) -> VAE:
        """A fitted estimator holding a copy of ``model`` (an :class:`rbmvae.VAE`).

        ``n_components`` and ``n_hidden`` are the model's; other parameters from ``params``.
        """
        if not isinstance(model, VAEModel):
            raise ValueError(f"from_model needs an rbmvae.VAE, got {type(model).__name__}")
        sizes = {"n_components": model.n_latent, "n_hidden": model.n_hidden}
        for name, size in sizes.items():
            if params.setdefault(name, size) != size:
                raise ValueError(f"{name} must be the model's ({size})")
        estimator = cls(**params)
        estimator.module_ = copy.deepcopy(model).cpu().eval()
        estimator.n_features_in_ = model.n_visible
        estimator._n_features_out = model.n_latent
        estimator.history_ = []
        return estimator
