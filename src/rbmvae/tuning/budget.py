"""Training budgets in CPU minutes: the epochs of a recipe priced by a timed pilot of ``fit``."""

from __future__ import annotations

import math

from .. import fit


def seconds_per_epoch(config, data, build, fraction: float = 0.1) -> float:
    """The time of one whole epoch of ``fit`` with ``config`` on all of ``data``'s training images:
    everything an epoch does (binarization, the objective's updates, the optimizer's steps, the
    epoch-end monitor), from a pilot of two epochs on ``fraction`` of the images, the second timed
    and scaled to the whole set. The pilot's second epoch runs at the final k; a rising k is priced
    at its mean, the cost scaled by ``(1 + k / k_final) / 2``. ``build(n_visible)`` makes the
    model (a fresh one, thrown away)."""
    n_train = data.train_images.shape[0]
    pilot = data.subset(n_train=max(config.batch_size, math.ceil(n_train * fraction)))
    model = build(data.train_images.shape[1])
    last = fit(model, pilot, config.replace(epochs=2), progress=False)[-1]
    per_epoch = last["train_seconds"] * n_train / pilot.train_images.shape[0]
    if config.k_final:
        low = config.k / max(config.k, config.k_final)
        per_epoch *= (1 + low) / 2
    return per_epoch + last["monitor_seconds"]


def epochs_for(minutes: float, config, data, build) -> int:
    """How many epochs of ``config`` fit in ``minutes`` of training (at least one)."""
    return max(1, int(minutes * 60 / seconds_per_epoch(config, data, build)))
