"""Models: pure PyTorch modules, free of I/O. ``MODEL_KINDS`` maps a checkpoint's kind to its class."""

from __future__ import annotations

from torch import nn

from ..basics.errors import CheckpointError
from .rbm import RBM
from .vae import VAE

MODEL_KINDS: dict[str, type[nn.Module]] = {"rbm": RBM, "vae": VAE}


def build_model(kind: str, config: dict) -> nn.Module:
    """Construct a model of ``kind`` from its stored constructor arguments."""
    if kind not in MODEL_KINDS:
        raise CheckpointError(
            f"unknown model kind {kind!r}; this version knows {', '.join(sorted(MODEL_KINDS))}"
        )
    try:
        return MODEL_KINDS[kind](**config)
    except TypeError as error:
        raise CheckpointError(f"{kind} model configuration {config} is invalid ({error})") from None


__all__ = ["MODEL_KINDS", "RBM", "VAE", "build_model"]
