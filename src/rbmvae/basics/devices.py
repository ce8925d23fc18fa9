"""Device selection: ``auto``, ``cpu`` or ``cuda``, and the device a module lives on."""

from __future__ import annotations

import torch

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; ``cuda`` without CUDA is refused."""
    if isinstance(name, torch.device):
        return name
    name = name or "auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {name} requested but CUDA is not available here; use --device cpu"
            )
        return torch.device(name)
    raise ConfigError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter."""
    return next(module.parameters()).device
