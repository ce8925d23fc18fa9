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


class SGD:
    """Stochastic gradient descent with momentum and weight decay: the update of
    ``torch.optim.SGD`` (``g = grad + weight_decay p``; with momentum ``m``, ``buf = g`` at its
    first step and ``buf = m buf + g`` after, ``g = buf``; then ``p -= lr g``) and the layout of its
    ``state_dict``, so that a saved training state resumes under either.

    Written here instead of taken from ``torch.optim`` for small models: the first
    ``torch.optim`` optimizer of a process imports ``torch._dynamo`` (seconds on a small CPU), and
    its ``step`` (profiler hooks, per-group bookkeeping, one kernel per group) costs more than
    the update of a 64 x 256 RBM. Here a step is one multi-tensor operation over every parameter
    (two more with momentum, one per decayed tensor with weight decay).
    """

    def __init__(self, groups: list[dict], lr: float, momentum: float = 0.0) -> None:
        self.param_groups = [
            {
                "params": list(group["params"]),
                "lr": lr,
                "momentum": momentum,
                "dampening": 0.0,
                "weight_decay": group.get("weight_decay", 0.0),
                "nesterov": False,
                "maximize": False,
            }
            for group in groups
        ]
        self.buffers: dict[int, torch.Tensor] = {}  # momentum buffers by parameter index
        # the parameters' values, updated in place (outside autograd, which a no_grad block per
        # step would also achieve, at a cost comparable to the update of a small model)
        self._targets = [p.detach() for group in self.param_groups for p in group["params"]]

    def step(self) -> None:
        index = 0
        batches: dict[tuple, tuple[list, list, list]] = {}
        for group in self.param_groups:
            params, grads, indices = batches.setdefault(
                (group["lr"], group["momentum"]), ([], [], [])
            )
            for param in group["params"]:
                grad = param.grad
                if grad is not None:
                    if group["weight_decay"]:
                        grad = grad.add(param.detach(), alpha=group["weight_decay"])
                    params.append(self._targets[index])
                    grads.append(grad)
                    indices.append(index)
                index += 1
        for (lr, momentum), (params, grads, indices) in batches.items():
            if momentum:
                grads = self._momentum(grads, indices, momentum)
            torch._foreach_add_(params, grads, alpha=-lr)

    def _momentum(self, grads: list, indices: list, momentum: float) -> list:
        """The momentum buffers after this step (created from the gradients at their first)."""
        buffers = [self.buffers.get(i) for i in indices]
        if any(b is None for b in buffers):
            for i, (grad, buffer) in enumerate(zip(grads, buffers, strict=True)):
                if buffer is None:
                    buffers[i] = self.buffers[indices[i]] = grad.clone()
                else:
                    buffer.mul_(momentum).add_(grad)
            return buffers
        torch._foreach_mul_(buffers, momentum)
        torch._foreach_add_(buffers, grads)
        return buffers

    def state_dict(self) -> dict:
        """``torch.optim.SGD``'s layout: per-parameter state by index, and the groups."""
        groups, index = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            groups.append({**group, "params": list(range(index, index + n))})
            index += n
        state = {i: {"momentum_buffer": buffer} for i, buffer in sorted(self.buffers.items())}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore from ``state_dict`` (this class's or ``torch.optim.SGD``'s)."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError("the saved optimizer state has another number of parameter groups")
        for group, stored in zip(self.param_groups, saved, strict=True):
            group.update({k: stored[k] for k in ("lr", "momentum", "weight_decay") if k in stored})
        self.buffers = {}
        for index, entry in state_dict["state"].items():
            buffer = entry.get("momentum_buffer")
            if torch.is_tensor(buffer):
                self.buffers[int(index)] = buffer.clone()  # never shared with the caller's


def _make_optimizer(model: nn.Module, objective: Objective, config: TrainConfig):
    """:class:`SGD` (momentum and weight decay) or ``torch.optim.Adam`` over the objective's
    parameter groups; Adam uses the fused implementation on the CPU and CUDA (one pass over each
    tensor per step instead of a chain of element-wise operations)."""
    groups = objective.parameter_groups(model, config.weight_decay)
    if config.optimizer == "sgd":
        return SGD(groups, lr=config.learning_rate, momentum=config.momentum)
    parameters = [p for group in groups for p in group["params"]]
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters)
    options = {"fused": True} if fused and parameters else {}
    return torch.optim.Adam(groups, lr=config.learning_rate, **options)


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
    names, params = zip(*((n, p.detach()) for n, p in model.named_parameters()), strict=True)
    _check_step(names, list(params), None, epoch, step, kept)


def _check_step(
    names, params: list, loss: torch.Tensor | None, epoch: int, step: int, kept: str
) -> None:
    """Stop with a TrainingError if the step's ``loss`` or a parameter after it (``params``:
    the model's parameters, detached, called ``names``) is not finite, naming which, the epoch
    and the step. ``loss`` must not require a gradient."""
    # A NaN or an infinity anywhere makes a tensor's norm NaN or infinite, so finite norms prove
    # every value finite: one multi-tensor pass and one device sync per step, for the loss and
    # every parameter together. A non-finite norm may also come from finite values overflowing
    # (beyond 1e19 in float32); the exact per-tensor test below tells the two apart (an isfinite
    # mask per tensor every step would cost ~30x more).
    sums = torch._foreach_norm(params)
    if loss is not None:
        sums = [loss if loss.dtype == sums[0].dtype else loss.to(sums[0].dtype), *sums]
    values = torch.stack(sums).tolist()
    if all(math.isfinite(v) for v in values):
        return
    if loss is not None and not math.isfinite(values[0]):
        raise TrainingError(
            f"non-finite loss at epoch {epoch + 1}, step {step + 1}; {kept}; "
            "lower the learning rate"
        )
    for name, param in zip(names, params, strict=True):
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
        named = list(model.named_parameters())
        self.parameter_names = [name for name, _ in named]
        self.parameters = [param.detach() for _, param in named]  # checked after every step
        self.device, dtype = self.parameters[0].device, self.parameters[0].dtype
        # the images in the model's dtype: float64 data trains a float32 model as float32 data
        self.train_images = data.train_images.to(self.device, dtype)
        self.test_images = data.test_images.to(self.device, dtype)
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
            batches = order.split(config.batch_size)
            for step in range(self.position.step, self.n_steps):
                batch = torch.index_select(self.epoch_images, 0, batches[step])
                loss = self.objective.step(self.model, batch, self.generator)
                self.optimizer.step()
                loss = loss.detach() if loss.requires_grad else loss
                # the loss and the new weights checked together, with one sync
                _check_step(self.parameter_names, self.parameters, loss, epoch, step, kept)
                self.position.loss_sum += loss
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
