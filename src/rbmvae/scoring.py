"""Scoring inpainting: the baselines (zero, training-mean and k-NN fill), the missing-pixel
errors (Eq. 4.3), the fixed evaluation classifier and the inpainting table (docs/derivation.md,
section 4)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from .atomic import write_bytes, write_text
from .data import default_cache_dir
from .devices import module_device
from .errors import ConfigError, RbmvaeError
from .inpainting import inpaint, samplers_for
from .masks import random_mask
from .rng import make_generator

# ------------------------------------------------------------------------------------------------
# Inpainting quality: baselines, scores, the evaluation classifier, the table

BCE_CLIP = 1e-4


def zero_fill(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Missing pixels set to 0 (what the original assignment's code did)."""
    return images.masked_fill(mask, 0.0)


def mean_fill(images: torch.Tensor, mask: torch.Tensor, train_images: torch.Tensor) -> torch.Tensor:
    """Missing pixels set to the training images' mean of that pixel."""
    mean = train_images.to(images.device, images.dtype).mean(0)
    return torch.where(mask, mean.expand_as(images), images)


@torch.inference_mode()
def knn_fill(
    images: torch.Tensor,
    mask: torch.Tensor,
    train_images: torch.Tensor,
    k: int = 10,
    batch_size: int = 500,
) -> torch.Tensor:
    """Missing pixels set to the mean of the ``k`` training images nearest on the observed pixels.

    The squared distance over observed pixels ``o`` is ``sum_i o_i (x_i - t_i)^2 = sum_i o_i x_i^2
    - 2 (o * x) . t + o . t^2``; the last two terms are two matrix products per batch of images (the
    first does not depend on the neighbour, so it is left out of the ranking).
    """
    if not 0 < k <= train_images.shape[0]:
        raise ConfigError(f"k must be between 1 and {train_images.shape[0]}, got {k}")
    train = train_images.to(images.device, images.dtype)
    train_sq_t = train.pow(2).t()
    train_t = train.t()
    parts = []
    for batch, missing in zip(images.split(batch_size), mask.split(batch_size), strict=True):
        observed = (~missing).to(batch.dtype)
        score = (observed @ train_sq_t).sub_(2.0 * (observed * batch) @ train_t)
        nearest = score.topk(k, dim=1, largest=False).indices
        neighbours = train[nearest].mean(1)
        parts.append(torch.where(missing, neighbours, batch))
    return torch.cat(parts) if parts else images.clone()


def missing_pixel_errors(
    filled: torch.Tensor, original: torch.Tensor, mask: torch.Tensor, clip: float = BCE_CLIP
) -> tuple[float, float]:
    """``(MSE, BCE)`` over the missing pixels only (Eq. 4.3), each a mean per missing pixel.

    BCE is ``-[x log p + (1 - x) log(1 - p)]`` with ``p`` clipped to ``[clip, 1 - clip]`` so that
    a hard 0 or 1 costs at most ``-log(clip)`` nats; for grey targets it is a cross-entropy.
    """
    if not bool(mask.any()):
        return 0.0, 0.0
    p = filled[mask].double()
    x = original[mask].double()
    mse = float((p - x).pow(2).mean())
    p = p.clamp(clip, 1.0 - clip)
    bce = float(-(x * torch.log(p) + (1.0 - x) * torch.log1p(-p)).mean())
    return mse, bce


CLASSIFIER_HIDDEN = 128
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
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors
    from safetensors.torch import save as save_safetensors


    settings = dict(CLASSIFIER_SETTINGS)
    n_classes = int(data.train_labels.max()) + 1
    key = _classifier_key(data, settings)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "classifiers"
    weights_path = directory / f"{key}.safetensors"
    info_path = directory / f"{key}.json"
    classifier = _build_classifier(data.n_pixels, n_classes, settings["hidden"])
    info = None
    cache = str(info_path)
    if weights_path.is_file() and info_path.is_file():
        try:
            blob = weights_path.read_bytes()
            info = json.loads(info_path.read_text(encoding="utf-8"))
            if info.get("weights_sha256") != hashlib.sha256(blob).hexdigest():
                raise ValueError("weights do not match their description")
            classifier.load_state_dict(load_safetensors(blob))
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError, AttributeError):
            info = None
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


@dataclass
class InpaintingTable:
    """Rows of inpainting scores (one per method, sampler and missing fraction) and settings.

    Each row: ``method``, ``kind`` (baseline, rbm, vae), ``sampler``, ``fraction``, ``mse`` and
    ``bce`` (per missing pixel, Eq. 4.3), ``accuracy`` (of the evaluation classifier on the
    inpainted images) and ``seconds``.
    """

    rows: list[dict]
    settings: dict
    classifier: dict

    def to_dict(self) -> dict:
        return {"rows": self.rows, "settings": self.settings, "classifier": self.classifier}

    def format(self) -> str:
        """The table as text, one line per row."""
        lines = [
            f"{'method':<28} {'missing':>7} {'MSE':>8} {'BCE':>8} {'accuracy':>9} {'seconds':>8}"
        ]
        for row in sorted(self.rows, key=lambda r: r["fraction"]):
            lines.append(
                f"{row['method']:<28} {row['fraction']:>7.0%} {row['mse']:>8.4f} "
                f"{row['bce']:>8.4f} {row['accuracy']:>9.1%} {row['seconds']:>8.2f}"
            )
        return "\n".join(lines)


def _baseline_methods(images, train_images, k_neighbours: int) -> list[tuple]:
    """``(label, kind, sampler, fill(mask, generator))`` for zero, mean and k-NN fill."""
    return [
        ("zero fill", "baseline", None, lambda m, g: zero_fill(images, m)),
        ("training-mean fill", "baseline", None, lambda m, g: mean_fill(images, m, train_images)),
        (
            f"{k_neighbours}-NN fill",
            "baseline",
            None,
            lambda m, g: knn_fill(images, m, train_images, k_neighbours),
        ),
    ]


def _model_methods(models: dict, images, fill, steps: int, samplers: dict | None) -> list[tuple]:
    """``(label, kind, sampler, fill(mask, generator))`` for each model and each of its samplers
    (``samplers[kind]``, default every sampler of the kind; the label names the sampler when a
    kind has more than one)."""
    methods = []
    for name, model in models.items():
        names = tuple(samplers_for(model)) if samplers is None else samplers.get(model.kind, ())
        names = names or tuple(samplers_for(model))[:1]
        for sampler in names:

            def run(m, g, model=model, sampler=sampler):
                return inpaint(
                    model, images, m, steps=steps, fill=fill, generator=g, sampler=sampler
                )

            several = len(samplers_for(model)) > 1
            label = f"{name} ({sampler})" if several else name
            methods.append((label, model.kind, sampler if several else None, run))
    return methods


def _score_rows(methods, masks, fractions, images, labels, classifier, seed, device) -> list[dict]:
    rows = []
    for fraction, mask in zip(fractions, masks, strict=True):
        for label, kind, sampler, run in methods:
            started = time.perf_counter()
            filled = run(mask, make_generator(seed, device))
            seconds = time.perf_counter() - started
            mse, bce = missing_pixel_errors(filled, images, mask)
            rows.append(
                {
                    "method": label,
                    "kind": kind,
                    "sampler": sampler,
                    "fraction": float(fraction),
                    "mse": mse,
                    "bce": bce,
                    "accuracy": classifier_accuracy(classifier, filled, labels),
                    "seconds": seconds,
                }
            )
    return rows


def inpainting_table(
    models: dict,
    data,
    fractions: tuple[float, ...] = (0.2, 0.5, 0.8),
    n: int = 1000,
    steps: int = 200,
    seed: int = 0,
    baselines: bool = True,
    k_neighbours: int = 10,
    samplers: dict[str, tuple[str, ...]] | None = None,
    classifier: tuple[torch.nn.Module, dict] | None = None,
    device: torch.device | str | None = None,
) -> InpaintingTable:
    """Score every model and baseline at filling in missing pixels of the first ``n`` test images.

    For each fraction one set of random masks (:func:`evaluation_masks`) is shared by every row.
    Models (``{name: model}``) run each of their samplers (``samplers[kind]``; default: every
    sampler of ``inpainting.SAMPLERS``) for ``steps`` sweeps from the training-mean fill,
    averaging the last half; baselines are zero fill, training-mean fill and
    ``k_neighbours``-nearest-neighbour fill. Each row reports MSE and BCE on the missing pixels
    (Eq. 4.3) against the grey test images, and the accuracy of the evaluation classifier
    (:func:`evaluation_classifier`) on the inpainted images. Every row draws from its own
    generator seeded by ``seed``, so a row does not depend on which other rows are computed.
    """
    if not 0 < n <= data.test_images.shape[0]:
        raise ConfigError(f"n must be between 1 and {data.test_images.shape[0]}, got {n}")
    if device is None:
        device = module_device(next(iter(models.values()))) if models else "cpu"
    device = torch.device(device)
    if classifier is None:
        classifier = evaluation_classifier(data, device=device)
    model_classifier, classifier_info = classifier
    images = data.test_images[:n].to(device)
    labels = data.test_labels[:n].to(device)
    train_images = data.train_images.to(device)
    methods = _baseline_methods(images, train_images, k_neighbours) if baselines else []
    methods += _model_methods(models, images, train_images.mean(0), steps, samplers)
    masks = evaluation_masks(n, data.n_pixels, tuple(fractions), seed, device)
    rows = _score_rows(methods, masks, fractions, images, labels, model_classifier, seed, device)
    settings = {
        "n_images": n,
        "images": f"the first {n} test images of {data.name}, grey values in [0, 1]",
        "fractions": [float(f) for f in fractions],
        "steps": steps,
        "average_last": max(1, steps // 2),
        "start_fill": "training mean",
        "seed": seed,
        "k_neighbours": k_neighbours,
        "bce_clip": BCE_CLIP,
        "masks": "per fraction, the same random masks for every row",
    }
    classifier_info = {
        **classifier_info,
        "accuracy_on_complete_images": classifier_accuracy(model_classifier, images, labels),
    }
    return InpaintingTable(rows=rows, settings=settings, classifier=classifier_info)


def evaluation_masks(
    n: int,
    n_pixels: int,
    fractions: tuple[float, ...],
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """One random mask per fraction, as :func:`inpainting_table` uses (shared by all its rows)."""
    return [
        random_mask(n, n_pixels, fraction, make_generator(seed, device, "masks", fraction), device)
        for fraction in fractions
    ]
