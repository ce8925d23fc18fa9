"""``rbmvae tune`` as a Python call: open (or join) the study, run its workers, export the
result."""

from __future__ import annotations

import json
from pathlib import Path

from .. import load_dataset
from ..basics.atomic import ensure_writable_dir
from ..basics.errors import ConfigError
from .settings import TuneSettings, validation_count
from .space import load_space
from .storage import default_url, open_storage, require_optuna, shown_url


def run_dir(settings: TuneSettings) -> Path:
    """Where the study's files go: ``out``, default ``runs/tune/STUDY``."""
    return Path(settings.out or f"runs/tune/{settings.study}")


def storage_url(settings: TuneSettings) -> str:
    return settings.storage or default_url(run_dir(settings))


def load_split(settings: TuneSettings):
    """The data set cut for tuning: the first ``train_images`` training digits, of which the last
    ``validation`` take the test set's place (the test set itself is never loaded into a trial)."""
    data = load_dataset(settings.dataset, settings.data_dir)
    if settings.train_images is not None:
        data = data.subset(n_train=settings.train_images)
    n_train = int(data.train_images.shape[0])
    return data.validation_split(validation_count(n_train, settings.validation))


def _data_identity(split) -> dict:
    return {
        "name": split.name,
        "n_train": int(split.train_images.shape[0]),
        "n_validation": int(split.test_images.shape[0]),
        "n_pixels": int(split.n_pixels),
    }


def _pruner(optuna, pruner):
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if pruner == "none":
        return optuna.pruners.NopPruner()
    return pruner


def _check_identity(study, identity: dict, url: str) -> None:
    """Record the study's settings with it, or refuse a worker whose settings differ."""
    identity = json.loads(json.dumps(identity))
    stored = study.user_attrs.get("rbmvae")
    if stored is None:
        study.set_user_attr("rbmvae", identity)
        return
    differs = [key for key in identity if stored.get(key) != identity[key]]
    if differs:
        raise ConfigError(
            f"study {study.study_name!r} in {shown_url(url)} was started with other settings "
            f"(they differ in: {', '.join(differs)}); give the same settings or another --study"
        )


def open_study(settings: TuneSettings):
    """``(optuna, study, space, split)``: the study created or joined in its storage, with this
    worker's sampler (TPE with the constant liar, for trials running side by side) and pruner."""
    optuna = require_optuna()
    base = settings.base_config()
    space = load_space(settings.space, settings.kind, base)
    if settings.minutes is not None and "epochs" in {*space.names(), *space.fixed}:
        raise ConfigError("--minutes sets each trial's epochs: leave epochs out of the space")
    if settings.storage is None:
        ensure_writable_dir(run_dir(settings))
    url = storage_url(settings)
    storage = open_storage(url, settings.heartbeat, settings.grace, settings.retries)
    split = load_split(settings)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # each trial gets a line of ours
    try:
        study = optuna.create_study(
            study_name=settings.study,
            storage=storage,
            sampler=optuna.samplers.TPESampler(constant_liar=True),
            pruner=_pruner(optuna, settings.pruner),
            direction="maximize",
            load_if_exists=True,
        )
    except ValueError as error:
        raise ConfigError(f"study {settings.study!r} in {shown_url(url)}: {error}") from None
    _check_identity(study, settings.identity(space.to_dict(), _data_identity(split)), url)
    return optuna, study, space, split


def tune(kind: str, study: str, trials: int, **options) -> dict:
    """Run the study ``study`` of ``trials`` trials of ``kind`` models (``TuneSettings``'s fields
    as keyword options: ``storage``, ``jobs``, ``space``, ``minutes``, ...) in ``jobs`` worker
    processes here, joining whatever other workers share its storage; then write the best trial's
    recipe, the trials' table and plot to the run directory. Returns the summary."""
    from .export import export  # matplotlib, only now
    from .workers import run_workers  # which imports this module

    settings = TuneSettings(kind=kind, study=study, trials=trials, **options)
    result = run_workers(settings)
    optuna, opened = result.pop("optuna"), result.pop("study")
    summary = export(optuna, opened, settings, run_dir(settings))
    summary.update(result, storage=shown_url(storage_url(settings)))
    return summary
