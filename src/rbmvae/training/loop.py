"""One training loop for every model.

:func:`fit` owns what all models share: batching from a tensor kept on the device, the epoch
schedule (learning rate, momentum), the optimizer, progress, history, non-finite checks, atomic
checkpoints after every epoch, Ctrl-C and bit-exact resume. What differs between models lives in
an *objective* (``objectives.OBJECTIVES``: contrastive divergence for the RBM, the negative ELBO
for the VAE): how one step fills the gradients, and what is monitored at the end of an epoch.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..basics.errors import ConfigError, RbmvaeError, TrainingError
from ..basics.progress import Progress
from ..basics.rng import make_generator
from ..data import Dataset, binarize
from . import checkpoint
from .config import TrainConfig
from .objectives import OBJECTIVES, Objective
from .state import DeferredCtrlC, HardInterrupt, Position, restore_state, save_state


def make_objective(model: nn.Module, config: TrainConfig) -> Objective:
    """The objective (``objectives.OBJECTIVES``) that trains ``model`` under ``config``."""
    kind = getattr(model, "kind", type(model).__name__)
    if kind not in OBJECTIVES:
        raise ConfigError(f"no training objective for model kind {kind!r}")
    return OBJECTIVES[kind](config)


# ------------------------------------------------------------------------------------------------
# The loop


class TrainingInterrupted(RbmvaeError):
    """Ctrl-C during training; the state was saved and ``--resume`` continues exactly."""


def _shuffle_order(seed: int, epoch: int | str, n: int) -> torch.Tensor:
    """A permutation of ``n`` rows from the named stream ``shuffle`` of ``seed`` and ``epoch``."""
    return torch.randperm(n, generator=make_generator(seed, "cpu", "shuffle", epoch))


def _make_optimizer(
    model: nn.Module, objective: Objective, config: TrainConfig
) -> torch.optim.Optimizer:
    """SGD with momentum or Adam over the objective's parameter groups.

    On the CPU and CUDA the fused implementation is used: one pass over each tensor per step
    instead of a chain of element-wise operations (weight decay, momentum, update).
    """
    groups = objective.parameter_groups(model, config.weight_decay)
    parameters = [p for group in groups for p in group["params"]]
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters)
    options = {"fused": True} if fused and parameters else {}
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.learning_rate, **options)
    return torch.optim.SGD(groups, lr=config.learning_rate, momentum=config.momentum, **options)


def _set_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, epoch: int) -> None:
    for group in optimizer.param_groups:
        group["lr"] = config.learning_rate_at(epoch)
        if config.optimizer == "sgd":
            group["momentum"] = config.momentum_at(epoch)


def _interrupted(epoch: int, step: int, out_dir: Path | None) -> str:
    where = f" in {out_dir}" if out_dir is not None else " (no output directory: nothing saved)"
    return (
        f"interrupted at epoch {epoch + 1}, step {step}; state saved{where}; "
        "run the same command with --resume to continue"
    )


def _check_finite(model: nn.Module, epoch: int, step: int, kept: str) -> None:
    """Stop with a TrainingError naming the parameter, epoch and step if a weight is not finite."""
    # A NaN or an infinity anywhere makes the plain (float32) sum of all values NaN or infinite,
    # so a finite sum proves every value finite: one cheap pass and one device sync per step.
    # A non-finite sum may also come from finite values overflowing; the exact per-tensor test
    # below tells the two apart (an isfinite mask per tensor every step would cost ~30x more).
    sums = [p.detach().sum() for p in model.parameters()]
    if math.isfinite(torch.stack(sums).sum().item()):
        return
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            raise TrainingError(
                f"non-finite {name} at epoch {epoch + 1}, step {step + 1}; {kept}; "
                "lower the learning rate"
            )


def _epoch_images(
    images: torch.Tensor, mode: str, generator: torch.Generator, buffer: torch.Tensor | None
) -> torch.Tensor:
    """The training images of one epoch in form ``mode``, as :func:`rbmvae.data.binarize` makes
    them (the same draws from ``generator``, the same values).

    ``stochastic`` draws into ``buffer`` (the last epoch's images, reused) and compares in place,
    so no tensor the size of the data set is allocated per epoch and no boolean intermediate is
    made. Shape: ``images`` (N, D) -> (N, D)."""
    if mode != "stochastic":
        return binarize(images, mode)
    if buffer is None or buffer.shape != images.shape or buffer is images:
        buffer = torch.empty_like(images, memory_format=torch.contiguous_format)
    torch.rand(images.shape, generator=generator, out=buffer)
    return buffer.lt_(images)


def _kept(out_dir: Path | None, epochs_done: int) -> str:
    if out_dir is None:
        return "nothing was saved (no output directory)"
    if epochs_done == 0:
        return f"no epoch completed, so nothing was written to {out_dir}"
    return f"the last good checkpoint (epoch {epochs_done}) is kept in {out_dir}"


class _TrainingRun:
    """One call of :func:`fit`: the model, its objective, optimizer, generator and position, and
    the epoch loop split into its parts (restore or start, one epoch, the epoch's end)."""

    def __init__(
        self, model, data, config: TrainConfig, out_dir, metadata, progress, objective=None
    ) -> None:
        self.model, self.config, self.out_dir = model, config, out_dir
        self.device = next(model.parameters()).device
        self.train_images = data.train_images.to(self.device)
        self.test_images = data.test_images.to(self.device)
        self.n_train = self.train_images.shape[0]
        self.n_steps = math.ceil(self.n_train / config.batch_size)
        self.objective = objective if objective is not None else make_objective(model, config)
        self.generator = make_generator(config.seed, self.device)
        self.history: list[dict] = []
        self.position = Position()
        self.progress = Progress(model.kind, config.epochs, self.n_steps, progress)
        self.meta = {
            "train_config": config.to_dict(),
            "dataset": data.describe(),
            "seed": config.seed,
            **(metadata or {}),
        }
        self.epoch_images = None

    def start(self, resume: bool) -> None:
        """Initialize the model and optimizer, or restore both from ``out_dir`` (``resume``)."""
        if resume:
            if self.out_dir is None:
                raise ConfigError("resume needs an output directory")
            self.optimizer, self.position, self.history = restore_state(
                self.out_dir,
                self.model,
                self.objective,
                self.generator,
                self.config,
                lambda: _make_optimizer(self.model, self.objective, self.config),
            )
        else:
            self.objective.setup(self.model, self.train_images, self.generator)
            self.optimizer = _make_optimizer(self.model, self.objective, self.config)
        order = _shuffle_order(self.config.seed, "monitor", self.n_train)
        self.monitor_train = self.train_images[order[: self.config.monitor_size].to(self.device)]

    def save(self) -> None:
        """The training state, then the model, atomically (nothing without an ``out_dir``)."""
        if self.out_dir is None:
            return
        save_state(
            self.out_dir,
            self.model,
            self.optimizer,
            self.objective,
            self.generator,
            self.position,
            self.config,
            self.history,
        )
        meta = {**self.meta, "epochs_completed": len(self.history), "history": self.history}
        checkpoint.save_model(self.model, self.out_dir, meta)

    def _prepare_epoch(self, epoch: int) -> torch.Tensor:
        """Set the epoch's schedule, draw its images (replayed when resuming mid-epoch) and
        return its shuffled order."""
        config, generator, position = self.config, self.generator, self.position
        _set_schedule(self.optimizer, config, epoch)
        self.objective.start_epoch(epoch, config.epochs)
        if position.step == 0:
            position.epoch_start_generator = generator.get_state()
            self.epoch_images = _epoch_images(
                self.train_images, config.binarize, generator, self.epoch_images
            )
        else:  # resuming mid-epoch: replay this epoch's binarization, then jump ahead
            current = generator.get_state()
            generator.set_state(position.epoch_start_generator)
            self.epoch_images = _epoch_images(
                self.train_images, config.binarize, generator, self.epoch_images
            )
            generator.set_state(current)
        if position.step == 0 or position.loss_sum is None:
            position.loss_sum = torch.zeros((), device=self.device)
        return _shuffle_order(config.seed, epoch, self.n_train).to(self.device)

    def run_epoch(self, ctrl_c: DeferredCtrlC) -> None:
        """Train one epoch (from ``position.step`` on), then monitor and save."""
        epoch, config = self.position.epoch, self.config
        started = time.perf_counter()  # the epoch's time includes its binarization
        order = self._prepare_epoch(epoch)
        kept = _kept(self.out_dir, len(self.history))
        self.progress.start_epoch(epoch, self.position.step)
        try:
            for step in range(self.position.step, self.n_steps):
                rows = order[step * config.batch_size : (step + 1) * config.batch_size]
                batch = torch.index_select(self.epoch_images, 0, rows)
                loss = self.objective.step(self.model, batch, self.generator)
                if not math.isfinite(loss.item()):
                    raise TrainingError(
                        f"non-finite loss at epoch {epoch + 1}, step {step + 1}; "
                        f"{kept}; lower the learning rate"
                    )
                self.optimizer.step()
                _check_finite(self.model, epoch, step, kept)
                self.position.loss_sum += loss.detach()
                self.position.step = step + 1
                self.progress.step()
                if ctrl_c.requested:  # honoured here, where the saved state is consistent
                    raise KeyboardInterrupt
        except HardInterrupt:
            raise
        except KeyboardInterrupt:
            self.progress.end_epoch()
            self.save()
            raise TrainingInterrupted(
                _interrupted(epoch, self.position.step, self.out_dir)
            ) from None
        self.progress.end_epoch()
        self._finish_epoch(epoch, time.perf_counter() - started)

    def _finish_epoch(self, epoch: int, train_seconds: float) -> None:
        """Monitor, record the epoch in the history, save, report progress."""
        monitor_started = time.perf_counter()
        self.model.eval()
        metrics = self.objective.monitor(self.model, self.monitor_train, self.test_images)
        self.model.train()
        record = {
            "epoch": epoch + 1,
            "loss": (self.position.loss_sum / self.n_steps).item(),
            **metrics,
            "learning_rate": self.config.learning_rate_at(epoch),
            "train_seconds": train_seconds,
            "monitor_seconds": time.perf_counter() - monitor_started,
        }
        self.history.append(record)
        self.position = Position(epoch + 1, 0, None, None)
        self.save()
        self.progress.epoch_done(record, metrics)


def fit(
    model: nn.Module,
    data: Dataset,
    config: TrainConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    metadata: dict | None = None,
    objective: Objective | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    **overrides,
) -> list[dict]:
    """Train ``model`` on ``data.train_images``; returns the per-epoch history.

    Settings come from ``config`` (default: ``TrainConfig.defaults_for(model.kind)``) with
    keyword ``overrides`` (``epochs=5``, ``method="cd"``, ...; an unknown name is a ConfigError).
    With ``out_dir`` the model and the resumable training state are written there atomically
    after every epoch, under a lock that refuses a second process; ``resume=True`` continues from
    that state with bit-identical results on the CPU. A Ctrl-C saves the state at the next step
    boundary and raises :class:`TrainingInterrupted`. ``objective`` replaces the one of
    ``model.kind`` (its ``setup`` runs as usual): e.g. one that keeps PCD chains across calls.
    ``on_epoch_end(epoch, record)`` is called after each epoch (``epoch`` counted from 1, the
    record that history gains), once its checkpoint is written; an exception it raises stops
    training and propagates (e.g. ``optuna.TrialPruned`` from ``rbmvae tune``).
    """
    if config is None:
        config = TrainConfig.defaults_for(model.kind, **overrides)
    elif overrides:
        config = config.replace(**overrides)
    config.validate()
    out_dir = Path(out_dir) if out_dir is not None else None
    run = _TrainingRun(model, data, config, out_dir, metadata, progress, objective)
    with contextlib.ExitStack() as stack:
        if out_dir is not None:
            stack.enter_context(checkpoint.directory_lock(out_dir))
        run.start(resume)
        ctrl_c = stack.enter_context(DeferredCtrlC())
        stack.callback(run.progress.close)
        while run.position.epoch < config.epochs:
            run.run_epoch(ctrl_c)
            if on_epoch_end is not None:
                on_epoch_end(run.position.epoch, run.history[-1])
            if ctrl_c.requested and run.position.epoch < config.epochs:
                raise TrainingInterrupted(
                    _interrupted(run.position.epoch - 1, run.n_steps, out_dir)
                )
        if out_dir is not None and not (out_dir / checkpoint.META_FILE).exists():
            run.save()  # nothing left to train (e.g. resuming a finished run): still write the model
    model.eval()
    return run.history
