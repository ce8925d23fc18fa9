"""``rbmvae evaluate`` as a library call: the settings, the JSON-ready report and its text form.

:class:`EvaluationSettings` is the one vocabulary of evaluation settings shared by
:func:`evaluate`, the command line and the study's profiles.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import torch

from ._checks import fraction, positive_int
from .checkpoint import read_metadata
from .devices import module_device
from .errors import ConfigError, RbmvaeError
from .likelihood import (
    MAX_ENUMERATED_UNITS,
    ais_log_partition,
    base_rate_visible_bias,
    elbo,
    iwae_log_likelihood,
    log_partition_exact,
    posterior_mean_variance,
    raise_log_likelihood,
    rbm_log_likelihood,
)
from .rng import make_generator
from .scoring import InpaintingTable, inpainting_table

# ------------------------------------------------------------------------------------------------
# The report of ``rbmvae evaluate``


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
        object.__setattr__(self, "halves", tuple(self.halves))
        for name in ("ais_betas", "iwae_k", "inpaint_images", "inpaint_steps", "k_neighbours"):
            positive_int(name, getattr(self, name))
        for name in ("likelihood_images", "iwae_images"):
            if getattr(self, name) is not None:
                positive_int(name, getattr(self, name))
        if not isinstance(self.raise_images, int) or self.raise_images < 0:
            raise ConfigError(f"raise_images must be >= 0, got {self.raise_images!r}")
        if not isinstance(self.ais_runs, int) or self.ais_runs < 0:
            raise ConfigError(f"ais_runs must be a non-negative integer, got {self.ais_runs!r}")
        for value in self.fractions:
            fraction("each missing fraction", value)

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
        return {**dataclasses.asdict(self), "fractions": list(self.fractions)}


# Where `rbmvae evaluate` and the study keep a model's evaluation, beside its checkpoint.
EVALUATION_FILE = "evaluation.json"
REPORT_FORMAT = "rbmvae-evaluation"
REPORT_VERSION = 1
NATS = "nats per image"


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


def _vae_likelihood(vae, test: torch.Tensor, data, settings: EvaluationSettings) -> dict:
    device = module_device(vae)
    started = time.perf_counter()
    lower = elbo(vae, test, generator=make_generator(settings.seed, device))
    elbo_seconds = time.perf_counter() - started
    started = time.perf_counter()
    iwae = iwae_log_likelihood(
        vae, test, k=settings.iwae_k, generator=make_generator(settings.seed, device)
    )
    iwae_seconds = time.perf_counter() - started
    started = time.perf_counter()
    variances = posterior_mean_variance(vae, test)
    threshold = settings.active_threshold
    return {
        "elbo": {
            "method": "one reparameterized sample per image (Eq. 2.2)",
            "mean": _figure(lower, NATS),
            "seconds": _figure(elbo_seconds, "s"),
        },
        "iwae": {
            "method": f"importance-weighted estimate with K = {settings.iwae_k} (Eq. 3.7)",
            "mean_log_likelihood": _figure(iwae, NATS),
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
        halves=tuple(settings.halves),
        conditional_images=settings.conditional_images,
        conditional={
            "k": settings.conditional_k,
            "ais_runs": settings.conditional_ais_runs,
            "ais_betas": settings.conditional_ais_betas,
        },
        knn_smoothing=settings.knn_smoothing,
        stability=settings.inpaint_stability,
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


def evaluate(
    model: torch.nn.Module | None,
    data,
    settings: EvaluationSettings | None = None,
    *,
    model_dir: str | None = None,
    device: torch.device | str | None = None,
    **changes,
) -> dict:
    """Every measurement of ``rbmvae evaluate`` as one JSON-ready object.

    With a model: its test log-likelihood (RBM: exact when a layer has at most
    ``MAX_ENUMERATED_UNITS`` units, and AIS unless ``ais_runs`` is 0; VAE: ELBO, IWAE and active
    units) on stochastically binarized test images, then the inpainting table
    (:func:`rbmvae.scoring.inpainting_table`). With ``model=None``: the baseline rows alone.
    ``settings`` (default :class:`EvaluationSettings`) with ``changes`` applied by name. Every
    figure is ``{"value": ..., "unit": ...}``; the settings and each part's time are included.
    """
    settings = (settings or EvaluationSettings()).replace(**changes)
    started_all = time.perf_counter()
    if model is None and not settings.baselines:
        raise ConfigError("nothing to evaluate: give a model or ask for the baselines")
    if device is None:
        device = module_device(model) if model is not None else torch.device("cpu")
    device = torch.device(device)
    report = {
        "format": REPORT_FORMAT,
        "format_version": REPORT_VERSION,
        "model": None,
        "dataset": {
            "name": data.name,
            "n_train": int(data.train_images.shape[0]),
            "n_test": int(data.test_images.shape[0]),
        },
        "device": str(device),
        "settings": settings.to_dict(),
    }
    timing, models = {}, {}
    if model is not None:
        report["model"] = {"dir": model_dir, "kind": model.kind, "config": model.config()}
        report["warnings"] = _target_warnings(model, model_dir)
        started = time.perf_counter()
        report["log_likelihood"] = _likelihood_section(model, data, settings, device)
        timing["log_likelihood"] = time.perf_counter() - started
        models[model.label()] = model
    if settings.fractions:
        started = time.perf_counter()
        report["inpainting"] = _inpainting_section(models, data, settings, device)
        timing["inpainting"] = time.perf_counter() - started
    timing["total"] = time.perf_counter() - started_all
    report["seconds"] = {part: _figure(value, "s") for part, value in timing.items()}
    return report


def _exact_line(part: dict, report: dict) -> str:
    return (
        f"  exact  log p(v) {part['mean_log_likelihood']['value']:10.3f}   "
        f"log Z {part['log_z']['value']:.3f}   ({part['method']}; "
        f"{part['seconds']['value']:.1f} s)"
    )


def _ais_line(part: dict, report: dict) -> str:
    runs = (
        f"({part['n_runs']} runs, {part['n_betas']} betas, effective runs "
        f"{part['effective_runs']['value']:.1f}; {part['seconds']['value']:.1f} s)"
    )
    checks = []
    if "bracket" in part:
        bracket = part["bracket"]
        checks.append(
            f"RAISE bracket [{_number(bracket['low'])}, {_number(bracket['high'])}] "
            f"({part['raise']['n_images']} images)"
        )
    if "doubled_betas" in part:
        checks.append(f"doubled betas move it {part['doubled_betas']['delta']['value']:+.3f}")
    checks = ("\n         " + "; ".join(checks)) if checks else ""
    if not part["reliable"]:
        problems = "; ".join(part.get("problems") or ["effective runs below 10%"])
        return (
            f"  AIS    log p(v)  unreliable   {runs}\n"
            f"         {problems}: log Z is likely underestimated and log p(v) too high; "
            f"use more betas or runs{checks}"
        )
    return (
        f"  AIS    log p(v) {part['mean_log_likelihood']['value']:10.3f} "
        f"[{_number(part['mean_log_likelihood_low'])}, "
        f"{_number(part['mean_log_likelihood_high'])}]   "
        f"log Z {part['log_z']['value']:.3f}   {runs}{checks}"
    )


def _elbo_line(part: dict, report: dict) -> str:
    return f"  ELBO            {part['mean']['value']:10.3f}   ({part['seconds']['value']:.1f} s)"


def _iwae_line(part: dict, report: dict) -> str:
    return (
        f"  IWAE   log p(x) {part['mean_log_likelihood']['value']:10.3f}   "
        f"(K = {part['k']}; {part['seconds']['value']:.1f} s)"
    )


def _active_line(part: dict, report: dict) -> str:
    return (
        f"  active units    {part['count']['value']} of {part['of']} "
        f"(posterior-mean variance > {report['settings']['active_threshold']})"
    )


# One text line per part of the log-likelihood section, in this order.
_LIKELIHOOD_LINES = {
    "exact": _exact_line,
    "ais": _ais_line,
    "elbo": _elbo_line,
    "iwae": _iwae_line,
    "active_units": _active_line,
}


def _inpainting_lines(inpainting: dict) -> list[str]:
    settings = inpainting["settings"]
    classifier = inpainting["classifier"]
    plain = [
        {k: v["value"] if isinstance(v, dict) else v for k, v in r.items()}
        for r in inpainting["rows"]
    ]
    return [
        f"inpainting {settings['n_images']} test images ({settings['steps']} sweeps, last "
        f"{settings['average_last']} averaged, start from the training mean, seed "
        f"{settings['seed']}); MSE and BCE per missing pixel, BCE clipped at "
        f"{settings['bce_clip']:g}",
        f"classifier: {classifier['name']}, test accuracy {classifier['test_accuracy']:.1%} "
        f"({classifier['accuracy_on_complete_images']:.1%} on these images complete)",
        InpaintingTable(plain, settings, classifier).format(),
    ]


def format_report(report: dict) -> str:
    """The report of :func:`evaluate` as text: log-likelihoods, the inpainting table, timings.

    An AIS estimate whose own diagnostic (the effective number of runs) fails is printed as
    "unreliable", not as a number.
    """
    model = report.get("model")
    data = report["dataset"]
    where = f"on {data['name']} (device {report['device']})"
    if model is None:
        lines = [f"baselines {where}"]
    else:
        lines = [f"{model['kind']} {model['config']} from {model['dir']} {where}"]
        lines += [f"warning: {text}" for text in report.get("warnings", [])]
    likelihood = report.get("log_likelihood")
    if likelihood:
        test = likelihood["test_images"]
        lines.append(
            f"test log-likelihood, nats per image, on {test['n']} test images binarized "
            f"stochastically with seed {test['seed']}:"
        )
        for key, line in _LIKELIHOOD_LINES.items():
            if key in likelihood:
                lines.append(line(likelihood[key], report))
    if report.get("inpainting"):
        lines += _inpainting_lines(report["inpainting"])
    timing = ", ".join(f"{part} {fig['value']:.1f} s" for part, fig in report["seconds"].items())
    lines.append(f"time: {timing}")
    return "\n".join(lines)
