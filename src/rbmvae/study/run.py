"""``rbmvae reproduce``: train every model of the study, evaluate it, draw every figure, and write
``metrics.json`` and ``report.html`` into one run directory.

Layout of a run directory::

    settings.json            the resolved settings (StudySettings.to_dict())
    models/rbm-h20/ ...      one checkpoint directory per model (model.json, model.safetensors,
                             training_state.safetensors, evaluation.json)
    baselines/evaluation.json
    figures/*.png            every figure
    metrics.json             every number, with units and settings
    report.html              one self-contained page

Re-running reuses each model whose stored settings match (unless ``force``); a model whose
training was interrupted resumes where it stopped; evaluations are cached beside each checkpoint
under the settings (and weights) that produced them.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from .._version import __version__
from ..atomic import ensure_writable_dir, write_text
from ..checkpoint import (
    META_FILE,
    STATE_FILE,
    WEIGHTS_FILE,
    directory_lock,
    load_model,
    load_training_state,
    read_metadata,
)
from ..data import Dataset, load_dataset
from ..devices import resolve_device
from ..errors import CheckpointError, ConfigError
from ..evaluation import EVALUATION_FILE, EvaluationSettings, evaluate
from ..models import build_model
from ..progress import is_terminal
from ..training import TrainConfig, fit
from .figures import FIGURES_DIR, draw_figures
from .report import SUMMARY_COLUMNS, StudyResult, summary_rows, write_study_report
from .settings import ModelSpec, StudySettings

SETTINGS_FILE = "settings.json"
METRICS_FILE = "metrics.json"
MODELS_DIR = "models"
BASELINES_DIR = "baselines"
METRICS_FORMAT = "rbmvae-study"


def _dump(value: dict) -> str:
    return json.dumps(value, indent=2) + "\n"


def _finished(directory: Path, wanted: dict, epochs: int) -> bool:
    """Whether ``directory`` holds a model trained to the end under the ``wanted`` settings."""
    try:
        meta = read_metadata(directory)
    except CheckpointError:
        return False
    have = {
        "config": meta.get("config"),
        "train_config": meta.get("train_config"),
        "dataset": (meta.get("dataset") or {}).get("name"),
    }
    return have == wanted and meta.get("epochs_completed") == epochs


def _resumable(directory: Path, wanted: dict) -> bool:
    """Whether ``directory`` holds a training state of the ``wanted`` model and settings."""
    if not (directory / STATE_FILE).exists():
        return False
    try:
        _, info = load_training_state(directory)
    except CheckpointError:
        return False
    return (
        info.get("model_config") == wanted["config"]
        and info.get("train_config") == wanted["train_config"]
    )


def train_or_reuse(
    spec: ModelSpec,
    config: TrainConfig,
    data: Dataset,
    directory: Path,
    device: torch.device,
    *,
    force: bool = False,
    progress: bool = True,
) -> tuple[nn.Module, dict, str]:
    """Train the model of ``spec`` into ``directory``, or reuse or resume what is there.

    Returns ``(model, metadata, what_happened)``, the last one of trained, reused or resumed.
    """
    directory = Path(directory)
    model = build_model(spec.kind, {"n_visible": data.n_pixels, **spec.config}).to(device)
    wanted = {"config": model.config(), "train_config": config.to_dict(), "dataset": data.name}
    if not force and _finished(directory, wanted, config.epochs):
        try:
            loaded, meta = load_model(directory, device=device, kind=spec.kind)
            return loaded, meta, "reused"
        except CheckpointError:
            pass  # unreadable after all: train it again
    with directory_lock(directory):  # held from clearing a stale model to the last epoch
        resume = not force and _resumable(directory, wanted)
        if not resume:
            for stale in (META_FILE, WEIGHTS_FILE, STATE_FILE, EVALUATION_FILE):
                (directory / stale).unlink(missing_ok=True)
        fit(
            model,
            data,
            config,
            out_dir=directory,
            resume=resume,
            progress=progress,
            metadata={"study_name": spec.name},
        )
    loaded, meta = load_model(directory, device=device, kind=spec.kind)
    return loaded, meta, "resumed" if resume else "trained"


def evaluate_or_reuse(
    model: nn.Module | None,
    data: Dataset,
    directory: Path,
    settings: EvaluationSettings,
    *,
    force: bool = False,
    device: torch.device | None = None,
    weights_sha256: str | None = None,
) -> dict:
    """:func:`rbmvae.evaluation.evaluate` of ``model`` (None: the baselines) under ``settings``,
    cached in ``directory/evaluation.json`` under the settings, data set and weights."""
    key = {"settings": settings.to_dict(), "dataset": data.name, "weights_sha256": weights_sha256}
    path = Path(directory) / EVALUATION_FILE
    if path.exists() and not force:
        try:
            cached = json.loads(path.read_text())
            if cached.get("study_key") == key:
                return cached
        except (OSError, json.JSONDecodeError):
            pass  # unreadable: evaluate again
    report = evaluate(model, data, settings, device=device)
    report["study_key"] = key
    text = _dump(report)
    ensure_writable_dir(path.parent)
    write_text(path, text)
    return json.loads(text)


class _Steps:
    """The study's progress (a bar on a terminal, one line per step elsewhere, or nothing) and
    the seconds each step took."""

    def __init__(self, total: int, enabled: bool, seconds: dict[str, float]) -> None:
        self.total, self.done, self.enabled, self.seconds = total, 0, enabled, seconds
        self.bar = None
        if enabled and is_terminal(sys.stderr):
            from tqdm.auto import tqdm  # tqdm.auto picks the notebook widget where there is one

            self.bar = tqdm(total=total, desc="reproduce", unit="task", position=0)

    @contextlib.contextmanager
    def step(self, what: str, key: str) -> Iterator[None]:
        """Report ``what`` as begun, then time the block into ``seconds[key]``."""
        if self.bar is not None:
            self.bar.set_postfix_str(what)
        elif self.enabled:
            print(f"reproduce [{self.done + 1}/{self.total}]: {what}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        yield
        self.seconds[key] = time.perf_counter() - started
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _train_and_evaluate(result: StudyResult, out_dir: Path, steps: _Steps, force, progress):
    """Every model trained (or reused), then evaluated, then the baselines, into ``result``."""
    settings, data, device = result.settings, result.data, result.device
    for spec in settings.model_specs():
        config = settings.train_config(spec.kind)
        with steps.step(f"training {spec.name}", f"train {spec.name}"):
            model, meta, action = train_or_reuse(
                spec,
                config,
                data,
                out_dir / MODELS_DIR / spec.name,
                device,
                force=force,
                progress=progress,
            )
        result.models[spec.name], result.metas[spec.name] = model, meta
        result.actions[spec.name] = action
    scoring = settings.evaluation.replace(baselines=False)
    for name, model in result.models.items():
        with steps.step(f"evaluating {name}", f"evaluate {name}"):
            result.evaluations[name] = evaluate_or_reuse(
                model,
                data,
                out_dir / MODELS_DIR / name,
                scoring,
                force=force,
                weights_sha256=result.metas[name].get("weights_sha256"),
            )
    if settings.evaluation.baselines:
        with steps.step("baselines", "baselines"):
            result.baselines = evaluate_or_reuse(
                None, data, out_dir / BASELINES_DIR, settings.evaluation, force=force, device=device
            )


def _metrics(result: StudyResult, out_dir: Path) -> dict:
    """Every number of the run, as ``metrics.json`` holds it."""
    models = {}
    for name, model in result.models.items():
        meta = result.metas[name]
        models[name] = {
            "kind": model.kind,
            "config": model.config(),
            "train_config": meta.get("train_config"),
            "epochs": meta.get("epochs_completed"),
            "training_seconds": {"value": result.training_seconds(name), "unit": "s"},
            "history": result.history(name),
            "action": result.actions[name],
            "evaluation": result.evaluations[name],
        }
    return {
        "format": METRICS_FORMAT,
        "package_version": __version__,
        "settings": result.settings.to_dict(),
        "dataset": result.data.describe(),
        "device": str(result.device),
        "models": models,
        "baselines": result.baselines,
        "figures": [
            {"section": s, "path": p.relative_to(out_dir).as_posix(), "caption": c}
            for s, p, c in result.figures
        ],
        "seconds": result.seconds,
    }


def run_study(
    out_dir: str | Path,
    settings: StudySettings,
    *,
    force: bool = False,
    progress: bool = True,
    device: str | torch.device = "auto",
    data_dir: str | None = None,
) -> dict:
    """Train, evaluate, draw and report the whole study into ``out_dir``; returns the metrics
    (``metrics.json``'s content plus ``summary``, the end-of-run table)."""
    if not isinstance(settings, StudySettings):
        raise ConfigError("run_study needs StudySettings; build them with resolve_settings()")
    started = time.perf_counter()
    out_dir = ensure_writable_dir(out_dir)
    write_text(out_dir / SETTINGS_FILE, _dump(settings.to_dict()))
    data = load_dataset(settings.dataset, data_dir)
    result = StudyResult(settings=settings, data=data, device=resolve_device(device))
    total = 2 * len(settings.model_specs()) + 2 + int(settings.evaluation.baselines)
    steps = _Steps(total, progress, result.seconds)
    try:
        _train_and_evaluate(result, out_dir, steps, force, progress)
        histories = {name: result.history(name) for name in result.models}
        with steps.step("figures", "figures"):
            result.figures = draw_figures(
                result.models, histories, data, settings, out_dir / FIGURES_DIR, result.device
            )
        with steps.step("report", "report"):
            write_study_report(out_dir, result)
        result.seconds["total"] = time.perf_counter() - started
        metrics = _metrics(result, out_dir)
        write_text(out_dir / METRICS_FILE, _dump(metrics))
    finally:
        steps.close()
    metrics["summary"] = {"columns": SUMMARY_COLUMNS, "rows": summary_rows(result)}
    return metrics
