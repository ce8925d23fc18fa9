"""Checkpoints: safetensors weights plus a JSON description. Loading never unpickles.

A model directory holds:

- ``model.safetensors``: the model's tensors (names and shapes in the README);
- ``model.json``: format version, model kind and constructor arguments, tensor shapes, the
  SHA-256 of the weights file, training settings, data set, seed, history, package version;
- ``training_state.safetensors`` (while and after training): everything needed to resume bit for
  bit: weights, optimizer buffers, random generator state, sampler chains, and the loop position
  as JSON in the file's metadata. It is one file, written atomically, so it is always consistent.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from . import __version__
from .atomic import ensure_writable_dir, write_bytes, write_text
from .errors import CheckpointError
from .models import MODEL_KINDS, build_model

FORMAT_NAME = "rbmvae-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
STATE_FILE = "training_state.safetensors"


def _cpu_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}


def save_model(
    model: nn.Module, directory: str | os.PathLike, metadata: dict | None = None
) -> Path:
    """Write ``model`` to ``directory`` (weights first, then the JSON that vouches for them)."""
    directory = ensure_writable_dir(directory)
    tensors = _cpu_tensors(model.state_dict())
    blob = save_safetensors(tensors)
    write_bytes(directory / WEIGHTS_FILE, blob)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": model.kind,
        "config": model.config(),
        "tensors": {name: list(t.shape) for name, t in tensors.items()},
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "package_version": __version__,
        "torch_version": torch.__version__,
        **(metadata or {}),
    }
    write_text(directory / META_FILE, json.dumps(meta, indent=2, sort_keys=False) + "\n")
    return directory


def read_metadata(directory: str | os.PathLike) -> dict:
    """The checked JSON description of the checkpoint in ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: model directory not found")
    path = directory / META_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{path}: missing (not a model directory? train one with rbmvae train)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not an rbmvae checkpoint description")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {version} is newer than this rbmvae reads "
            f"({FORMAT_VERSION}); upgrade rbmvae"
        )
    if meta.get("kind") not in MODEL_KINDS:
        raise CheckpointError(
            f"{path}: unknown model kind {meta.get('kind')!r} "
            f"(known: {', '.join(sorted(MODEL_KINDS))})"
        )
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}: missing model configuration")
    return meta


def _load_tensors(path: Path, what: str) -> tuple[dict[str, torch.Tensor], bytes]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing {what}")
    blob = path.read_bytes()
    try:
        return load_safetensors(blob), blob
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: truncated or corrupt ({error})") from None


def load_state_into(model: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Copy ``tensors`` into ``model``, refusing missing, extra or wrongly shaped tensors."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{source}: tensors do not match a {model.kind} model (missing {missing}, extra {extra})"
        )
    for name, tensor in tensors.items():
        if (
            tuple(tensor.shape) != tuple(expected[name].shape)
            or tensor.dtype != expected[name].dtype
        ):
            raise CheckpointError(
                f"{source}: tensor {name!r} has shape {tuple(tensor.shape)} {tensor.dtype}, "
                f"expected {tuple(expected[name].shape)} {expected[name].dtype}"
            )
    model.load_state_dict(tensors)


def load_model(
    directory: str | os.PathLike,
    device: torch.device | str = "cpu",
    kind: str | None = None,
) -> tuple[nn.Module, dict]:
    """Load the model saved in ``directory``; returns ``(model, metadata)``.

    ``kind`` (``"rbm"``, ``"vae"``) refuses a checkpoint of another kind with a clear message.
    """
    directory = Path(directory)
    meta = read_metadata(directory)
    if kind is not None and meta["kind"] != kind:
        raise CheckpointError(f"{directory}: holds a {meta['kind']} model, not a {kind} model")
    tensors, blob = _load_tensors(directory / WEIGHTS_FILE, "weights file")
    digest = meta.get("weights_sha256")
    if digest is not None and hashlib.sha256(blob).hexdigest() != digest:
        raise CheckpointError(
            f"{directory / WEIGHTS_FILE}: contents do not match the SHA-256 in {META_FILE} "
            "(edited or replaced); retrain or restore the file"
        )
    model = build_model(meta["kind"], meta["config"])
    load_state_into(model, tensors, directory / WEIGHTS_FILE)
    model.to(device)
    model.eval()
    return model, meta


def save_training_state(
    directory: str | os.PathLike, tensors: dict[str, torch.Tensor], info: dict
) -> None:
    """Write the resumable training state (tensors plus JSON ``info``) as one atomic file."""
    directory = ensure_writable_dir(directory)
    blob = save_safetensors(_cpu_tensors(tensors), metadata={"info": json.dumps(info)})
    write_bytes(directory / STATE_FILE, blob)


def load_training_state(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read what :func:`save_training_state` wrote; returns ``(tensors, info)``."""
    path = Path(directory) / STATE_FILE
    tensors, blob = _load_tensors(path, "training state (nothing to resume)")
    try:
        header_len = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8 : 8 + header_len])
        info = json.loads(header["__metadata__"]["info"])
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: training state has no valid metadata ({error})") from None
    return tensors, info
