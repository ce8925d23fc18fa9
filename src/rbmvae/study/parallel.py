"""The study's models trained and evaluated side by side, each in a worker process of its own.

On a CPU the study's matrix products are small (minibatches of 100 to 128 rows), and a second
torch thread buys far less than a second core given to another model: ``rbmvae reproduce`` runs
one worker process per core, one torch thread each, and hands the models out largest first
(:func:`estimated_cost`), so the longest model starts at once. Each worker writes its model's
checkpoint and ``evaluation.json`` through :mod:`.cache`, exactly as the sequential run does;
the run then finds them there, reuses them and draws the figures and the report. The results
are the same as a sequential run's up to the rounding of multi-threaded products: every model
draws from its own seeded generator wherever it runs.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import torch

from ..basics.errors import ConfigError
from ..data import load_dataset
from ..evaluation import EvaluationSettings
from ..training import TrainConfig
from .cache import evaluate_or_reuse, train_or_reuse
from .settings import ModelSpec

BASELINES = "baselines"


@dataclass(frozen=True)
class StudyTask:
    """One unit of a study's work: a model trained (or reused) and evaluated, or the baselines.

    ``spec`` and ``config`` are None for the baselines; ``directory`` is where its files go.
    """

    name: str
    spec: ModelSpec | None
    config: TrainConfig | None
    evaluation: EvaluationSettings
    directory: str
    cost: float


@dataclass(frozen=True)
class WorkerContext:
    """What every worker needs besides its task: the data, the device, ``force``, its threads."""

    dataset: str
    data_dir: str | None
    device: str
    force: bool
    threads: int


def estimated_cost(
    spec: ModelSpec, config: TrainConfig, evaluation: EvaluationSettings, data_shape: tuple
) -> float:
    """Multiply-adds a model's training and evaluation take, roughly: only to order the work.

    RBM: ``2k + 3`` products of D x H per image and step (CD with k rising: its mean k; tempering:
    times the temperatures), AIS runs x betas (three times with the doubled check and RAISE), the
    clamped chains of the inpainting and the conditional AIS. VAE: encoder plus ``iwae_k`` decoder
    passes, three times for the backward pass, and the IWAE evaluation's K decoder passes per image.
    ``data_shape`` is ``(training images, test images, pixels)``.
    """
    n_train, n_test, d = data_shape
    h = spec.config["n_hidden"]
    chains = len(evaluation.fractions) * evaluation.inpaint_images * evaluation.inpaint_steps
    chains *= 2 if evaluation.inpaint_stability else 1
    if "n_latent" not in spec.config:  # an RBM
        k = (config.k + max(config.k_final, config.k)) / 2
        tempering = config.pt_temperatures if config.method == "pt" else 1
        train = config.epochs * n_train * (2 * k + 3) * tempering
        ais = (
            evaluation.ais_runs * evaluation.ais_betas * (3 if evaluation.ais_doubled_check else 1)
        )
        conditional = (
            evaluation.conditional_images
            * evaluation.conditional_ais_runs
            * evaluation.conditional_ais_betas
            * len(evaluation.fractions)
        )
        return d * h * (train + 2 * (ais + conditional + chains))
    z = spec.config["n_latent"]
    decoder, encoder = h * (d + z), h * (d + 2 * z)
    train = 3 * config.epochs * n_train * (encoder + config.iwae_k * decoder)
    images = n_test if evaluation.iwae_images is None else min(n_test, evaluation.iwae_images)
    return train + images * evaluation.iwae_k * decoder + chains * (encoder + decoder)


def resolve_jobs(jobs: int | None, device: torch.device, n_tasks: int) -> int:
    """How many worker processes: ``jobs``, or for None one per CPU core available to this
    process (at most one per task; one on a GPU, where a single process keeps it busy)."""
    if jobs is None:
        if device.type != "cpu":
            return 1
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, min(cores or 1, n_tasks))
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"jobs must be a positive integer or None (one per core), got {jobs!r}")
    return jobs


@functools.lru_cache(maxsize=2)
def _data(dataset: str, data_dir: str | None):
    return load_dataset(dataset, data_dir)


def _start_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def run_task(task: StudyTask, context: WorkerContext) -> dict:
    """Do ``task`` in this process; returns its name, what happened to the model (trained,
    reused or resumed; None for the baselines) and the seconds of each step."""
    data = _data(context.dataset, context.data_dir)
    device = torch.device(context.device)
    started = time.perf_counter()
    if task.spec is None:
        evaluate_or_reuse(
            None, data, Path(task.directory), task.evaluation, force=context.force, device=device
        )
        return {"name": task.name, "action": None, "seconds": {BASELINES: _since(started)}}
    directory = Path(task.directory)
    model, meta, action = train_or_reuse(
        task.spec, task.config, data, directory, device, force=context.force, progress=False
    )
    trained = time.perf_counter()
    evaluate_or_reuse(
        model,
        data,
        directory,
        task.evaluation,
        force=context.force,
        weights_sha256=meta.get("weights_sha256"),
    )
    seconds = {f"train {task.name}": trained - started, f"evaluate {task.name}": _since(trained)}
    return {"name": task.name, "action": action, "seconds": seconds}


def _since(started: float) -> float:
    return time.perf_counter() - started


def run_in_workers(
    tasks: list[StudyTask], context: WorkerContext, workers: int, progress: bool = True
) -> list[dict]:
    """Every task in ``workers`` processes (started fresh, ``spawn``), largest ``cost`` first;
    returns :func:`run_task`'s records. The first failure stops the rest and is raised here;
    Ctrl-C stops the workers (a checkpoint is always whole: training resumes where it stopped)."""
    ordered = sorted(tasks, key=lambda task: -task.cost)
    if progress:
        print(
            f"reproduce: {len(ordered)} tasks in {workers} worker processes, "
            f"{context.threads} torch thread(s) each",
            file=sys.stderr,
            flush=True,
        )
    spawn = multiprocessing.get_context("spawn")
    others = set(multiprocessing.active_children())  # the caller's own, left alone
    executor = ProcessPoolExecutor(
        workers, spawn, initializer=_start_worker, initargs=(context.threads,)
    )
    records = []
    try:
        pending = {executor.submit(run_task, task, context) for task in ordered}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                record = future.result()  # a worker's error is raised here
                records.append(record)
                if progress:
                    took = sum(record["seconds"].values())
                    print(
                        f"reproduce [{len(records)}/{len(ordered)}]: {record['name']} done "
                        f"({record['action'] or 'evaluated'}, {took:.0f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
    except BaseException:
        for child in set(multiprocessing.active_children()) - others:
            child.terminate()
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown()
    return records
