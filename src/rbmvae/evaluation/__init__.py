"""``rbmvae evaluate`` as a library call: the settings (:class:`EvaluationSettings`), the
JSON-ready report (:func:`evaluate`) and its text form (:func:`format_report`)."""

from __future__ import annotations

import time

import torch

from ..basics.devices import module_device
from ..basics.errors import ConfigError
from .sections import (
    EVALUATION_FILE,
    LIKELIHOODS,
    REPORT_FORMAT,
    REPORT_VERSION,
    _figure,
    _inpainting_section,
    _likelihood_section,
    _target_warnings,
)
from .settings import EvaluationSettings
from .text import format_report


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
    (:func:`rbmvae.evaluation.scoring.inpainting_table`). With ``model=None``: the baseline rows alone.
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


__all__ = [
    "EVALUATION_FILE",
    "LIKELIHOODS",
    "EvaluationSettings",
    "evaluate",
    "format_report",
]
