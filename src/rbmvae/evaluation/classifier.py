"""The fixed evaluation classifier that scores inpainted images: a small MLP fitted once per
data set and cached (docs/derivation.md, section 4)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from ..basics.atomic import write_bytes, write_text
from ..basics.devices import module_device
from ..basics.errors import RbmvaeError
from ..basics.rng import make_generator
from ..data import default_cache_dir

CLASSIFIER_HIDDEN = 128
# The classifiers the package ships, fitted as below (safetensors + JSON under their cache key):
# the embedded sample's, so that a first run on it (``make demo``) does not wait for the fit.
SHIPPED_DIR = Path(__file__).resolve().parent / "fitted"
CLASSIFIER_SETTINGS = {
    "architecture": "mlp",
    "hidden": CLASSIFIER_HIDDEN,
    "epochs": 15,
    "batch_size": 100,
    "learning_rate": 1e-3,
    "optimizer": "adam",
    "seed": 0,
}


def _build_classifier(n_pixels: int, n_classes: int, hidden: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(n_pixels, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_classes)
    )


def fit_classifier(
    images: torch.Tensor, labels: torch.Tensor, settings: dict | None = None
) -> torch.nn.Sequential:
    """A small MLP ``D -> hidden (ReLU) -> classes`` fitted with Adam; fully determined by the seed.

    Weights start from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) drawn from a seeded generator, and the
    minibatch order comes from the same generator, so the same data give the same classifier.
    """
    settings = {**CLASSIFIER_SETTINGS, **(settings or {})}
    generator = make_generator(settings["seed"], images.device)
    n_classes = int(labels.max()) + 1
    model = _build_classifier(images.shape[1], n_classes, settings["hidden"]).to(images.device)
    with torch.no_grad():
        for layer in (model[0], model[2]):
            bound = 1.0 / math.sqrt(layer.in_features)
            for param in (layer.weight, layer.bias):
                noise = torch.rand(param.shape, generator=generator, device=images.device)
                param.copy_((2.0 * noise - 1.0) * bound)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    n = images.shape[0]
    for _ in range(settings["epochs"]):
        order = torch.randperm(n, generator=generator, device=images.device)
        for index in order.split(settings["batch_size"]):
            loss = F.cross_entropy(model(images[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    return model


@torch.inference_mode()
def classifier_accuracy(
    classifier: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> float:
    """The fraction of ``images`` that ``classifier`` labels correctly."""
    device = module_device(classifier)
    predictions = torch.cat([classifier(b.to(device)).argmax(1) for b in images.split(5000)])
    return float((predictions == labels.to(device)).double().mean())


def _classifier_key(data, settings: dict) -> str:
    digest = hashlib.sha256()
    for tensor in (data.train_images, data.train_labels):
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", data.name or "data")
    return f"{safe_name}-{digest.hexdigest()[:16]}"


def evaluation_classifier(
    data,
    device: torch.device | str = "cpu",
    cache_dir: str | os.PathLike | None = None,
) -> tuple[torch.nn.Sequential, dict]:
    """The fixed classifier used to score inpainted images, and a description of it.

    Fitted once on ``data``'s training split and cached as safetensors + JSON in
    ``cache_dir`` (default ``data.default_cache_dir() / "classifiers"``), keyed by the data set's
    name and a hash of its training images, labels and the classifier settings. A damaged or
    mismatched cache entry is refitted; if the cache cannot be written the classifier is used
    uncached. The description holds its architecture, settings and test accuracy.
    """
    settings = dict(CLASSIFIER_SETTINGS)
    key = _classifier_key(data, settings)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "classifiers"
    weights_path = directory / f"{key}.safetensors"
    info_path = directory / f"{key}.json"
    shipped_entry = (SHIPPED_DIR / f"{key}.safetensors", SHIPPED_DIR / f"{key}.json")
    shipped = _load_cached(data, settings, *shipped_entry)
    if shipped is not None:
        classifier, info = shipped
        return classifier.to(device).eval(), {**info, "cache": "shipped with rbmvae"}
    with _fit_lock(directory, key):  # two processes of one study fit it once, not twice
        return _load_or_fit(data, device, settings, key, weights_path, info_path)


def _fit_lock(directory: Path, key: str):
    """A lock on one cache entry (``filelock``), or none where the cache cannot be written."""
    from filelock import FileLock

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return contextlib.nullcontext()
    if not os.access(directory, os.W_OK):
        return contextlib.nullcontext()
    return FileLock(str(directory / f".{key}.lock"))


def _load_cached(data, settings: dict, weights_path: Path, info_path: Path):
    """``(classifier, info)`` from a cache entry whose weights match their description; None
    where there is none or it is damaged."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    if not (weights_path.is_file() and info_path.is_file()):
        return None
    n_classes = int(data.train_labels.max()) + 1
    classifier = _build_classifier(data.n_pixels, n_classes, settings["hidden"])
    try:
        blob = weights_path.read_bytes()
        info = json.loads(info_path.read_text(encoding="utf-8"))
        if info.get("weights_sha256") != hashlib.sha256(blob).hexdigest():
            raise ValueError("weights do not match their description")
        classifier.load_state_dict(load_safetensors(blob))
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError, AttributeError):
        return None
    return classifier, info


def _load_or_fit(data, device, settings: dict, key: str, weights_path: Path, info_path: Path):
    from safetensors.torch import save as save_safetensors

    n_classes = int(data.train_labels.max()) + 1
    cache = str(info_path)
    cached = _load_cached(data, settings, weights_path, info_path)
    classifier, info = cached if cached is not None else (None, None)
    if info is None:
        started = time.perf_counter()
        train_images = data.train_images.to(device)
        classifier = fit_classifier(train_images, data.train_labels.to(device), settings)
        seconds = time.perf_counter() - started
        test_accuracy = classifier_accuracy(classifier, data.test_images, data.test_labels)
        blob = save_safetensors(
            {name: t.detach().to("cpu").contiguous() for name, t in classifier.state_dict().items()}
        )
        info = {
            "name": f"MLP {data.n_pixels}-{settings['hidden']}-{n_classes} (ReLU), "
            f"Adam, {settings['epochs']} epochs, seed {settings['seed']}",
            "trained_on": f"{data.name} training split ({data.train_images.shape[0]} images)",
            "settings": settings,
            "test_accuracy": test_accuracy,
            "n_test": int(data.test_images.shape[0]),
            "fit_seconds": seconds,
            "key": key,
            "weights_sha256": hashlib.sha256(blob).hexdigest(),
        }
        try:
            write_bytes(weights_path, blob)
            write_text(info_path, json.dumps(info, indent=2) + "\n")
        except (RbmvaeError, OSError):
            cache = None
    info = {**info, "cache": cache}
    classifier.to(device).eval()
    return classifier, info
