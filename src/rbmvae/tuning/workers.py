"""The workers of a study: each a process that asks the shared storage for trials and runs them,
until the study has its trials.

"N trials" counts the trials that ended complete or pruned. A failed trial (an unreliable score,
a training error, a worker killed mid-trial) is recorded and not counted; the workers go on until
N are counted or ``max_failures`` trials have failed. Before a worker starts a trial it waits
while the counted and the running trials already make N (one of the running ones may still fail
and need a replacement); a trial started in the same instant as another one that makes N waits
for the older ones, and ends failed as surplus (user attribute ``failure``) if they complete.
"""

from __future__ import annotations

import contextlib
import datetime
import sys
import time
import warnings

from ..basics.errors import RbmvaeError
from .run import open_study
from .trial import Objective, Surplus, TrialFailed

COUNTED = ("COMPLETE", "PRUNED")


class Quota:
    """Stops the workers once ``n_trials`` are counted (or ``max_failures`` failed): Optuna's
    ``MaxTrialsCallback`` with ``states=(COMPLETE, PRUNED)``, and no trial started beyond N."""

    def __init__(
        self, optuna, n_trials: int, max_failures: int, poll: float, report=None, grace: int = 180
    ):
        self.optuna, self.n_trials, self.max_failures, self.poll = (
            optuna,
            n_trials,
            max_failures,
            poll,
        )
        self.report, self.grace = report, grace
        self.stopped_by = None

    def fail_unclaimed(self, study) -> None:
        """Fail the running trials that no worker claimed (no ``worker`` attribute, so no
        heartbeat either) for twice the grace period: their worker died as it created them."""
        now = datetime.datetime.now()
        for t in study.get_trials(deepcopy=False, states=(self.optuna.trial.TrialState.RUNNING,)):
            age = (now - t.datetime_start).total_seconds() if t.datetime_start else 0.0
            if "worker" not in t.user_attrs and age > 2 * self.grace:
                with contextlib.suppress(Exception):  # another worker may have failed it first
                    study.tell(t.number, state=self.optuna.trial.TrialState.FAIL)

    def counts(self, study) -> tuple[int, list, int]:
        """``(counted, running trials, failed)``; surplus trials are not failures."""
        states = self.optuna.trial.TrialState
        trials = study.get_trials(deepcopy=False)
        counted = sum(t.state.name in COUNTED for t in trials)
        running = [t for t in trials if t.state == states.RUNNING]
        failed = sum(
            t.state == states.FAIL
            and not str(t.user_attrs.get("failure", "")).startswith("surplus")
            for t in trials
        )
        return counted, running, failed

    def _wait(self, study, own=None) -> bool:
        """Wait while the counted and the running trials (older than ``own``) make N; False once
        the study is done."""
        while True:
            with warnings.catch_warnings():  # experimental in Optuna, and called by it the same way
                warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
                self.optuna.storages.fail_stale_trials(study)
            self.fail_unclaimed(study)
            counted, running, failed = self.counts(study)
            if counted >= self.n_trials:
                self.stopped_by = f"{counted} trials counted"
                return False
            if failed >= self.max_failures:
                self.stopped_by = f"{failed} trials failed (the limit)"
                return False
            if own is not None:
                running = [t for t in running if t.number < own.number]
            if counted + len(running) < self.n_trials:
                return True
            time.sleep(self.poll)

    def room(self, study) -> bool:
        """Before a worker's first trial: whether the study still needs one."""
        return self._wait(study)

    def gate(self, study, trial) -> None:
        """At the start of ``trial``, before its parameters are drawn: wait for the older
        running trials, or end this one as surplus."""
        if not self._wait(study, trial):
            study.stop()
            trial.set_user_attr("failure", f"surplus: the study had its trials ({self.stopped_by})")
            raise Surplus(self.stopped_by)

    def __call__(self, study, frozen) -> None:
        """Optuna's callback after each trial: report it, then wait for room or stop."""
        if self.report is not None:
            self.report(frozen)
        if not self._wait(study):
            study.stop()


def trial_line(frozen) -> str:
    """One line about a finished trial, for the worker's output."""
    attrs = frozen.user_attrs
    head = f"trial {frozen.number} {frozen.state.name.lower()}"
    if frozen.state.name == "COMPLETE":
        head += f": {frozen.value:.3f}"
    elif attrs.get("failure") or attrs.get("pruned"):
        head += f": {attrs.get('failure') or attrs.get('pruned')}"
    if "cpu_minutes" in attrs:
        head += f" ({attrs['cpu_minutes']:.2f} CPU min, {attrs.get('epochs')} epochs)"
    params = " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in frozen.params.items()
    )
    return f"{head} {params} [{attrs.get('worker', '?')}]"


def run_worker(settings, joined=None) -> dict:
    """One worker in this process: join the study, run trials until it has its trials. Once it
    has joined (the data loaded, the study opened) it calls ``joined()``, if given."""
    import torch

    torch.set_num_threads(settings.threads)
    optuna, study, space, split = open_study(settings)
    if joined is not None:
        joined()
    report = (lambda frozen: print(trial_line(frozen), flush=True)) if settings.progress else None
    max_failures = settings.max_failures or settings.trials
    poll = min(5.0, settings.heartbeat)
    quota = Quota(optuna, settings.trials, max_failures, poll, report, settings.grace)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial: our line, no traceback
    try:
        if quota.room(study):
            objective = Objective(settings, space, split, quota, optuna)
            study.optimize(objective, catch=(TrialFailed,), callbacks=[quota])
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {"stopped_by": quota.stopped_by, "optuna": optuna, "study": study}


def worker_entry(settings, ready=None) -> None:
    """A spawned worker process: errors as one line, exit status 2."""
    try:
        run_worker(settings, None if ready is None else ready.release)
    except RbmvaeError as error:
        print(f"rbmvae: error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def await_workers(ready, children, limit: float = 600.0) -> None:
    """Wait until every spawned worker of ``children`` has released ``ready`` (joined the
    study), one of them has died before it did, or ``limit`` seconds have passed."""
    waiting, deadline = len(children), time.monotonic() + limit
    while waiting and time.monotonic() < deadline:
        if ready.acquire(timeout=0.2):
            waiting -= 1
        elif sum(child.is_alive() for child in children) < waiting:
            return  # a worker that never joined: the others go on without it


def run_workers(settings) -> dict:
    """``settings.jobs`` workers on this machine: this process and ``jobs - 1`` spawned ones. This
    process starts its first trial once the spawned ones have joined the study (their imports take
    seconds), so that short trials are shared out and not all taken by the first to start."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready = context.Semaphore(0)
    children = [
        context.Process(target=worker_entry, args=(settings, ready), name=f"rbmvae-tune-{i}")
        for i in range(1, settings.jobs)
    ]
    for child in children:
        child.start()
    try:
        result = run_worker(settings, lambda: await_workers(ready, children))
    finally:
        for child in children:
            child.join()
    failed = [child.name for child in children if child.exitcode not in (0, None)]
    return {**result, "failed_workers": failed}
