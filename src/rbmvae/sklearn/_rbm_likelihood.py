"""The exact and AIS log-likelihood of :class:`rbmvae.sklearn.BernoulliRBM`, with its bracket.

``log p(v) = -F(v) - log Z`` (Eq. 1.4) with ``log Z`` enumerated over the smaller layer
(Eq. 3.1) or estimated by annealed importance sampling from the base-rate RBM of the training
data (Eqs. 3.2-3.6), both from :mod:`rbmvae.likelihood`; log Z is cached per parameter values.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..basics.checks import one_of
from ..likelihood import (
    ais_log_partition,
    base_rate_visible_bias,
    log_partition_exact,
    rbm_log_likelihood,
)
from ..models.rbm import RBM
from ._common import device_of, generator_from, to_tensor, validate

LIKELIHOOD_METHODS = ("auto", "exact", "ais")
EXACT_MAX_UNITS = 20  # "auto": enumerate a layer of at most this many units (2^20 states), else AIS


@dataclass(frozen=True)
class LogLikelihood:
    """The mean log-likelihood of rows under an RBM, in nats, with its bracket (Eq. 1.4).

    ``log p(v) = -F(v) - log Z``: ``mean`` over the rows, ``low``/``high`` the same with the
    ends of the interval of log Z (equal to ``mean`` when log Z is exact; for AIS the +-3
    standard-error interval of the importance weights, Eq. 3.5), ``per_sample`` of shape
    (n_samples,) in float64, ``method`` ``"exact"`` or ``"ais"``.
    """

    mean: float
    low: float
    high: float
    method: str
    log_z: float
    log_z_low: float
    log_z_high: float
    per_sample: np.ndarray


class RBMLikelihoodMixin:
    """``log_likelihood`` and ``score`` for an estimator with the fitted arrays of
    ``BernoulliRBM`` and its ``_module``, ``_rows``, ``_feature_sum`` and ``_n_samples_seen``."""

    def _base_rate(self, X) -> torch.Tensor:
        """Visible biases of the AIS base-rate RBM (Eq. 3.6): the smoothed training means
        (those of X for a model loaded without them)."""
        if self._n_samples_seen == 0:
            return base_rate_visible_bias(to_tensor(X, torch.float64, torch.device("cpu")))
        p = (self._feature_sum + 1.0) / (self._n_samples_seen + 2.0)  # one pseudo-count each
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return torch.from_numpy(np.log(p) - np.log1p(-p))

    def _log_partition(self, model: RBM, X, method: str, ais_runs: int, ais_betas: int):
        """``(log Z, low, high, method)``: exact (Eq. 3.1) or AIS (Eqs. 3.2-3.5), cached per
        parameter values and settings."""
        one_of("method", method, LIKELIHOOD_METHODS)
        if method == "auto":
            small = min(self.components_.shape) <= EXACT_MAX_UNITS
            method = "exact" if small else "ais"
        base = self._base_rate(X) if method == "ais" else torch.zeros(0)
        digest = hashlib.sha256()
        for array in (self.components_, self.intercept_hidden_, self.intercept_visible_, base):
            digest.update(np.ascontiguousarray(array).tobytes())
        key = (digest.hexdigest(), method, ais_runs, ais_betas, repr(self.random_state))
        cache = getattr(self, "_log_z_cache", None)
        if cache is not None and cache[0] == key:
            return cache[1]
        if method == "exact":
            log_z = log_partition_exact(model)
            result = (log_z, log_z, log_z, method)
        else:
            generator = generator_from(self.random_state, device_of(self))
            ais = ais_log_partition(
                model, base, n_runs=ais_runs, n_betas=ais_betas, generator=generator
            )
            result = (ais.log_z, ais.log_z_low, ais.log_z_high, method)
        self._log_z_cache = (key, result)
        return result

    def log_likelihood(self, X, *, method="auto", ais_runs=100, ais_betas=14500):
        """The log-likelihood of the rows of X, exact or by AIS, with its bracket (Eq. 1.4).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Binary rows (binarize grey data first for a likelihood that means anything).
        method : {"auto", "exact", "ais"}, default="auto"
            ``exact`` enumerates the smaller layer (at most 25 units, Eq. 3.1); ``ais`` runs
            annealed importance sampling from the base-rate RBM of the training data
            (Salakhutdinov & Murray 2008); ``auto``: exact when a layer has at most 20 units.
        ais_runs, ais_betas : int, default=100, 14500
            AIS runs and intermediate distributions.

        Returns
        -------
        result : LogLikelihood
            ``mean``, ``low``, ``high`` in nats per row, ``per_sample`` of shape (n_samples,).
        """
        check_is_fitted(self)
        X = validate(self, X, reset=False)
        model = self._module()
        log_z, low_z, high_z, used = self._log_partition(model, X, method, ais_runs, ais_betas)
        per_row = self._rows(X, lambda m, rows: rbm_log_likelihood(m, rows, log_z, per_image=True))
        mean = float(per_row.mean())
        return LogLikelihood(
            mean=mean,
            low=mean - (high_z - log_z),
            high=mean + (log_z - low_z),
            method=used,
            log_z=log_z,
            log_z_low=low_z,
            log_z_high=high_z,
            per_sample=per_row,
        )

    def score(self, X, y=None):
        """The mean log-likelihood of the rows of X in nats (``log_likelihood(X).mean``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Binary rows.
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return self.log_likelihood(X).mean
