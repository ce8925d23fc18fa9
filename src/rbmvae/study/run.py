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
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from .._version import __version__
from ..basics.atomic import ensure_writable_dir, write_text
from ..basics.devices import resolve_device
from ..basics.errors import ConfigError
from ..basics.progress import is_terminal
from ..data import load_dataset
from .cache import dump_json, evaluate_or_reuse, train_or_reuse
from .figures import FIGURES_DIR, draw_figures
from .parallel import (
    BASELINES,
    StudyTask,
    WorkerContext,
    estimated_cost,
    resolve_jobs,
    run_in_workers,
)
from .report import SUMMARY_COLUMNS, StudyResult, summary_rows, write_study_report
from .settings import StudySettings

__all__ = ["evaluate_or_reuse", "run_study", "train_or_reuse"]

SETTINGS_FILE = "settings.json"
METRICS_FILE = "metrics.json"
MODELS_DIR = "models"
BASELINES_DIR = BASELINES
METRICS_FORMAT = "rbmvae-study"


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


def _tasks(result: StudyResult, out_dir: Path) -> list[StudyTask]:
    """The study's work as tasks: each model (trained, then scored without the baselines) and
    the baselines, each with its estimated cost."""
    settings, data = result.settings, result.data
    shape = (data.train_images.shape[0], data.test_images.shape[0], data.n_pixels)
    scoring = settings.evaluation.replace(baselines=False)
    tasks = []
    for spec in settings.model_specs():
        config = settings.train_config(spec.kind)
        directory = str(out_dir / MODELS_DIR / spec.name)
        cost = estimated_cost(spec, config, scoring, shape)
        tasks.append(StudyTask(spec.name, spec, config, scoring, directory, cost))
    if settings.evaluation.baselines:
        directory = str(out_dir / BASELINES_DIR)
        tasks.append(StudyTask(BASELINES, None, None, settings.evaluation, directory, 0.0))
    return tasks


def _in_workers(result, out_dir, jobs, force, progress, data_dir) -> dict | None:
    """With more than one job, every task done in worker processes first (the sequential pass
    then reuses their files); returns what they did and took, or None for one job."""
    tasks = _tasks(result, out_dir)
    workers = resolve_jobs(jobs, result.device, len(tasks))
    if workers < 2:
        return None
    threads = max(1, torch.get_num_threads() // workers)
    dataset = result.settings.dataset
    context = WorkerContext(dataset, data_dir, str(result.device), force, threads)
    started = time.perf_counter()
    records = run_in_workers(tasks, context, workers, progress)
    seconds = {key: value for record in records for key, value in record["seconds"].items()}
    seconds["workers"] = time.perf_counter() - started
    actions = {r["name"]: r["action"] for r in records if r["action"] is not None}
    return {"seconds": seconds, "actions": actions, "workers": workers, "threads": threads}


def source_commit() -> dict:
    """The git commit the package runs from: ``RBMVAE_COMMIT`` if set, else ``git rev-parse`` in
    the package's checkout (``"unknown"`` outside one), and whether files differ from it."""
    if os.environ.get("RBMVAE_COMMIT"):
        return {"commit": os.environ["RBMVAE_COMMIT"], "modified": None}
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(here), *args], capture_output=True, text=True, timeout=30
        )
        if done.returncode:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        modified = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "modified": None}
    return {"commit": commit, "modified": modified}


def peak_memory(workers: int) -> dict:
    """Peak resident memory: this process's, the largest finished worker's, and their sum over
    the workers that ran at once (an upper bound of the run's peak), in bytes (Linux reports KiB)."""
    scale = 1 if sys.platform == "darwin" else 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale if workers > 1 else 0
    return {
        "value": own + workers * worker if workers > 1 else own,
        "unit": "bytes",
        "main_process": own,
        "largest_worker": worker,
        "workers": workers,
        "method": "ru_maxrss of this process plus, with worker processes, the largest worker's "
        "times their number: an upper bound of the memory held at once",
    }


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
    jobs: int | None = 1,
) -> dict:
    """Train, evaluate, draw and report the whole study into ``out_dir``; returns the metrics
    (``metrics.json``'s content plus ``summary``, the end-of-run table).

    ``jobs`` worker processes train and evaluate the models side by side (None: one per CPU
    core, each with an equal share of torch's threads; see :mod:`.parallel`); 1 does everything
    in this process."""
    if not isinstance(settings, StudySettings):
        raise ConfigError("run_study needs StudySettings; build them with resolve_settings()")
    started = time.perf_counter()
    out_dir = ensure_writable_dir(out_dir)
    write_text(out_dir / SETTINGS_FILE, dump_json(settings.to_dict()))
    data = load_dataset(settings.dataset, data_dir)
    result = StudyResult(settings=settings, data=data, device=resolve_device(device))
    total = 2 * len(settings.model_specs()) + 2 + int(settings.evaluation.baselines)
    steps = _Steps(total, progress, result.seconds)
    try:
        parallel = _in_workers(result, out_dir, jobs, force, progress, data_dir)
        if parallel is not None:
            force = False  # the workers did (and, with force, redid) every model
        _train_and_evaluate(result, out_dir, steps, force, progress)
        if parallel is not None:
            result.seconds.update(parallel["seconds"])
            result.actions.update(parallel["actions"])
        histories = {name: result.history(name) for name in result.models}
        with steps.step("figures", "figures"):
            result.figures = draw_figures(
                result.models, histories, data, settings, out_dir / FIGURES_DIR, result.device
            )
        with steps.step("report", "report"):
            write_study_report(out_dir, result)
        result.seconds["total"] = time.perf_counter() - started
        metrics = _metrics(result, out_dir)
        metrics["workers"] = {
            "processes": parallel["workers"] if parallel else 1,
            "threads_each": parallel["threads"] if parallel else torch.get_num_threads(),
        }
        metrics.update(source_commit())
        metrics["peak_memory"] = peak_memory(parallel["workers"] if parallel else 1)
        write_text(out_dir / METRICS_FILE, dump_json(metrics))
    finally:
        steps.close()
    metrics["summary"] = {"columns": SUMMARY_COLUMNS, "rows": summary_rows(result)}
    return metrics
