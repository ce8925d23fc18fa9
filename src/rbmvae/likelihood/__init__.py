"""Log-likelihood estimates: exact and AIS log Z with the RAISE bound for RBMs (``rbm``); the ELBO,
IWAE and quadrature, and active units for VAEs (``vae``), docs/derivation.md, section 3; the
conditional log-likelihood of missing pixels given the observed ones (``conditional``: exact,
clamped AIS, importance sampling, the k-NN mixture), section 5."""

from .rbm import (
    MAX_ENUMERATED_UNITS,
    SM08_SCHEDULE,
    AISResult,
    ais_betas,
    ais_log_partition,
    base_rate_visible_bias,
    binary_states,
    log_partition_exact,
    raise_log_likelihood,
    rbm_log_likelihood,
)
from .vae import (
    active_units,
    elbo,
    iwae_log_likelihood,
    log_likelihood_quadrature,
    posterior_mean_variance,
)

__all__ = [
    "MAX_ENUMERATED_UNITS",
    "SM08_SCHEDULE",
    "AISResult",
    "active_units",
    "ais_betas",
    "ais_log_partition",
    "base_rate_visible_bias",
    "binary_states",
    "elbo",
    "iwae_log_likelihood",
    "log_likelihood_quadrature",
    "log_partition_exact",
    "posterior_mean_variance",
    "raise_log_likelihood",
    "rbm_log_likelihood",
]
