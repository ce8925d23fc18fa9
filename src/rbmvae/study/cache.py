"""Each model of a study trained or evaluated once: what a run directory already holds under the
same settings is reused, an interrupted training resumes, an evaluation is cached beside its
checkpoint under the settings, data set and weights that produced it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..basics.atomic import ensure_writable_dir, write_text
from ..basics.errors import CheckpointError
from ..data import Dataset
from ..evaluation import EVALUATION_FILE, EvaluationSettings, evaluate
from ..models import build_model
from ..training import TrainConfig, fit
from ..training.checkpoint import (
    META_FILE,
    STATE_FILE,
    WEIGHTS_FILE,
    directory_lock,
    load_model,
    load_training_state,
    read_metadata,
)
from .settings import ModelSpec


def dump_json(value: dict) -> str:
    """``value`` as the run directory's JSON files hold it (indented, one trailing newline)."""
    return json.dumps(value, indent=2) + "\n"


def _finished(directory: Path, wanted: dict, epochs: int) -> bool:
    """Whether ``directory`` holds a model trained to the end under the ``wanted`` settings."""
    try:
        meta = read_metadata(directory)
    except CheckpointError:
        return False
    have = {
        "config": meta.get("config"),
        "train_config": TrainConfig.completed(meta.get("train_config")),
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
        and TrainConfig.completed(info.get("train_config")) == wanted["train_config"]
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
    text = dump_json(report)
    ensure_writable_dir(path.parent)
    write_text(path, text)
    return json.loads(text)
