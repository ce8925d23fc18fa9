"""The one vocabulary of evaluation settings, shared by :func:`rbmvae.evaluation.evaluate`, the
command line (``rbmvae evaluate``) and the study's profiles."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..basics.checks import fraction, one_of, positive_int
from ..basics.errors import ConfigError
from .scoring import INPAINT_STARTS


@dataclass(frozen=True)
class EvaluationSettings:
    """Every setting of an evaluation (``rbmvae evaluate``, :func:`evaluate`, the study's profiles).

    Log-likelihoods are measured on the first ``likelihood_images`` test images (None: all) for an
    RBM and the first ``iwae_images`` (None: all) for a VAE, each pixel drawn as Bernoulli(grey
    value) with ``seed``; AIS uses ``ais_runs`` runs of ``ais_betas`` intermediate distributions
    (0 runs: no AIS), checked by a rerun with twice the betas (``ais_doubled_check``) and by RAISE
    on the first ``raise_images`` test images (0: none); IWAE ``iwae_k`` importance samples.
    Inpainting scores the first
    ``inpaint_images`` test images at each of ``fractions`` missing, ``inpaint_steps`` sweeps per
    chain, next to the zero, mean and ``k_neighbours``-NN fills when ``baselines``; the observed
    pixels are the binarized test digits (``inpaint_evidence="grey"``: the grey ones, labelled),
    also with the ``halves`` (``top``, ``bottom``) missing; the conditional log-likelihood of the
    missing pixels (Eqs. 5.5-5.8) on the first ``conditional_images`` of them (VAE: ``conditional_k``
    samples; RBM over 25 hidden: AIS with ``conditional_ais_runs`` x ``conditional_ais_betas``;
    k-NN smoothed by ``knn_smoothing``); ``inpaint_stability`` reruns each chain at twice the sweeps.
    Each model runs ``inpaint_chains`` chains per image and averages them (Eq. 5.9), started at
    the training mean (``inpaint_start="mean"``) or chain c at the c-th nearest training image on
    the observed pixels (``"neighbours"``). A VAE with a 2-D code is also scored by quadrature
    over a ``quadrature_grid``-point grid per axis (0: none; Eq. 3.8), checked on the first
    ``quadrature_check_images`` at twice the resolution.
    """

    seed: int = 0
    likelihood_images: int | None = None
    iwae_images: int | None = None
    ais_runs: int = 100
    ais_betas: int = 14500
    iwae_k: int = 5000
    active_threshold: float = 0.01
    fractions: tuple[float, ...] = (0.2, 0.5, 0.8)
    inpaint_images: int = 1000
    inpaint_steps: int = 200
    k_neighbours: int = 10
    baselines: bool = True
    raise_images: int = 100
    ais_doubled_check: bool = True
    inpaint_evidence: str = "binary"
    halves: tuple[str, ...] = ()
    conditional_images: int = 200
    conditional_k: int = 500
    conditional_ais_runs: int = 16
    conditional_ais_betas: int = 1000
    knn_smoothing: float = 0.05
    inpaint_stability: bool = False
    inpaint_chains: int = 1
    inpaint_start: str = "mean"
    quadrature_grid: int = 401
    quadrature_check_images: int = 1000

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
        object.__setattr__(self, "halves", tuple(self.halves))
        for name in (
            "ais_betas",
            "iwae_k",
            "inpaint_images",
            "inpaint_steps",
            "k_neighbours",
            "inpaint_chains",
        ):
            positive_int(name, getattr(self, name))
        for name in ("likelihood_images", "iwae_images"):
            if getattr(self, name) is not None:
                positive_int(name, getattr(self, name))
        for name in ("quadrature_grid", "quadrature_check_images"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        if self.quadrature_grid == 1:
            raise ConfigError("quadrature_grid must be 0 (none) or at least 2")
        if not isinstance(self.raise_images, int) or self.raise_images < 0:
            raise ConfigError(f"raise_images must be >= 0, got {self.raise_images!r}")
        if not isinstance(self.ais_runs, int) or self.ais_runs < 0:
            raise ConfigError(f"ais_runs must be a non-negative integer, got {self.ais_runs!r}")
        for value in self.fractions:
            fraction("each missing fraction", value)
        one_of("inpaint start", self.inpaint_start, INPAINT_STARTS)

    def replace(self, **changes) -> EvaluationSettings:
        """A copy with ``changes`` (setting names as keys; an unknown name is a ConfigError)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(
                f"unknown evaluation setting {sorted(unknown)[0]!r}; "
                f"known: {', '.join(f.name for f in dataclasses.fields(self))}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready (tuples as lists), so that a stored copy compares equal after a round trip."""
        values = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
