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

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from .._version import __version__
from ..basics.atomic import ensure_writable_dir, write_bytes, write_text
from ..basics.errors import BusyError, CheckpointError, RbmvaeError
from ..models import MODEL_KINDS, build_model

FORMAT_NAME = "rbmvae-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
STATE_FILE = "training_state.safetensors"
PENDING_KEY = "pending_update"
LOCK_FILE = ".lock"


def _cpu_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}


def save_model(
    model: nn.Module, directory: str | os.PathLike, metadata: dict | None = None
) -> Path:
    """Write ``model`` to ``directory`` (weights first, then the JSON that vouches for them)."""
    directory = ensure_writable_dir(directory)
    tensors = _cpu_tensors(model.state_dict())
    blob = save_safetensors(tensors)
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
    # Two files cannot be replaced in one step. So that a crash between the two renames never
    # leaves weights that model.json does not vouch for, the current description first gets the
    # new one as "pending_update"; the loader accepts whichever of the two the weights match.
    current = _metadata_on_disk(directory)
    if current is not None:
        write_text(directory / META_FILE, _dumps({**current, PENDING_KEY: meta}))
    write_bytes(directory / WEIGHTS_FILE, blob)
    write_text(directory / META_FILE, _dumps(meta))
    return directory


def _dumps(meta: dict) -> str:
    return json.dumps(meta, indent=2, sort_keys=False) + "\n"


def _metadata_on_disk(directory: Path) -> dict | None:
    """The description that matches the weights now in ``directory``, if there is a valid one."""
    try:
        meta = _read_metadata_raw(directory)
        _, blob = _load_tensors(directory / WEIGHTS_FILE, "weights file")
        return _resolve_pending(meta, hashlib.sha256(blob).hexdigest(), directory / META_FILE)
    except CheckpointError:
        return None


def read_metadata(directory: str | os.PathLike) -> dict:
    """The checked JSON description of the checkpoint in ``directory``."""
    meta = _read_metadata_raw(Path(directory))
    meta.pop(PENDING_KEY, None)
    return meta


def _read_metadata_raw(directory: Path) -> dict:
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: model directory not found; check the --model path")
    path = directory / META_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{path}: missing (not a model directory? train one with rbmvae train)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(
            f"{path}: not valid JSON ({error}); restore the file or retrain"
        ) from None
    return _check_metadata(meta, path)


def _check_metadata(meta: object, path: Path) -> dict:
    """``meta`` if it is a checkpoint description this version can read, else CheckpointError."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path}: not an rbmvae checkpoint description; point --model at a directory "
            "written by rbmvae train"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path}: invalid format_version {version!r}; restore the file")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {version} is newer than this rbmvae reads "
            f"({FORMAT_VERSION}); upgrade rbmvae"
        )
    if meta.get("kind") not in MODEL_KINDS:
        raise CheckpointError(
            f"{path}: unknown model kind {meta.get('kind')!r} "
            f"(known: {', '.join(sorted(MODEL_KINDS))}); upgrade rbmvae or check the file"
        )
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}: missing model configuration; restore the file")
    return meta


def _resolve_pending(meta: dict, digest: str, path: Path) -> dict:
    """The description that vouches for weights with SHA-256 ``digest`` (see :func:`save_model`)."""
    pending = meta.pop(PENDING_KEY, None)
    if meta.get("weights_sha256") in (None, digest):
        return meta
    if isinstance(pending, dict) and pending.get("weights_sha256") == digest:
        pending = _check_metadata(pending, path)
        pending.pop(PENDING_KEY, None)
        return pending
    raise CheckpointError(
        f"{path.parent / WEIGHTS_FILE}: contents do not match the SHA-256 in {META_FILE} "
        "(edited or replaced); retrain or restore the file"
    )


def _load_tensors(path: Path, what: str) -> tuple[dict[str, torch.Tensor], bytes]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing {what}; retrain or restore the file")
    blob = path.read_bytes()
    try:
        return load_safetensors(blob), blob
    except (SafetensorError, ValueError, RuntimeError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(
            f"{path}: truncated or corrupt ({reason}); retrain or restore the file"
        ) from None


def load_state_into(model: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Copy ``tensors`` into ``model``, refusing missing, extra or wrongly shaped tensors."""
    _check_tensors(model, tensors, source)
    model.load_state_dict(tensors)


def _check_tensors(model: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{source}: tensors do not match a {model.kind} model (missing {missing}, "
            f"extra {extra}); retrain or restore the files"
        )
    for name, tensor in tensors.items():
        if (
            tuple(tensor.shape) != tuple(expected[name].shape)
            or tensor.dtype != expected[name].dtype
        ):
            raise CheckpointError(
                f"{source}: tensor {name!r} has shape {tuple(tensor.shape)} {tensor.dtype}, "
                f"expected {tuple(expected[name].shape)} {expected[name].dtype}; the files do "
                "not belong together: retrain or restore them"
            )


def load_model(
    directory: str | os.PathLike,
    device: torch.device | str = "cpu",
    kind: str | None = None,
) -> tuple[nn.Module, dict]:
    """Load the model saved in ``directory``; returns ``(model, metadata)``.

    ``kind`` (``"rbm"``, ``"vae"``) refuses a checkpoint of another kind with a clear message.
    """
    directory = Path(directory)
    meta = _read_metadata_raw(directory)
    tensors, blob = _load_tensors(directory / WEIGHTS_FILE, "weights file")
    meta = _resolve_pending(meta, hashlib.sha256(blob).hexdigest(), directory / META_FILE)
    if kind is not None and meta["kind"] != kind:
        raise CheckpointError(
            f"{directory}: holds a {meta['kind']} model, not a {kind} model; "
            f"give the directory of a {kind} model"
        )
    source = directory / WEIGHTS_FILE
    with torch.device("meta"):  # check the shapes before allocating what model.json asks for
        _check_tensors(_build(meta, directory / META_FILE), tensors, source)
    _check_finite(tensors, source)
    model = _build(meta, directory / META_FILE)
    load_state_into(model, tensors, source)
    model.to(device)
    model.eval()
    return model, meta


def _check_finite(tensors: dict[str, torch.Tensor], source: Path) -> None:
    bad = [
        name
        for name, tensor in sorted(tensors.items())
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        raise CheckpointError(
            f"{source}: {', '.join(bad)} hold NaN or infinite values; the model cannot be "
            "used: retrain it or restore an earlier checkpoint"
        )


def prepare_model_dir(directory: str | os.PathLike, resume: bool, force: bool) -> Path:
    """Check that a training run may write into ``directory`` and create it.

    A directory that already holds a model is refused unless the run resumes it (``resume``,
    which needs a saved training state) or replaces it (``force``).
    """
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out}: exists and is not a directory; choose another --out")
    has_model = (out / META_FILE).exists() or (out / STATE_FILE).exists()
    if has_model and not (resume or force):
        raise CheckpointError(
            f"{out}: already holds a model; use --resume to continue it, --force to overwrite, "
            "or another --out"
        )
    if resume and not (out / STATE_FILE).exists():
        raise CheckpointError(
            f"{out}: nothing to resume (no {STATE_FILE}); train without --resume (--force to "
            "overwrite what is there)"
        )
    return ensure_writable_dir(out)


_HELD_LOCKS: dict[Path, int] = {}


@contextlib.contextmanager
def directory_lock(directory: str | os.PathLike) -> Iterator[Path]:
    """Hold the model directory for this process (``directory/.lock``, via ``filelock``).

    Another process that asks for the same directory while it is held gets a one-line
    :class:`BusyError` at once, before it writes anything. Within one process the lock is
    re-entrant (the study holds it while it clears a stale model and ``fit`` trains into it).
    The lock is released on exit, and by the operating system if the process dies.
    """
    directory = ensure_writable_dir(directory)
    key = directory.resolve()
    if key in _HELD_LOCKS:
        _HELD_LOCKS[key] += 1
        try:
            yield directory
        finally:
            _HELD_LOCKS[key] -= 1
        return
    lock = FileLock(str(directory / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise BusyError(
            f"{directory}: another process is using this model directory; wait for it to "
            "finish or choose another --out"
        ) from None
    _HELD_LOCKS[key] = 1
    try:
        yield directory
    finally:
        del _HELD_LOCKS[key]
        lock.release()


def _build(meta: dict, path: Path) -> nn.Module:
    try:
        return build_model(meta["kind"], meta["config"])
    except RbmvaeError as error:
        raise CheckpointError(f"{path}: {error}; restore the file or retrain") from None


def _tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of ``tensors`` (CPU, contiguous)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


_STATE_INFO_TYPES = {
    "kind": str,
    "model_config": dict,
    "train_config": dict,
    "epoch": int,
    "step": int,
    "optimizer": dict,
    "history": list,
}


def save_training_state(
    directory: str | os.PathLike, tensors: dict[str, torch.Tensor], info: dict
) -> None:
    """Write the resumable training state (tensors plus JSON ``info``) as one atomic file."""
    directory = ensure_writable_dir(directory)
    tensors = _cpu_tensors(tensors)
    metadata = {"info": json.dumps(info), "sha256": _tensor_digest(tensors)}
    write_bytes(directory / STATE_FILE, save_safetensors(tensors, metadata=metadata))


def load_training_state(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read what :func:`save_training_state` wrote; returns ``(tensors, info)``.

    The tensors must match the SHA-256 stored beside them, and ``info`` must hold the loop
    position, settings and optimizer state, else :class:`CheckpointError`.
    """
    path = Path(directory) / STATE_FILE
    tensors, blob = _load_tensors(path, "training state (nothing to resume)")
    fix = "start over with --force instead of --resume"
    try:
        header_len = int.from_bytes(blob[:8], "little")
        metadata = json.loads(blob[8 : 8 + header_len])["__metadata__"]
        info = json.loads(metadata["info"])
        stored_digest = metadata.get("sha256")
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise CheckpointError(
            f"{path}: training state has no valid metadata ({error}); {fix}"
        ) from None
    if stored_digest is not None and stored_digest != _tensor_digest(tensors):
        raise CheckpointError(
            f"{path}: tensors do not match their SHA-256 (edited or corrupt); {fix}"
        )
    wrong = [
        key
        for key, kind in _STATE_INFO_TYPES.items()
        if not isinstance(info, dict) or not isinstance(info.get(key), kind)
    ]
    if wrong or "generator" not in tensors:
        missing = ", ".join(wrong or ["generator"])
        raise CheckpointError(f"{path}: training state lacks valid {missing}; {fix}")
    return tensors, info
