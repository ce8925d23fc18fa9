"""What the explorer page carries: the models' weights, test digits, the latent pad's data, and
the size-budget policy that decides which matrices go to float16 and which models are left out.

The payload is a JSON-ready dict read by the page's JavaScript (``main.js``)::

    {"version": 1, "imageShape": [H, W], "models": [{"name", "kind", "label", "config",
     "tensors": {name: {"shape", "dtype", "data"}}}], "digits": {...} | None,
     "latent": {...} | None, "notes": [str]}
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ...basics.errors import ConfigError
from ..figures import manifold_array, png_bytes

MAX_PAGE_BYTES = 5_000_000
PRECISIONS = ("auto", "float32", "float16")
LATENT_RANGE = 3.0
MANIFOLD_GRID = 16


@dataclass(frozen=True)
class _Kind:
    """How the explorer treats one kind of model."""

    rank: int  # RBMs first, then VAEs
    size: str  # the attribute ordering models of this kind
    sampler: str  # the page's inpainting chain for it


_KINDS = {
    "rbm": _Kind(0, "n_hidden", "clamped Gibbs"),  # Eq. 5.2
    "vae": _Kind(1, "n_latent", "pseudo-Gibbs"),  # Eq. 5.3
}


@dataclass
class ExplorerInfo:
    """What went into a page: its size, the models, and what was shrunk or left out to fit."""

    n_bytes: int
    models: list[str]
    float16: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# models


def tensor_spec(tensor: torch.Tensor, dtype: str) -> dict:
    """Shape, dtype (``float32`` or ``float16``) and little-endian base64 bytes of ``tensor``."""
    array = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
    array = array.astype("<f2" if dtype == "float16" else "<f4")
    return {
        "shape": list(array.shape),
        "dtype": dtype,
        "data": base64.b64encode(array.tobytes()).decode("ascii"),
    }


def model_label(name: str, model: nn.Module) -> str:
    """``"NAME: RBM, 500 hidden (clamped Gibbs)"``: the model's label and the page's sampler."""
    return f"{name}: {model.label()} ({_KINDS[model.kind].sampler})"


def check_models(models: dict[str, nn.Module]) -> int:
    """The common number of pixels of ``models`` (RBMs and VAEs only)."""
    if not models:
        raise ConfigError("the explorer needs at least one model; train one or run reproduce")
    sizes = set()
    for name, model in models.items():
        if getattr(model, "kind", None) not in _KINDS:
            raise ConfigError(
                f"{name}: the explorer runs RBMs and VAEs, not {type(model).__name__}"
            )
        sizes.add(model.n_visible)
    if len(sizes) != 1:
        raise ConfigError(
            f"the models have different numbers of pixels ({sorted(sizes)}); "
            "explore models of one data set at a time"
        )
    return sizes.pop()


def ordered(models: dict[str, nn.Module]) -> list[tuple[str, nn.Module]]:
    """RBMs by hidden units, then VAEs by code size (stable for equal sizes)."""

    def key(item):
        kind = _KINDS[item[1].kind]
        return kind.rank, getattr(item[1], kind.size)

    return sorted(models.items(), key=key)


def image_shape(n_visible: int, data) -> tuple[int, int]:
    """(H, W) of the data set's images, or the square of ``n_visible`` pixels without data."""
    if data is not None:
        shape = tuple(int(s) for s in data.image_shape)
        if shape[0] * shape[1] != n_visible:
            raise ConfigError(
                f"the data set's images are {shape[0]}x{shape[1]}, the models have "
                f"{n_visible} pixels; use the data set the models were trained on"
            )
        return shape
    side = math.isqrt(n_visible)
    if side * side != n_visible:
        raise ConfigError(
            f"cannot tell the image shape of {n_visible} pixels; pass the data set as well"
        )
    return side, side


# ------------------------------------------------------------------------------------------------
# data: test digits, latent points, the manifold image


def pick_digits(data, n_digits: int) -> dict | None:
    """``n_digits`` test digits taking the labels in turn (0, 1, ..., 9, 0, ...), as uint8.

    Returns ``{"indices": [n], "labels": [n], "data": base64 of (n, D) uint8}`` or None.
    """
    if data is None or n_digits <= 0:
        return None
    labels = data.test_labels.to("cpu")
    pools = {int(v): (labels == v).nonzero().flatten().tolist() for v in labels.unique()}
    picked: list[int] = []
    depth = 0
    while len(picked) < n_digits and any(depth < len(p) for p in pools.values()):
        for value in sorted(pools):
            if depth < len(pools[value]) and len(picked) < n_digits:
                picked.append(pools[value][depth])
        depth += 1
    images = data.test_images[picked].to("cpu", torch.float32)
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return {
        "indices": picked,
        "labels": [int(labels[i]) for i in picked],
        "data": base64.b64encode(pixels.tobytes()).decode("ascii"),
    }


def latent_panel(name: str, vae: nn.Module, data, shape: tuple[int, int], n_points: int) -> dict:
    """The pad's data for a VAE with a 2-D code: the manifold as a PNG data URI and the means of
    q(z | x) for up to ``n_points`` test digits (``points.z``: 2 * n values, z1 and z2 in turn)."""
    grid = MANIFOLD_GRID
    with torch.no_grad():
        manifold = manifold_array(
            vae, n=grid, value_range=(-LATENT_RANGE, LATENT_RANGE), image_shape=shape
        )
    # Tile c is centred on z1 = values[c], values evenly spaced from -3 to 3: the image reaches
    # half a tile beyond the range on each side.
    half_tile = LATENT_RANGE / (grid - 1)
    panel = {
        "model": name,
        "range": LATENT_RANGE,
        "manifold": "data:image/png;base64,"
        + base64.b64encode(png_bytes(manifold, scale=1)).decode("ascii"),
        "manifoldExtent": [-LATENT_RANGE - half_tile, LATENT_RANGE + half_tile],
        "points": {"z": [], "labels": []},
    }
    if data is not None and n_points > 0:
        n_test = data.test_images.shape[0]
        generator = torch.Generator().manual_seed(0)
        chosen = torch.randperm(n_test, generator=generator)[: min(n_points, n_test)]
        weight = vae.decoder_output.weight
        images = data.test_images[chosen].to(weight.device, weight.dtype)
        with torch.no_grad():
            means, _ = vae.encode(images)
        panel["points"] = {
            "z": [round(v, 3) for v in means.to("cpu").flatten().tolist()],
            "labels": [int(v) for v in data.test_labels[chosen]],
        }
    return panel


def first_latent_panel(models: list[tuple[str, nn.Module]], data, shape, n_points: int):
    """The pad of the first model with a 2-D code (None when there is none)."""
    for name, model in models:
        if getattr(model, "n_latent", None) == 2:
            return latent_panel(name, model, data, shape, n_points)
    return None


# ------------------------------------------------------------------------------------------------
# the size budget


class Payload:
    """The payload of ``models`` (ordered) with some matrices in float16 and some models left out.

    ``half`` holds (model, tensor) pairs stored as float16, ``dropped`` the names left out;
    tensor specs are encoded once per precision.
    """

    def __init__(self, models, shape, digits, latent, max_bytes: int, precision: str):
        self.models = models
        self.shape = shape
        self.digits = digits
        self.latent = latent
        self.max_bytes = max_bytes
        self.precision = precision
        self.tensors = {name: dict(model.state_dict()) for name, model in models}
        self.half: set[tuple[str, str]] = set()
        if precision == "float16":
            self.half = set(self.matrices())
        self.dropped: list[str] = []
        self._specs: dict[tuple[str, str, str], dict] = {}

    def matrices(self) -> list[tuple[str, str]]:
        """(model, tensor) pairs of every weight matrix, largest first."""
        pairs = [(n, t) for n, ts in self.tensors.items() for t, v in ts.items() if v.dim() == 2]
        return sorted(pairs, key=lambda pair: -self.tensors[pair[0]][pair[1]].numel())

    def by_size(self) -> list[str]:
        """Model names, most parameters first."""
        total = {n: sum(v.numel() for v in ts.values()) for n, ts in self.tensors.items()}
        return sorted((name for name, _ in self.models), key=lambda n: -total[n])

    def float16(self) -> list[str]:
        return sorted({n for n, _ in self.half if n not in self.dropped})

    def notes(self) -> list[str]:
        notes = []
        limit = f"{self.max_bytes / 1e6:g} MB"
        shrunk = self.float16()
        if shrunk and self.precision == "auto":
            notes.append(
                f"To keep this page under {limit}, the largest weight matrices of "
                f"{', '.join(shrunk)} are stored as float16 (relative rounding error at most "
                "2^-11, about 0.05%); the rest is float32."
            )
        if self.dropped:
            notes.append(f"Left out to keep this page under {limit}: {', '.join(self.dropped)}.")
        return notes

    def _spec(self, name: str, tensor: str) -> dict:
        dtype = "float16" if (name, tensor) in self.half else "float32"
        key = (name, tensor, dtype)
        if key not in self._specs:
            self._specs[key] = tensor_spec(self.tensors[name][tensor], dtype)
        return self._specs[key]

    def as_dict(self) -> dict:
        latent = self.latent
        return {
            "version": 1,
            "imageShape": list(self.shape),
            "models": [
                {
                    "name": name,
                    "kind": model.kind,
                    "label": model_label(name, model),
                    "config": model.config(),
                    "tensors": {t: self._spec(name, t) for t in self.tensors[name]},
                }
                for name, model in self.models
                if name not in self.dropped
            ],
            "digits": self.digits,
            "latent": latent
            if latent is not None and latent["model"] not in self.dropped
            else None,
            "notes": self.notes(),
        }

    def info(self, n_bytes: int) -> ExplorerInfo:
        return ExplorerInfo(
            n_bytes=n_bytes,
            models=[name for name, _ in self.models if name not in self.dropped],
            float16=self.float16(),
            dropped=list(self.dropped),
            notes=self.notes(),
        )


def fit_budget(payload: Payload, render: Callable[[dict], str], budget: int) -> str:
    """``render(payload.as_dict())``, shrunk to at most ``budget`` bytes of UTF-8 if the
    precision is ``auto``: the largest matrices to float16 first, then (only if that is not
    enough) whole models left out, largest first; at least one model stays."""

    def size(text: str) -> int:
        return len(text.encode("utf-8"))

    text = render(payload.as_dict())
    if payload.precision != "auto":
        return text
    matrices = payload.matrices()
    while size(text) > budget and matrices:
        payload.half.add(matrices.pop(0))
        text = render(payload.as_dict())
    by_size = payload.by_size()
    while size(text) > budget and len(by_size) > 1:
        payload.dropped.append(by_size.pop(0))
        text = render(payload.as_dict())
    return text
