"""The trained models shipped with the package: the ``literature`` profile's six, trained on all
60,000 MNIST training digits, each with its card (``card.json``: its test log-likelihood with the
estimator and its checks, its training settings, and the command and commit of the run that made
it).

    import rbmvae
    rbm = rbmvae.pretrained("rbm-h500")          # an rbmvae.RBM in eval mode
    for card in rbmvae.pretrained_cards(): ...   # what each one measured

Wherever a command takes ``--model DIR`` it also takes ``--model pretrained:NAME``. The files are
float32 safetensors with the usual ``model.json`` beside them (docs/derivation.md, s. 1 and 2
define the two models); :func:`rescore` measures a shipped model again, quickly, the way the
test suite checks that each file still matches its card.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from ..basics.errors import ConfigError
from ..basics.rng import make_generator
from ..likelihood import (
    MAX_ENUMERATED_UNITS,
    ais_log_partition,
    base_rate_visible_bias,
    iwae_log_likelihood,
    log_partition_exact,
)
from ..training.checkpoint import load_model

PREFIX = "pretrained:"
CARD_FILE = "card.json"
CARD_FORMAT = "rbmvae-pretrained"
# The quick re-scoring: its test digits (the first of MNIST's test set, binarized with seed 0),
# IWAE's samples for a VAE, and AIS's runs and betas for an RBM too large to enumerate.
RESCORE_IMAGES = 500
RESCORE_IWAE_K = 200
RESCORE_AIS_RUNS = 32
RESCORE_AIS_BETAS = 2000


def models_root() -> Path:
    """The folder of the shipped models, one directory per model."""
    return Path(str(resources.files(__package__) / "models"))


def pretrained_names() -> list[str]:
    """The names of the shipped models (``rbm-h20``, ..., ``vae-z16``), RBMs first."""
    root = models_root()
    names = [p.name for p in root.iterdir() if (p / CARD_FILE).is_file()] if root.is_dir() else []
    return sorted(names, key=lambda n: (n.split("-")[0], int("".join(filter(str.isdigit, n)))))


def model_directory(name: str) -> Path:
    """The directory holding the shipped model ``name`` (refused, naming the known ones)."""
    names = pretrained_names()
    if name not in names:
        known = ", ".join(names) or "none (this installation ships no trained models)"
        raise ConfigError(f"no pretrained model {name!r}; known: {known}")
    return models_root() / name


def card(name: str) -> dict:
    """The card of the shipped model ``name`` (see the module docstring)."""
    return json.loads((model_directory(name) / CARD_FILE).read_text(encoding="utf-8"))


def pretrained_cards() -> list[dict]:
    """Every shipped model's card, in :func:`pretrained_names` order."""
    return [card(name) for name in pretrained_names()]


def pretrained(name: str, device: torch.device | str = "cpu") -> nn.Module:
    """The shipped model ``name`` (e.g. ``"rbm-h500"``, ``"vae-z2"``) on ``device``, in eval mode."""
    model, _ = load_model(model_directory(name), device=device)
    return model


def resolve_model_argument(text: str) -> tuple[Path, bool]:
    """A ``--model`` argument as a directory: ``pretrained:NAME`` names a shipped model, anything
    else is a path. Returns the directory and whether it is a shipped (read-only) one."""
    text = str(text)
    if text.startswith(PREFIX):
        return model_directory(text[len(PREFIX) :]), True
    return Path(text), False


def _mean_and_error(values: torch.Tensor) -> tuple[float, float]:
    values = values.double()
    return float(values.mean()), float(values.std(correction=1) / math.sqrt(values.numel()))


def _rescore_rbm(rbm, test_images: torch.Tensor, train_images: torch.Tensor) -> dict:
    free = _mean_and_error(rbm.free_energy(test_images.to(rbm.weight.dtype)))
    out = {"images": test_images.shape[0], "mean_free_energy": free[0], "standard_error": free[1]}
    if min(rbm.n_hidden, rbm.n_visible) <= MAX_ENUMERATED_UNITS:
        log_z = log_partition_exact(rbm)
        out.update(method="exact log Z (Eq. 3.1)", log_z=log_z, log_z_error=0.0)
    else:
        result = ais_log_partition(
            rbm,
            base_rate_visible_bias(train_images),
            n_runs=RESCORE_AIS_RUNS,
            n_betas=RESCORE_AIS_BETAS,
            generator=make_generator(0, "cpu", "rescore-ais"),
        )
        low = result.log_z_low if math.isfinite(result.log_z_low) else -math.inf
        out.update(
            method=f"AIS, {RESCORE_AIS_RUNS} runs x {RESCORE_AIS_BETAS} betas (Eq. 3.5)",
            log_z=result.log_z,
            log_z_error=max(result.log_z_high - result.log_z, result.log_z - low) / 3,
            effective_runs=result.effective_runs,
        )
    out["mean_log_likelihood"] = -free[0] - out["log_z"]
    return out


def _rescore_vae(vae, test_images: torch.Tensor, train_images: torch.Tensor) -> dict:
    values = iwae_log_likelihood(
        vae,
        test_images,
        k=RESCORE_IWAE_K,
        generator=make_generator(0, "cpu", "rescore-iwae"),
        per_image=True,
    )
    mean, error = _mean_and_error(values)
    return {
        "images": test_images.shape[0],
        "method": f"IWAE, K = {RESCORE_IWAE_K} (Eq. 3.7)",
        "mean_log_likelihood": mean,
        "standard_error": error,
    }


# How each kind of model is measured again.
RESCORERS = {"rbm": _rescore_rbm, "vae": _rescore_vae}


@torch.no_grad()
def rescore(model: nn.Module, test_images: torch.Tensor, train_images: torch.Tensor) -> dict:
    """A quick measurement of a model, to compare with its card (the test suite does).

    ``test_images`` (n, D) binary; ``train_images`` (N, D) grey, for AIS's base-rate RBM
    (Eq. 3.6). RBM: the mean free energy ``F(v)`` (Eq. 1.7, deterministic: it pins the weights)
    with its standard error over the images, and ``log Z``, exact (Eq. 3.1) up to
    ``MAX_ENUMERATED_UNITS`` units in a layer, else AIS with ``RESCORE_AIS_RUNS`` x
    ``RESCORE_AIS_BETAS`` (Eq. 3.5) and a third of its +-3 s.e. interval as ``log_z_error``.
    VAE: IWAE with ``RESCORE_IWAE_K`` samples from a seed-0 stream (Eq. 3.7), with its standard
    error over the images.
    """
    return RESCORERS[model.kind](model, test_images, train_images)
