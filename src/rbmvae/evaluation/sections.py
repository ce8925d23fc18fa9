"""The parts of an evaluation report: each model kind's log-likelihood section (``LIKELIHOODS``),
the inpainting section and the warnings, as JSON-ready dicts with units."""

from __future__ import annotations

import math
import time

import torch

from ..basics.devices import module_device
from ..basics.errors import ConfigError, RbmvaeError
from ..basics.rng import make_generator
from ..likelihood import (
    MAX_ENUMERATED_UNITS,
    ais_log_partition,
    base_rate_visible_bias,
    elbo,
    iwae_log_likelihood,
    log_likelihood_quadrature,
    log_partition_exact,
    posterior_mean_variance,
    raise_log_likelihood,
    rbm_log_likelihood,
)
from ..training.checkpoint import read_metadata
from .scoring import inpainting_table

# ------------------------------------------------------------------------------------------------
from .settings import EvaluationSettings

# Where `rbmvae evaluate` and the study keep a model's evaluation, beside its checkpoint.
EVALUATION_FILE = "evaluation.json"
REPORT_FORMAT = "rbmvae-evaluation"
REPORT_VERSION = 1
NATS = "nats per image"
# The quadrature's square in the latent plane: N(0, 1) puts 2e-9 of its mass beyond 6 per axis.
QUADRATURE_LIMIT = 6.0


def _figure(value: float, unit: str) -> dict:
    """``{"value", "unit"}``; a non-finite value (an unbounded interval end) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    return {"value": value, "unit": unit}


def _number(figure: dict, digits: int = 3) -> str:
    value = figure["value"]
    return "unbounded" if value is None else f"{value:.{digits}f}"


def _rbm_likelihood(rbm, test: torch.Tensor, data, settings: EvaluationSettings) -> dict:
    result = {}
    smaller = min(rbm.n_visible, rbm.n_hidden)
    if smaller <= MAX_ENUMERATED_UNITS:
        layer = "hidden" if rbm.n_hidden <= rbm.n_visible else "visible"
        started = time.perf_counter()
        log_z = log_partition_exact(rbm)
        ll = rbm_log_likelihood(rbm, test, log_z)
        result["exact"] = {
            "method": f"enumeration of the 2^{smaller} {layer} states (Eq. 3.1)",
            "log_z": _figure(log_z, "nats"),
            "mean_log_likelihood": _figure(ll, NATS),
            "seconds": _figure(time.perf_counter() - started, "s"),
        }
    if settings.ais_runs > 0:
        result["ais"] = _ais_section(rbm, test, data, settings)
    return result


# The checks an AIS figure must pass to be printed as the model's log-likelihood.
MIN_EFFECTIVE_RUNS = 10.0
MAX_BRACKET_NATS = 2.0
MAX_DOUBLED_DELTA = 0.5


def _ais_section(rbm, test: torch.Tensor, data, settings: EvaluationSettings) -> dict:
    """AIS (Eqs. 3.2-3.6) with its diagnostics: effective runs, the RAISE bracket (Eq. 3.11)
    and the move of the figure when the betas are doubled."""
    device = rbm.weight.device
    started = time.perf_counter()
    base = base_rate_visible_bias(data.train_images)

    def run(n_betas: int, *purpose: str):
        generator = make_generator(settings.seed, device, *purpose)
        return ais_log_partition(
            rbm, base, n_runs=settings.ais_runs, n_betas=n_betas, generator=generator
        )

    ais = run(settings.ais_betas)
    free = rbm_log_likelihood(rbm, test, 0.0)
    part = {
        "method": "annealed importance sampling from the base-rate RBM (SM08; Eqs. 3.2-3.6)",
        "log_z": _figure(ais.log_z, "nats"),
        "log_z_low": _figure(ais.log_z_low, "nats"),
        "log_z_high": _figure(ais.log_z_high, "nats"),
        "log_z_base": _figure(ais.log_z_base, "nats"),
        "mean_log_likelihood": _figure(free - ais.log_z, NATS),
        "mean_log_likelihood_low": _figure(free - ais.log_z_high, NATS),
        "mean_log_likelihood_high": _figure(free - ais.log_z_low, NATS),
        "n_runs": ais.n_runs,
        "n_betas": ais.n_betas,
        "matmuls": ais.matmuls,
        "effective_runs": _figure(ais.effective_runs, "runs"),
        "log_weight_std": _figure(ais.log_weight_std, "nats"),
        "interval": "log of (mean +- 3 standard errors) of the importance weights",
    }
    problems = []
    if ais.effective_runs < MIN_EFFECTIVE_RUNS:
        problems.append(f"effective runs {ais.effective_runs:.1f} < {MIN_EFFECTIVE_RUNS:g}")
    if settings.ais_doubled_check:
        doubled = run(2 * settings.ais_betas, "ais-doubled")
        delta = ais.log_z - doubled.log_z  # the move of the log-likelihood
        part["doubled_betas"] = {
            "n_betas": doubled.n_betas,
            "mean_log_likelihood": _figure(free - doubled.log_z, NATS),
            "delta": _figure(delta, "nats"),
            "effective_runs": _figure(doubled.effective_runs, "runs"),
        }
        if not abs(delta) < MAX_DOUBLED_DELTA:
            problems.append(f"doubling the betas moves it by {delta:+.2f} nats")
    if settings.raise_images > 0:
        problems += _raise_bracket(rbm, test, base, free, ais.log_z, settings, part)
    part["reliable"] = not problems
    part["problems"] = problems
    part["seconds"] = _figure(time.perf_counter() - started, "s")
    return part


def _raise_bracket(rbm, test, base, free, log_z, settings, part) -> list[str]:
    """RAISE on the first ``raise_images`` test images: their mean ``log Z_rev`` (Eq. 3.11) gives
    the conservative end of the bracket for all the test images; returns the failed checks."""
    n = min(settings.raise_images, test.shape[0])
    sub = test[:n].to(rbm.weight)
    values = raise_log_likelihood(
        rbm,
        sub,
        base,
        n_betas=settings.ais_betas,
        generator=make_generator(settings.seed, rbm.weight.device, "raise"),
    )
    with torch.no_grad():
        log_z_reverse = float((-rbm.free_energy(sub).double() - values).mean())
    width = log_z_reverse - log_z
    part["raise"] = {
        "method": "RAISE: reverse annealing from each test image (Burda et al. 2015; Eq. 3.11)",
        "n_images": n,
        "n_betas": settings.ais_betas,
        "mean_log_likelihood_subset": _figure(float(values.mean()), NATS),
        "standard_error_subset": _figure(
            float(values.std() / math.sqrt(n)) if n > 1 else 0.0, NATS
        ),
        "log_z_reverse": _figure(log_z_reverse, "nats"),
    }
    part["bracket"] = {
        "low": _figure(free - log_z_reverse, NATS),
        "high": _figure(free - log_z, NATS),
        "width": _figure(width, "nats"),
        "description": "RAISE (conservative) to forward AIS (optimistic when under-annealed)",
    }
    if not abs(width) <= MAX_BRACKET_NATS:
        return [f"the RAISE-AIS bracket is {width:.2f} nats wide (> {MAX_BRACKET_NATS:g})"]
    return []


def _mean_and_error(values: torch.Tensor) -> tuple[float, float]:
    """The mean of per-image values and its standard error over the images (float64)."""
    values = values.double()
    n = values.numel()
    error = float(values.std(correction=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(values.mean()), error


def _quadrature_section(vae, test: torch.Tensor, iwae: torch.Tensor, settings) -> dict:
    """log p(x) of a 2-D code by quadrature (Eq. 3.8) on every test image, the same on the first
    ``quadrature_check_images`` at twice the grid's resolution (the grid's own error), and how far
    below it the IWAE estimate lies on the same images (its bias, Eq. 3.7)."""
    grid, limit = settings.quadrature_grid, QUADRATURE_LIMIT
    started = time.perf_counter()
    exact = log_likelihood_quadrature(vae, test, grid_size=grid, limit=limit)
    seconds = time.perf_counter() - started
    mean, error = _mean_and_error(exact)
    gap_mean, gap_error = _mean_and_error(iwae - exact.to(iwae.dtype))
    section = {
        "method": f"quadrature over a {grid} x {grid} grid on [-{limit:g}, {limit:g}]^2 (Eq. 3.8)",
        "mean_log_likelihood": _figure(mean, NATS),
        "standard_error": _figure(error, NATS),
        "grid_size": grid,
        "limit": limit,
        "iwae_minus_quadrature": _figure(gap_mean, NATS),
        "iwae_minus_quadrature_standard_error": _figure(gap_error, NATS),
        "seconds": _figure(seconds, "s"),
    }
    n_check = min(settings.quadrature_check_images, test.shape[0])
    if n_check:
        finer = log_likelihood_quadrature(vae, test[:n_check], grid_size=2 * grid - 1, limit=limit)
        section["check"] = {
            "method": f"the first {n_check} images again at a {2 * grid - 1}-point grid",
            "images": n_check,
            "finer_minus_grid": _figure(float((finer - exact[:n_check]).mean()), NATS),
        }
    return section


def _vae_likelihood(vae, test: torch.Tensor, data, settings: EvaluationSettings) -> dict:
    device = module_device(vae)
    started = time.perf_counter()
    lower = elbo(vae, test, generator=make_generator(settings.seed, device), per_image=True)
    elbo_seconds = time.perf_counter() - started
    started = time.perf_counter()
    iwae = iwae_log_likelihood(
        vae,
        test,
        k=settings.iwae_k,
        generator=make_generator(settings.seed, device),
        per_image=True,
    )
    iwae_seconds = time.perf_counter() - started
    elbo_mean, elbo_error = _mean_and_error(lower)
    iwae_mean, iwae_error = _mean_and_error(iwae)
    started = time.perf_counter()
    variances = posterior_mean_variance(vae, test)
    threshold = settings.active_threshold
    section = {
        "elbo": {
            "method": "one reparameterized sample per image (Eq. 2.2)",
            "mean": _figure(elbo_mean, NATS),
            "standard_error": _figure(elbo_error, NATS),
            "seconds": _figure(elbo_seconds, "s"),
        },
        "iwae": {
            "method": f"importance-weighted estimate with K = {settings.iwae_k} (Eq. 3.7)",
            "mean_log_likelihood": _figure(iwae_mean, NATS),
            "standard_error": _figure(iwae_error, NATS),
            "k": settings.iwae_k,
            "seconds": _figure(iwae_seconds, "s"),
        },
        "active_units": {
            "method": f"variance over the test images of the posterior mean > {threshold} (Eq. 4.2)",
            "count": _figure(int((variances > threshold).sum()), "units"),
            "of": int(variances.numel()),
            "variances": [float(v) for v in variances],
            "seconds": _figure(time.perf_counter() - started, "s"),
        },
    }
    if vae.n_latent == 2 and settings.quadrature_grid:
        section["quadrature"] = _quadrature_section(vae, test, iwae, settings)
    return section


# How each kind of model is scored: its log-likelihood estimator and the setting that says how
# many test images it uses.
LIKELIHOODS = {
    "rbm": (_rbm_likelihood, "likelihood_images"),
    "vae": (_vae_likelihood, "iwae_images"),
}


def _likelihood_section(model, data, settings: EvaluationSettings, device) -> dict:
    measure, count_setting = LIKELIHOODS[model.kind]
    n_test = data.test_images.shape[0]
    count = getattr(settings, count_setting) or n_test
    if not 0 < count <= n_test:
        raise ConfigError(f"the log-likelihood needs 1 to {n_test} test images, got {count}")
    seed = settings.seed
    binary = data.binarized_test_images(count, seed).to(device)
    section = {
        "test_images": {
            "n": count,
            "binarization": "stochastic",
            "seed": seed,
            "description": f"the first {count} test images, each pixel drawn as "
            f"Bernoulli(grey value) from the stream 'binarize-test' of seed {seed}",
        }
    }
    section.update(measure(model, binary, data, settings))
    return section


def _inpainting_section(models: dict, data, settings: EvaluationSettings, device) -> dict:
    table = inpainting_table(
        models,
        data,
        fractions=settings.fractions,
        n=settings.inpaint_images,
        steps=settings.inpaint_steps,
        seed=settings.seed,
        baselines=settings.baselines,
        k_neighbours=settings.k_neighbours,
        device=device,
        evidence=settings.inpaint_evidence,
        halves=settings.halves,
        conditional_images=settings.conditional_images,
        conditional={
            "k": settings.conditional_k,
            "ais_runs": settings.conditional_ais_runs,
            "ais_betas": settings.conditional_ais_betas,
        },
        knn_smoothing=settings.knn_smoothing,
        stability=settings.inpaint_stability,
        chains=settings.inpaint_chains,
        start=settings.inpaint_start,
    )
    units = {
        **dict.fromkeys(("conditional", "conditional_error", "conditional_spread"), NATS),
        **dict.fromkeys(("mse", "mse_doubled"), "squared error per missing pixel"),
        "acceptance": "fraction of proposals accepted",
        "bce": "nats per missing pixel",
        "accuracy": "fraction of images",
        "seconds": "s",
    }
    rows = [
        {key: _figure(value, units[key]) if key in units else value for key, value in r.items()}
        for r in table.rows
    ]
    return {"settings": table.settings, "classifier": table.classifier, "rows": rows}


def _target_warnings(model, model_dir) -> list[str]:
    """A model trained on grey targets (``binarize="none"``, the VAE's old default) is scored as
    a model of binary images: say so."""
    if model_dir is None:
        return []
    try:
        binarization = read_metadata(model_dir).get("train_config", {}).get("binarize")
    except RbmvaeError:
        return []
    if binarization != "none":
        return []
    return [
        f"this {model.label()} was trained on grey pixel values as Bernoulli targets "
        "(binarize='none'), but "
        "it is scored here as a model of binary images (stochastically binarized test digits); "
        "its log-likelihoods are not those of a model trained on binary data (retrain with "
        "--binarize stochastic for comparable figures)"
    ]
