"""Scoring inpainting: the baselines (zero, training-mean and k-NN fill), the missing-pixel
errors (Eq. 4.3), the fixed evaluation classifier and the inpainting table (docs/derivation.md,
section 4)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..basics.checks import one_of, positive_int
from ..basics.devices import module_device
from ..basics.errors import ConfigError
from ..basics.rng import make_generator
from ..data.masks import half_mask, random_mask
from ..likelihood import base_rate_visible_bias
from ..likelihood.conditional import (
    conditional_is_exact,
    knn_conditional,
    mean_fill_conditional,
    model_conditional,
    nearest_neighbours,
    rbm_conditional_exact_masks,
)
from ..samplers import InpaintResult, inpaint, samplers_for
from .classifier import (  # noqa: F401  (re-exported: the classifier lived here)
    CLASSIFIER_HIDDEN,
    CLASSIFIER_SETTINGS,
    classifier_accuracy,
    evaluation_classifier,
    fit_classifier,
)

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
    nearest = nearest_neighbours(images, mask, train_images, k, batch_size)  # (N, k)
    neighbours = train_images.to(images.device, images.dtype)[nearest].mean(1)
    return torch.where(mask, neighbours, images)


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


@dataclass
class InpaintingTable:
    """Rows of inpainting scores (one per method, sampler and mask) and settings.

    Each row: ``method``, ``kind`` (baseline, rbm, vae), ``sampler``, ``mask`` (``"20%"`` or
    ``"top half"``), ``fraction``, ``mse`` and ``bce`` (per missing pixel against the grey digit,
    Eq. 4.3), ``accuracy`` (of the evaluation classifier on the inpainted images), ``conditional``
    (mean ``log p(x_m | x_o)`` in nats per image, Eqs. 5.5-5.8, with ``conditional_error``, the
    estimator's standard error, and ``conditional_spread``, the images' standard error; None
    where the method defines no conditional or the evidence is grey), ``acceptance``
    (Metropolis-within-Gibbs), ``seconds``; with the stability check ``mse_doubled`` and
    ``accuracy_doubled`` at twice the sweeps.
    """

    rows: list[dict]
    settings: dict
    classifier: dict

    def to_dict(self) -> dict:
        return {"rows": self.rows, "settings": self.settings, "classifier": self.classifier}

    def format(self) -> str:
        """The table as text, one line per row."""
        lines = [
            f"{'method':<34} {'missing':>9} {'MSE':>7} {'BCE':>7} {'accuracy':>8} "
            f"{'log p(x_m|x_o)':>16} {'accept':>6} {'seconds':>7}"
        ]
        for row in self.rows:
            value = row.get("conditional")
            conditional = "" if value is None else f"{value:.2f} +- {row['conditional_error']:.2f}"
            acceptance = row.get("acceptance")
            accept = "" if acceptance is None else f"{acceptance:.0%}"
            lines.append(
                f"{row['method']:<34} {row.get('mask', format(row['fraction'], '.0%')):>9} "
                f"{row['mse']:>7.4f} {row['bce']:>7.4f} {row['accuracy']:>8.1%} "
                f"{conditional:>16} {accept:>6} {row['seconds']:>7.1f}"
            )
        return "\n".join(lines)


def _baseline_methods(images, train_images, k_neighbours: int, smoothing: float) -> list[tuple]:
    """``(label, kind, sampler, fill(mask, generator, steps), conditional(mask, filled, n, g))``
    for zero, mean and k-NN fill (zero fill defines no conditional: its pixels are certain)."""

    def knn(m, g, steps):
        return InpaintResult(knn_fill(images, m, train_images, k_neighbours), images)

    return [
        (
            "zero fill",
            "baseline",
            None,
            lambda m, g, s: InpaintResult(zero_fill(images, m), images),
            None,
        ),
        (
            "training-mean fill",
            "baseline",
            None,
            lambda m, g, s: InpaintResult(mean_fill(images, m, train_images), images),
            lambda m, f, n, g: mean_fill_conditional(images[:n], m[:n], train_images),
        ),
        (
            f"{k_neighbours}-NN fill",
            "baseline",
            None,
            knn,
            lambda m, f, n, g: knn_conditional(
                images[:n], m[:n], train_images, k_neighbours, smoothing
            ),
        ),
    ]


def neighbour_starts(
    images: torch.Tensor, mask: torch.Tensor, train_images: torch.Tensor, chains: int
) -> torch.Tensor:
    """Starts for ``chains`` inpainting chains per image (Eq. 5.9): chain c of image n starts at
    the c-th training image nearest to image n on its observed pixels (as :func:`knn_fill`
    ranks them). Shape: ``images`` and ``mask`` (N, D) -> (N, chains, D)."""
    train_images = train_images.to(images.device, images.dtype)
    nearest = nearest_neighbours(images, mask, train_images, chains, 500)  # (N, chains)
    return train_images[nearest]


def chain_starts(
    images: torch.Tensor, mask: torch.Tensor, train_images: torch.Tensor, chains: int, start: str
) -> torch.Tensor:
    """The ``fill`` of :func:`rbmvae.samplers.inpainting.inpaint` for ``start`` (``INPAINT_STARTS``): the
    training mean (D,), or :func:`neighbour_starts` (N, chains, D)."""
    one_of("start", start, INPAINT_STARTS)
    if start == "neighbours":
        return neighbour_starts(images, mask, train_images, chains)
    return train_images.to(images.device, images.dtype).mean(0)


def _model_methods(
    models: dict,
    images,
    train_images,
    samplers: dict | None,
    conditional: dict,
    starts: dict,
    masks: list[torch.Tensor],
) -> list:
    """The methods (as :func:`_baseline_methods`) of each model and each of its samplers
    (``samplers[kind]``, default every sampler of the kind; the label names the sampler when a
    kind has more than one), each running ``starts["chains"]`` chains per image from the
    training mean or from the nearest training images (``starts["start"]``, Eq. 5.9). The VAE's
    conditional uses the mean fill and the sampler's completion as proposal centres (Eq. 5.7).
    A model whose conditional is exact (an RBM of at most 25 hidden units, Eq. 5.5) is scored
    under all the table's ``masks`` by one enumeration, at its first row."""
    mean = train_images.mean(0)
    chains, fills, exact = starts["chains"], {}, {}

    def fill_for(mask):
        # the same masks serve every row: their starts are found once (the mask is kept beside
        # them, so that its id is not reused while the table runs)
        if id(mask) not in fills:
            fills[id(mask)] = (
                mask,
                chain_starts(images, mask, train_images, chains, starts["start"]),
            )
        return fills[id(mask)][1]

    methods = []
    for name, model in models.items():
        names = tuple(samplers_for(model)) if samplers is None else samplers.get(model.kind, ())
        names = names or tuple(samplers_for(model))[:1]
        for sampler in names:

            def run(m, g, steps, model=model, sampler=sampler):
                return inpaint(
                    model,
                    images,
                    m,
                    steps=steps,
                    fill=fill_for(m),
                    generator=g,
                    sampler=sampler,
                    chains=chains,
                    full_result=True,
                )

            def score(m, filled, n, g, model=model, name=name):
                if conditional_is_exact(model):  # neither the fills nor g change it
                    if name not in exact:
                        found = rbm_conditional_exact_masks(
                            model, images[:n], [mask[:n] for mask in masks]
                        )
                        exact[name] = list(zip(masks, found, strict=True))
                    return next(estimate for mask, estimate in exact[name] if mask is m)
                fills = torch.stack([torch.where(m[:n], mean, images[:n]), filled[:n]])
                return model_conditional(
                    model, images[:n], m[:n], fills=fills, generator=g, **conditional
                )

            several = len(samplers_for(model)) > 1
            label = f"{name} ({sampler})" if several else name
            methods.append((label, model.kind, sampler if several else None, run, score))
    return methods


def _score_rows(methods, masks, targets, labels, classifier, options: dict) -> list[dict]:
    """One row per (mask, method): errors against the grey ``targets``, accuracy, conditional."""
    seed, device, steps = options["seed"], options["device"], options["steps"]
    rows = []
    for mask_label, fraction, mask in masks:
        for label, kind, sampler, run, conditional in methods:
            started = time.perf_counter()
            result = run(mask, make_generator(seed, device), steps)
            seconds = time.perf_counter() - started
            mse, bce = missing_pixel_errors(result.images, targets, mask)
            row = {
                "method": label,
                "kind": kind,
                "sampler": sampler,
                "mask": mask_label,
                "fraction": float(fraction),
                "mse": mse,
                "bce": bce,
                "accuracy": classifier_accuracy(classifier, result.images, labels),
                "acceptance": result.acceptance,
                "seconds": seconds,
                "conditional": None,
            }
            if conditional is not None and options["conditional_images"] > 0:
                n = options["conditional_images"]
                started = time.perf_counter()
                estimate = conditional(mask, result.images, n, make_generator(seed, device, "cll"))
                row.update(
                    conditional=estimate.mean,
                    conditional_error=estimate.mean_std_error,
                    conditional_spread=estimate.images_std_error,
                    conditional_method=estimate.method,
                    conditional_seconds=time.perf_counter() - started,
                )
            if options["stability"] and label not in options["baseline_labels"]:
                doubled = run(mask, make_generator(seed, device, "doubled"), 2 * steps)
                row["mse_doubled"] = missing_pixel_errors(doubled.images, targets, mask)[0]
                row["accuracy_doubled"] = classifier_accuracy(classifier, doubled.images, labels)
                row["acceptance_doubled"] = doubled.acceptance
            rows.append(row)
    return rows


EVIDENCE = ("binary", "grey")
INPAINT_STARTS = ("mean", "neighbours")
START_TEXT = {
    "mean": "training mean",
    "neighbours": "chain c at the c-th nearest training image on the observed pixels",
}


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
    *,
    evidence: str = "binary",
    halves: tuple[str, ...] = (),
    conditional_images: int = 200,
    conditional: dict | None = None,
    knn_smoothing: float = 0.05,
    stability: bool = False,
    chains: int = 1,
    start: str = "mean",
) -> InpaintingTable:
    """Score every model and baseline at filling in missing pixels of the first ``n`` test images.

    The observed pixels are the test digits binarized with ``seed``
    (``Dataset.binarized_test_images``, ``evidence="binary"``: the models' conditionals assume
    binary pixels) or, labelled as such, the grey digits (``evidence="grey"``). For each fraction
    one set of random masks (:func:`evaluation_masks`), and for each of ``halves`` (``top``,
    ``bottom``, ...) the half-image mask, is shared by every row. Models (``{name: model}``) run
    each of their samplers (``samplers[kind]``; default: every sampler of
    ``samplers.SAMPLERS``) for ``steps`` sweeps from the training-mean fill, averaging the
    last half; baselines are zero, training-mean and ``k_neighbours``-NN fill. Each row reports
    MSE and BCE on the missing pixels (Eq. 4.3) against the grey digits, the accuracy of the
    evaluation classifier (:func:`evaluation_classifier`) on the inpainted images and, with binary
    evidence, the conditional log-likelihood of the missing pixels (Eqs. 5.5-5.8) on the first
    ``conditional_images`` images (0: none; ``conditional``: options of
    ``likelihood.conditional.model_conditional``). ``stability`` reruns each sampler with twice the sweeps.
    Every row draws from its own generator seeded by ``seed``.
    """
    if not 0 < n <= data.test_images.shape[0]:
        raise ConfigError(f"n must be between 1 and {data.test_images.shape[0]}, got {n}")
    one_of("evidence", evidence, EVIDENCE)
    if device is None:
        device = module_device(next(iter(models.values()))) if models else "cpu"
    device = torch.device(device)
    if classifier is None:
        classifier = evaluation_classifier(data, device=device)
    model_classifier, classifier_info = classifier
    targets = data.test_images[:n].to(device)
    binary = evidence == "binary"
    images = data.binarized_test_images(n, seed).to(device) if binary else targets
    labels = data.test_labels[:n].to(device)
    train_images = data.train_images.to(device)
    options = {
        "seed": seed,
        "device": device,
        "steps": steps,
        "stability": stability,
        "conditional_images": min(n, conditional_images) if binary else 0,
    }
    # the base of AIS on a clamped RBM (Eq. 5.6); cheap, and ignored by the other estimators
    conditional = {"base_visible_bias": base_rate_visible_bias(train_images), **(conditional or {})}
    methods = (
        _baseline_methods(images, train_images, k_neighbours, knn_smoothing) if baselines else []
    )
    one_of("start", start, INPAINT_STARTS)
    starts = {"chains": positive_int("chains", chains), "start": start}
    masks = table_masks(n, data, fractions, halves, seed, device)
    methods += _model_methods(
        models, images, train_images, samplers, conditional or {}, starts, [m for *_, m in masks]
    )
    options["baseline_labels"] = {method[0] for method in methods[: 3 if baselines else 0]}
    rows = _score_rows(methods, masks, targets, labels, model_classifier, options)
    settings = _table_settings(data, n, steps, seed, options, evidence, fractions, halves)
    settings.update(k_neighbours=k_neighbours, knn_smoothing=knn_smoothing, stability=stability)
    settings.update(chains=chains, start_fill=START_TEXT[start])
    accuracy = classifier_accuracy(model_classifier, targets, labels)
    classifier_info = {**classifier_info, "accuracy_on_complete_images": accuracy}
    return InpaintingTable(rows=rows, settings=settings, classifier=classifier_info)


def table_masks(n, data, fractions, halves, seed, device) -> list[tuple[str, float, torch.Tensor]]:
    """``(label, fraction, mask)`` for each random fraction (:func:`evaluation_masks`) and each
    half (``masks.half_mask``), as :func:`inpainting_table` shares them between its rows."""
    randoms = evaluation_masks(n, data.n_pixels, tuple(fractions), seed, device)
    masks = [(f"{f:.0%}", f, m) for f, m in zip(fractions, randoms, strict=True)]
    return masks + [
        (f"{side} half", 0.5, half_mask(n, data.image_shape, side, device)) for side in halves
    ]


def _table_settings(data, n, steps, seed, options, evidence, fractions, halves) -> dict:
    binary = evidence == "binary"
    evidence_text = (
        f"binarized with seed {seed} (Dataset.binarized_test_images)"
        if binary
        else "grey values in [0, 1] (soft evidence: no model conditional applies)"
    )
    return {
        "n_images": n,
        "images": f"the first {n} test images of {data.name}, observed pixels {evidence_text}",
        "evidence": evidence,
        "targets": "MSE and BCE against the grey test digits",
        "fractions": [float(f) for f in fractions],
        "halves": list(halves),
        "steps": steps,
        "average_last": max(1, steps // 2),
        "seed": seed,
        "conditional_images": options["conditional_images"],
        "bce_clip": BCE_CLIP,
        "masks": "per fraction or half, the same masks for every row",
    }


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
