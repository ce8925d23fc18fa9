"""The resumable state of a training run: what ``training.fit`` saves after every epoch (and on
Ctrl-C) and restores with ``resume=True``, so that a resumed run ends with the same weights, bit
for bit, as an uninterrupted one; and the deferral of Ctrl-C to a step boundary."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..basics.errors import CheckpointError
from . import checkpoint
from .config import TrainConfig
from .objectives import Objective


def _flatten_optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimizer state dict into named tensors and a JSON-able remainder."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            name = f"optimizer.{index}.{key}"
            if torch.is_tensor(value):
                tensors[name] = value
            else:
                scalars[name] = value
    return tensors, {"scalars": scalars, "param_groups": state["param_groups"]}


def _restore_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict
) -> None:
    state: dict[int, dict] = {}
    for name, value in list(tensors.items()) + list(info["scalars"].items()):
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})


@dataclass
class Position:
    """Where a run stands: the next epoch and step, the generator state at the epoch's start
    (to replay its binarization) and the epoch's running loss."""

    epoch: int = 0
    step: int = 0
    epoch_start_generator: torch.Tensor | None = None
    loss_sum: torch.Tensor | None = None


def save_state(
    out_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    objective: Objective,
    generator: torch.Generator,
    position: Position,
    config,
    history: list[dict],
) -> None:
    """Write everything needed to continue the run exactly into ``out_dir``'s state file."""
    opt_tensors, opt_info = _flatten_optimizer_state(optimizer)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update(opt_tensors)
    tensors.update({f"objective.{k}": v for k, v in objective.state_tensors().items()})
    tensors["generator"] = generator.get_state()
    if position.epoch_start_generator is not None:
        tensors["epoch_start_generator"] = position.epoch_start_generator
    if position.loss_sum is not None:
        tensors["loss_sum"] = position.loss_sum
    info = {
        "kind": model.kind,
        "model_config": model.config(),
        "train_config": config.to_dict(),
        "epoch": position.epoch,
        "step": position.step,
        "optimizer": opt_info,
        "history": history,
    }
    checkpoint.save_training_state(out_dir, tensors, info)


def _comparable(config: dict) -> dict:
    return {k: v for k, v in TrainConfig.completed(config).items() if k != "epochs"}


def restore_state(
    out_dir: Path,
    model: nn.Module,
    objective: Objective,
    generator: torch.Generator,
    config,
    make_optimizer,
) -> tuple[torch.optim.Optimizer, Position, list[dict]]:
    """Load the saved run of ``out_dir`` into ``model``, ``objective`` and ``generator``; returns
    the rebuilt optimizer (``make_optimizer()``), the position and the history so far."""
    tensors, info = checkpoint.load_training_state(out_dir)
    if info.get("kind") != model.kind or info.get("model_config") != model.config():
        raise CheckpointError(
            f"{out_dir}: the saved training state is for a {info.get('kind')} model "
            f"{info.get('model_config')}, not this {model.kind} model {model.config()}; "
            "resume with the same model options or train into a new directory"
        )
    if _comparable(info["train_config"]) != _comparable(config.to_dict()):
        raise CheckpointError(
            f"{out_dir}: saved run used other settings {info['train_config']}; "
            "resume with the same settings or train into a new directory"
        )
    device = next(model.parameters()).device
    checkpoint.load_state_into(
        model,
        {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
        out_dir / checkpoint.STATE_FILE,
    )
    model.to(device)
    optimizer = make_optimizer()
    _restore_optimizer_state(
        optimizer,
        {k: v.to(device) for k, v in tensors.items() if k.startswith("optimizer.")},
        info["optimizer"],
    )
    objective.load_state_tensors(
        {k[10:]: v.to(device) for k, v in tensors.items() if k.startswith("objective.")}
    )
    generator.set_state(tensors["generator"])
    position = Position(
        info["epoch"],
        info["step"],
        tensors.get("epoch_start_generator"),
        tensors.get("loss_sum", torch.zeros(())).to(device),
    )
    return optimizer, position, list(info["history"])


class HardInterrupt(KeyboardInterrupt):
    """A second Ctrl-C: stop at once, saving nothing (the files of the last epoch stay valid)."""


class DeferredCtrlC:
    """While training, turn the first Ctrl-C into a request that :func:`fit` honours at the next
    step boundary, so that the state it saves is exactly that of a step count (a signal landing
    inside a step would leave the random generator and the weights out of step). A second Ctrl-C
    stops at once. Only the main thread can receive signals; elsewhere this does nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise HardInterrupt
        self.requested = True

    def __enter__(self) -> DeferredCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
