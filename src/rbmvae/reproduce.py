"""``rbmvae reproduce``: train every model of the study, evaluate it, draw every figure, and write
``metrics.json`` and ``report.html`` into one run directory.

Layout of a run directory::

    settings.json            the resolved settings (profile plus overrides)
    models/rbm-h20/ ...      one checkpoint directory per model (model.json, model.safetensors,
                             training_state.safetensors, evaluation.json)
    figures/*.png            every figure
    metrics.json             every number, with units and settings
    report.html              one self-contained page

Re-running reuses each model whose stored settings match (unless ``force``); a model whose
training was interrupted resumes where it stopped; evaluations are cached beside each checkpoint
under the settings that produced them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from .atomic import ensure_writable_dir
from .checkpoint import META_FILE, STATE_FILE, load_model, read_metadata
from .data import Dataset
from .devices import make_generator
from .errors import CheckpointError, ConfigError

PROFILES: dict[str, dict] = {
    "quick": {
        "dataset": "mnist-sample",
        "seed": 0,
        "rbm_hidden": [20, 100, 500],
        "vae_latent": [2, 8, 16],
        "vae_hidden": 256,
        "rbm": {"epochs": 5, "method": "pcd", "k": 1},
        "vae": {"epochs": 8},
        "evaluation": {
            "loglik_images": 1000,
            "binarize_seed": 0,
            "ais_runs": 32,
            "ais_betas": 1000,
            "iwae_k": 100,
            "iwae_images": 300,
            "fractions": [0.2, 0.5, 0.8],
            "inpaint_images": 100,
            "inpaint_steps": 100,
            "figure_digits": 6,
        },
    },
    "full": {
        "dataset": "mnist",
        "seed": 0,
        "rbm_hidden": [20, 100, 500],
        "vae_latent": [2, 8, 16],
        "vae_hidden": 256,
        "rbm": {"epochs": 30, "method": "pcd", "k": 1},
        "vae": {"epochs": 30, "binarize": "stochastic"},
        "evaluation": {
            "loglik_images": 10000,
            "binarize_seed": 0,
            "ais_runs": 100,
            "ais_betas": 14500,
            "iwae_k": 5000,
            "iwae_images": 1000,
            "fractions": [0.2, 0.5, 0.8],
            "inpaint_images": 1000,
            "inpaint_steps": 200,
            "figure_digits": 8,
        },
    },
}


def apply_override(settings: dict, assignment: str) -> None:
    """Apply ``KEY=VALUE`` (dotted keys, JSON values: ``rbm.epochs=10``, ``rbm_hidden=[20,50]``)."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} is not KEY=VALUE (e.g. rbm.epochs=10)")
    key, text = assignment.split("=", 1)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    node = settings
    parts = key.strip().split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"unknown setting {key!r}; see `rbmvae reproduce --show-settings`")
        node = node[part]
    if parts[-1] not in node and parts[0] not in ("rbm", "vae"):
        raise ConfigError(f"unknown setting {key!r}; see `rbmvae reproduce --show-settings`")
    node[parts[-1]] = value


def resolve_settings(profile: str, overrides: list[str] | None = None, **direct) -> dict:
    """The profile's settings with ``overrides`` (``KEY=VALUE``) and non-None ``direct`` values."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    settings = copy.deepcopy(PROFILES[profile])
    settings["profile"] = profile
    for assignment in overrides or []:
        apply_override(settings, assignment)
    for key, value in direct.items():
        if value is not None:
            settings[key] = value
    for key in ("rbm_hidden", "vae_latent"):
        values = settings[key]
        if not isinstance(values, list) or not all(isinstance(v, int) and v > 0 for v in values):
            raise ConfigError(f"{key} must be a list of positive integers, got {values!r}")
    return settings


# ------------------------------------------------------------------------------------------------
# training with reuse


def _model_specs(settings: dict) -> list[tuple[str, str, dict, dict]]:
    """``(name, kind, model_config, train_overrides)`` for every model of the study."""
    specs = []
    seed = settings["seed"]
    for hidden in settings["rbm_hidden"]:
        specs.append(
            (f"rbm-h{hidden}", "rbm", {"n_hidden": hidden}, {"seed": seed, **settings["rbm"]})
        )
    for latent in settings["vae_latent"]:
        specs.append(
            (
                f"vae-z{latent}",
                "vae",
                {"n_latent": latent, "n_hidden": settings["vae_hidden"]},
                {"seed": seed, **settings["vae"]},
            )
        )
    return specs


def _build(kind: str, n_visible: int, config: dict):
    from .models import MODEL_KINDS

    return MODEL_KINDS[kind](n_visible=n_visible, **config)


def train_or_reuse(
    name: str,
    kind: str,
    model_config: dict,
    train_overrides: dict,
    data: Dataset,
    directory: Path,
    device: torch.device,
    force: bool,
    progress: bool,
) -> tuple[torch.nn.Module, dict, str]:
    """Train the model into ``directory``, or reuse/resume what is there; returns
    ``(model, metadata, what_happened)`` with ``what_happened`` one of trained/reused/resumed."""
    from .training import TrainConfig, fit

    config = TrainConfig.defaults_for(kind, **train_overrides)
    model = _build(kind, data.n_pixels, model_config).to(device)
    wanted = {"config": model.config(), "train_config": config.to_dict(), "dataset": data.name}
    if not force and (directory / META_FILE).exists():
        try:
            meta = read_metadata(directory)
            have = {
                "config": meta.get("config"),
                "train_config": meta.get("train_config"),
                "dataset": meta.get("dataset", {}).get("name"),
            }
            if have == wanted and meta.get("epochs_completed") == config.epochs:
                loaded, meta = load_model(directory, device=device, kind=kind)
                return loaded, meta, "reused"
        except CheckpointError:
            pass
    resume = False
    if not force and (directory / STATE_FILE).exists():
        from .checkpoint import load_training_state

        try:
            _, info = load_training_state(directory)
            resume = (
                info.get("model_config") == wanted["config"]
                and info.get("train_config") == wanted["train_config"]
            )
        except CheckpointError:
            resume = False
    if not resume:
        for stale in (META_FILE, "model.safetensors", STATE_FILE, "evaluation.json"):
            (directory / stale).unlink(missing_ok=True)
    fit(
        model,
        data,
        config,
        out_dir=directory,
        resume=resume,
        progress=progress,
        metadata={"study_name": name},
    )
    loaded, meta = load_model(directory, device=device, kind=kind)
    return loaded, meta, "resumed" if resume else "trained"


# ------------------------------------------------------------------------------------------------
# figures


def _figure_digits(data: Dataset, n: int) -> torch.Tensor:
    """Indices of ``n`` test digits of different classes (the first of each label in order)."""
    picks = []
    for label in range(int(data.test_labels.max()) + 1):
        hits = (data.test_labels == label).nonzero().flatten()
        if hits.numel():
            picks.append(int(hits[0]))
        if len(picks) == n:
            break
    return torch.tensor(picks[:n])


def draw_figures(
    models: dict[str, torch.nn.Module],
    histories: dict[str, list[dict]],
    data: Dataset,
    settings: dict,
    figure_dir: Path,
) -> list[tuple[str, Path, str]]:
    """Every figure of the study; returns ``(section, path, caption)`` in report order."""
    from . import figures
    from .inpainting import inpaint
    from .masks import random_mask

    evaluation = settings["evaluation"]
    shape = data.image_shape
    device = next(iter(models.values())).weight.device if models else torch.device("cpu")
    ensure_writable_dir(figure_dir)
    out: list[tuple[str, Path, str]] = []
    picks = _figure_digits(data, evaluation["figure_digits"])
    images = data.test_images[picks].to(device)
    fill = data.train_images.mean(0).to(device)
    fractions = evaluation["fractions"]
    rbms = {k: m for k, m in models.items() if m.kind == "rbm"}
    vaes = {k: m for k, m in models.items() if m.kind == "vae"}

    for kind, group, samplers in (
        ("rbm", rbms, [None]),
        ("vae", vaes, ["pseudo-gibbs", "metropolis"]),
    ):
        for sampler in samplers:
            if not group:
                continue
            panels = {}
            for f_index, fraction in enumerate(fractions):
                mask = random_mask(
                    len(picks),
                    data.n_pixels,
                    fraction,
                    make_generator(settings["seed"] + 100 + f_index, device),
                    device,
                )
                for name, model in group.items():
                    filled = inpaint(
                        model,
                        images,
                        mask,
                        steps=evaluation["inpaint_steps"],
                        fill=fill,
                        generator=make_generator(settings["seed"] + 7, device),
                        sampler=sampler,
                    )
                    label = _label(name, model)
                    panels[(label, f"{round(100 * fraction)}% missing")] = figures.inpainting_panel(
                        images, mask, filled, shape
                    )
            suffix = "" if sampler is None else f"-{sampler}"
            path = figure_dir / f"{kind}-inpainting{suffix}.png"
            how = "clamped Gibbs" if sampler is None else sampler.replace("-", " ")
            figures.save_inpainting_comparison(
                panels,
                path,
                title=f"{kind.upper()} inpainting ({how}, {evaluation['inpaint_steps']} sweeps)",
            )
            caption = (
                f"{kind.upper()} inpainting by {how}: rows are models, columns the fraction of "
                "pixels removed at random; in each cell the same test digits as original, masked "
                "(missing pixels in blue) and inpainted (mean of p(pixel | observed) over the last "
                "half of the sweeps)."
            )
            out.append((kind, path, caption))

    for name, rbm in rbms.items():
        generator = make_generator(settings["seed"] + 11, device)
        path = figure_dir / f"{name}-samples.png"
        figures.save_image_grid(
            rbm.sample(36, steps=1000, generator=generator),
            path,
            shape,
            6,
            title=f"{_label(name, rbm)}: samples",
        )
        out.append(
            (
                "rbm",
                path,
                f"{_label(name, rbm)}: samples, p(v | h) after 1,000 Gibbs "
                "sweeps from the base rate.",
            )
        )
        path = figure_dir / f"{name}-filters.png"
        figures.save_filters(
            rbm,
            path,
            n=min(100, rbm.n_hidden),
            image_shape=shape,
            title=f"{_label(name, rbm)}: filters",
        )
        out.append(
            (
                "rbm",
                path,
                f"{_label(name, rbm)}: learned filters, the weights of up to "
                "100 hidden units as images (each scaled to its own range).",
            )
        )

    for name, vae in vaes.items():
        label = _label(name, vae)
        if vae.n_latent == 2:
            path = figure_dir / f"{name}-manifold.png"
            figures.save_manifold(
                vae,
                path,
                n=20,
                image_shape=shape,
                title=f"{label}: the latent manifold over [-3, 3]^2",
            )
            out.append(
                (
                    "vae",
                    path,
                    f"{label}: decoder means on a 20 x 20 grid of codes over "
                    "[-3, 3]^2 (the assignment's figure).",
                )
            )
        else:
            path = figure_dir / f"{name}-traversal.png"
            figures.save_traversal(
                vae,
                path,
                steps=13,
                image_shape=shape,
                title=f"{label}: traversal of each code unit",
            )
            out.append(
                (
                    "vae",
                    path,
                    f"{label}: one row per code unit, varied from -3 to 3 while the others stay 0.",
                )
            )
        path = figure_dir / f"{name}-latents.png"
        figures.latent_scatter(
            vae,
            data.test_images.to(device),
            data.test_labels,
            path,
            title=f"{label}: test set posterior means",
        )
        out.append(
            (
                "vae",
                path,
                f"{label}: posterior means of the test set coloured by label"
                + ("" if vae.n_latent == 2 else " (first two principal components)")
                + ".",
            )
        )
        with torch.no_grad():
            recon = vae.reconstruct(images)
            samples = vae.sample(36, generator=make_generator(settings["seed"] + 13, device))
        path = figure_dir / f"{name}-reconstructions.png"
        figures.save_image_grid(
            torch.cat([images, recon]),
            path,
            shape,
            len(picks),
            title=f"{label}: test digits (top) and reconstructions",
        )
        out.append(
            (
                "vae",
                path,
                f"{label}: test digits and their reconstructions (decoder "
                "mean at the posterior mean).",
            )
        )
        path = figure_dir / f"{name}-samples.png"
        figures.save_image_grid(samples, path, shape, 6, title=f"{label}: prior samples")
        out.append(("vae", path, f"{label}: decoder means of 36 codes drawn from the prior."))

    for kind, metric, ylabel in (
        ("rbm", "pseudo_log_likelihood", "pseudo-log-likelihood (nats)"),
        ("rbm", "reconstruction_error", "reconstruction error (MSE)"),
        ("rbm", "free_energy_gap", "free energy gap, test - train"),
        ("vae", "test_elbo", "test ELBO (nats)"),
    ):
        group = {n: histories[n] for n, m in models.items() if m.kind == kind}
        if group:
            path = figure_dir / f"{kind}-curve-{metric}.png"
            figures.save_training_curves(group, metric, path, ylabel)
            out.append((kind, path, f"Training curves: {ylabel} after each epoch."))
    return out


def _label(name: str, model) -> str:
    if model.kind == "rbm":
        return f"RBM, {model.n_hidden} hidden"
    return f"VAE, z = {model.n_latent}"
