"""A trial's score on the validation digits, by model kind (``SCORES``), and what it reports to the
pruner while it trains (``INTERMEDIATE``).

RBM: the RAISE end of the AIS bracket (``rbmvae.evaluate``'s AIS section: docs/derivation.md,
Eqs. 3.2-3.6 and 3.11), the conservative figure; a figure the estimator calls unreliable (too few
effective runs, a bracket over 2 nats, a move under doubled betas) is no score. VAE: the
importance-weighted estimate (Eq. 3.7).
"""

from __future__ import annotations

import torch

from .. import EvaluationSettings, evaluate, make_generator, pseudo_log_likelihood
from ..likelihood import ais_log_partition, base_rate_visible_bias, rbm_log_likelihood

MONITORED_DIGITS = 1000  # validation digits of the pseudo-likelihood and the short AIS


def evaluation_settings(settings) -> EvaluationSettings:
    """The likelihood part of an evaluation, no inpainting, from a study's settings."""
    return EvaluationSettings(
        seed=settings.seed,
        likelihood_images=settings.score_images,
        iwae_images=settings.score_images,
        ais_runs=settings.ais_runs,
        ais_betas=settings.ais_betas,
        raise_images=settings.raise_images,
        ais_doubled_check=settings.ais_doubled_check,
        iwae_k=settings.iwae_k,
        fractions=(),
        baselines=False,
    )


def rbm_summary(report: dict) -> dict:
    """The AIS figures of an RBM's evaluation report: ``low`` is the RAISE end (None without
    RAISE), ``ll`` the forward AIS figure, with the diagnostics and the verdict."""
    ais = report["log_likelihood"]["ais"]
    return {
        "test_images": report["log_likelihood"]["test_images"]["n"],
        "ll": ais["mean_log_likelihood"]["value"],
        "low": (ais.get("bracket") or {}).get("low", {}).get("value"),
        "ess": ais["effective_runs"]["value"],
        "runs": ais["n_runs"],
        "betas": ais["n_betas"],
        "delta": (ais.get("doubled_betas") or {}).get("delta", {}).get("value"),
        "reliable": ais["reliable"],
        "problems": ais["problems"],
        "score_seconds": ais["seconds"]["value"],
        "exact": (report["log_likelihood"].get("exact") or {})
        .get("mean_log_likelihood", {})
        .get("value"),
    }


def _rbm_score(report: dict) -> tuple[float | None, list[str], dict]:
    summary = rbm_summary(report)
    return summary["low"], summary["problems"], summary


def _vae_score(report: dict) -> tuple[float | None, list[str], dict]:
    part = report["log_likelihood"]
    summary = {
        "test_images": part["test_images"]["n"],
        "iwae": part["iwae"]["mean_log_likelihood"]["value"],
        "k": part["iwae"]["k"],
        "elbo": part["elbo"]["mean"]["value"],
        "active_units": part["active_units"]["count"]["value"],
        "score_seconds": report["seconds"]["total"]["value"],
    }
    return summary["iwae"], [], summary


SCORES = {"rbm": _rbm_score, "vae": _vae_score}


def score(model, data, settings) -> tuple[float | None, list[str], dict]:
    """``(score, problems, summary)`` of ``model`` on ``data``'s test images (the validation
    digits of a split): ``problems`` non-empty means the score is not to be trusted."""
    report = evaluate(model, data, evaluation_settings(settings))
    return SCORES[model.kind](report)


def _validation_digits(data, settings) -> torch.Tensor:
    return data.binarized_test_images(MONITORED_DIGITS, settings.seed)


def _pll(model, record, data, settings, cache) -> float:
    """Pseudo-log-likelihood of the first validation digits (Eq. 4.1), nats per image."""
    if "digits" not in cache:
        cache["digits"] = _validation_digits(data, settings).to(model.weight)
    generator = make_generator(settings.seed, model.weight.device, "tune-pll")
    with torch.no_grad():
        return float(pseudo_log_likelihood(model, cache["digits"], generator=generator).mean())


def _short_ais(model, record, data, settings, cache) -> float:
    """Forward AIS of the first validation digits with few runs and betas (Eqs. 3.2-3.6)."""
    if "digits" not in cache:
        cache["digits"] = _validation_digits(data, settings).to(model.weight)
        cache["base"] = base_rate_visible_bias(data.train_images).to(model.weight)
    generator = make_generator(settings.seed, model.weight.device, "tune-ais")
    ais = ais_log_partition(
        model,
        cache["base"],
        n_runs=settings.prune_ais_runs,
        n_betas=settings.prune_ais_betas,
        generator=generator,
    )
    return rbm_log_likelihood(model, cache["digits"], ais.log_z)


def _elbo(model, record, data, settings, cache) -> float:
    """The ELBO of the validation digits that ``fit`` monitors each epoch (Eq. 2.2)."""
    return float(record["test_elbo"])


# What a trial reports to the pruner, by the name in TuneSettings.intermediate (settings.py).
INTERMEDIATE = {"pll": _pll, "ais": _short_ais, "elbo": _elbo}
