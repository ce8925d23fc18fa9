"""One trial of a study: the settings a sampler proposes, trained by ``fit`` on the training part
of the split while reporting to the pruner, then scored on the validation digits (``score``)."""

from __future__ import annotations

import os
import socket
import time
from functools import partial

from .. import ConfigError, RbmvaeError, TrainingError, fit
from ..basics.devices import resolve_device
from ..models import MODEL_KINDS
from ..training import TrainingInterrupted
from .budget import epochs_for
from .recipe import recipe_settings
from .score import INTERMEDIATE, score


class TrialFailed(RbmvaeError):
    """A trial that ran and has no score; the reason is its user attribute ``failure``."""


class Surplus(TrialFailed):
    """A trial started when the study already had its trials: not run, not counted."""


def worker_name() -> str:
    """``HOST:PID``, recorded with each trial (user attribute ``worker``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def fail(trial, reason: str):
    """Record ``reason`` with ``trial`` and end it failed."""
    trial.set_user_attr("failure", reason)
    raise TrialFailed(reason)


class Objective:
    """The function Optuna calls for each trial of one worker: ``(trial) -> score``."""

    def __init__(self, settings, space, split, quota, optuna) -> None:
        self.settings, self.space, self.split, self.quota = settings, space, split, quota
        self.optuna = optuna
        self.base = settings.base_config()
        self.device = resolve_device(settings.device)
        self.build = partial(MODEL_KINDS[settings.kind], **settings.model)
        self.worker = worker_name()

    def __call__(self, trial) -> float:
        # A heartbeat at once, not when Optuna's heartbeat thread first runs: a trial without one
        # is never found stale (Quota.fail_unclaimed handles a worker killed before this line).
        trial.study._storage.record_heartbeat(trial._trial_id)
        trial.set_user_attr("worker", self.worker)
        self.quota.gate(trial.study, trial)
        params = self.space.suggest(trial)
        try:
            config = self.base.replace(**params)
        except ConfigError as error:
            fail(trial, f"settings refused: {error}")
        if self.settings.minutes is not None:
            epochs = epochs_for(self.settings.minutes, config, self.split, self._model)
            config = config.replace(epochs=epochs)
        trial.set_user_attr("epochs", config.epochs)
        trial.set_user_attr("settings", recipe_settings(self.settings.kind, config))
        model = self._model(self.split.n_pixels)
        started, cpu = time.perf_counter(), time.process_time()
        reporter = self._reporter(trial, model)
        try:
            fit(model, self.split, config, progress=False, on_epoch_end=reporter)
        except TrainingInterrupted:  # Ctrl-C: this trial fails, and the worker stops
            raise KeyboardInterrupt from None
        except TrainingError as error:
            fail(trial, f"training stopped: {error}")
        finally:
            trial.set_user_attr("cpu_minutes", (time.process_time() - cpu) / 60)
            trial.set_user_attr("train_seconds", time.perf_counter() - started)
        cpu = time.process_time()
        value, problems, summary = score(model, self.split, self.settings)
        trial.set_user_attr("score_cpu_minutes", (time.process_time() - cpu) / 60)
        trial.set_user_attr("summary", summary)
        if problems or value is None:
            fail(trial, "unreliable: " + ("; ".join(problems) or "no score"))
        return value

    def _model(self, n_visible: int):
        return self.build(n_visible=n_visible).to(self.device)

    def _reporter(self, trial, model):
        """``fit``'s ``on_epoch_end``: every ``report_every`` epochs, the intermediate value to
        the pruner, and ``optuna.TrialPruned`` when it says so."""
        settings, measure, cache = self.settings, INTERMEDIATE[self.settings.intermediate], {}

        def on_epoch_end(epoch: int, record: dict) -> None:
            if epoch % settings.report_every:
                return
            value = measure(model, record, self.split, settings, cache)
            trial.report(value, epoch)
            if trial.should_prune():
                trial.set_user_attr("pruned", f"epoch {epoch}: {settings.intermediate} {value:.3f}")
                raise self.optuna.TrialPruned(f"epoch {epoch}")

        return on_epoch_end
