"""Every figure of the study, drawn by one function per model kind chosen from a registry.

The inpainting figures show the very masks that were scored: the rows of
:func:`rbmvae.evaluation.scoring.evaluation_masks` (same count, fractions and seed as the evaluation) that
belong to the digits on show. Every other random draw comes from a named stream of the study's
seed (:func:`rbmvae.basics.rng.make_generator`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..basics.atomic import ensure_writable_dir
from ..basics.rng import make_generator
from ..data import Dataset
from ..evaluation.scoring import START_TEXT, chain_starts, table_masks
from ..pages import figures as plots
from ..samplers import SAMPLERS, inpaint
from .settings import StudySettings

# How the report names each inpainting sampler of ``samplers.SAMPLERS`` (short, then cited).
SAMPLER_NAMES = {
    "gibbs": ("clamped Gibbs", "clamped Gibbs sampling (Eq. 5.2)"),
    "pseudo-gibbs": ("pseudo-Gibbs", "pseudo-Gibbs sampling (Rezende et al. 2014)"),
    "metropolis": (
        "Metropolis-within-Gibbs",
        "Metropolis-within-Gibbs sampling (Mattei & Frellsen 2018)",
    ),
}

FIGURES_DIR = "figures"  # the run directory's folder of figures

FigureEntry = tuple[str, Path, str]  # (report section: the model kind, file, caption)


def sampler_name(sampler: str, cited: bool = False) -> str:
    """The sampler's name in figure titles (``cited``: with its reference, for the report)."""
    names = SAMPLER_NAMES.get(sampler, (sampler.replace("-", " "),) * 2)
    return names[1] if cited else names[0]


def figure_digits(labels: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of ``n`` of ``labels`` (N,): the first of each class in label order, then the
    earliest remaining ones when there are fewer classes than ``n``. Shape: (min(n, N),)."""
    picks = []
    for label in torch.unique(labels).tolist():
        if len(picks) < n:
            picks.append(int((labels == label).nonzero()[0]))
    rest = [i for i in range(labels.numel()) if i not in picks]
    return torch.tensor((picks + rest)[:n], dtype=torch.long)


@dataclass
class FigureContext:
    """What every figure function needs: the data, the settings, where to draw and write, and
    the digits on show (``picks``: indices into the scored test images; ``images`` (n, D))."""

    data: Dataset
    settings: StudySettings
    device: torch.device
    figure_dir: Path
    picks: torch.Tensor
    images: torch.Tensor

    @classmethod
    def create(cls, data, settings, device, figure_dir) -> FigureContext:
        """The digits on show are among the scored ones, as the scoring saw them: binarized with
        the evaluation's seed, unless the evaluation uses grey evidence."""
        evaluation = settings.evaluation
        scored = evaluation.inpaint_images
        picks = figure_digits(data.test_labels[:scored], settings.figure_digits)
        if evaluation.inpaint_evidence == "binary":
            images = data.binarized_test_images(scored, evaluation.seed)[picks].to(device)
        else:
            images = data.test_images[picks].to(device)
        return cls(data, settings, device, ensure_writable_dir(figure_dir), picks, images)

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.image_shape

    def generator(self, purpose: str, *index) -> torch.Generator:
        return make_generator(self.settings.seed, self.device, purpose, *index)


def figure_masks(context: FigureContext) -> list[tuple[str, torch.Tensor]]:
    """``(column label, mask)`` per scored mask (each random fraction, then each half of
    ``halves``): the rows of the digits on show of the masks the inpainting table scored
    (:func:`rbmvae.evaluation.scoring.table_masks`). Shape: each mask (n, D)."""
    evaluation = context.settings.evaluation
    masks = table_masks(
        evaluation.inpaint_images,
        context.data,
        evaluation.fractions,
        evaluation.halves,
        evaluation.seed,
        context.device,
    )
    picks = context.picks.to(context.device)
    return [(_column(label), mask[picks]) for label, _, mask in masks]


def _column(label: str) -> str:
    return f"{label} missing"


def _inpainting_figures(context: FigureContext, kind: str, group: dict) -> list[FigureEntry]:
    """One comparison per sampler of ``kind``: rows are the models, columns the fractions."""
    evaluation = context.settings.evaluation
    train_images = context.data.train_images.to(context.device)
    chains = evaluation.inpaint_chains
    masks = figure_masks(context)
    samplers = SAMPLERS[kind]
    out = []
    for sampler in samplers:
        panels = {}
        for column, mask in masks:
            # the chains start as the table's do
            fill = chain_starts(
                context.images, mask, train_images, chains, evaluation.inpaint_start
            )
            for model in group.values():
                filled = inpaint(
                    model,
                    context.images,
                    mask,
                    steps=evaluation.inpaint_steps,
                    fill=fill,
                    generator=context.generator("inpainting-figure", sampler, column),
                    sampler=sampler,
                    chains=chains,
                )
                panels[(model.label(), column)] = plots.inpainting_panel(
                    context.images, mask, filled, context.shape
                )
        if not panels:
            continue
        suffix = f"-{sampler}" if len(samplers) > 1 else ""
        path = context.figure_dir / f"{kind}-inpainting{suffix}.png"
        how = sampler_name(sampler)
        plots.save_inpainting_comparison(
            panels,
            path,
            title=f"{kind.upper()} inpainting ({how}, {chains} x {evaluation.inpaint_steps} "
            "sweeps)",
        )
        caption = (
            f"{kind.upper()} inpainting by {how}: rows are models, columns the fraction of "
            "pixels removed at random, then the halves removed (the masks of the inpainting "
            "table, on the digits as scored); in each cell the same "
            "test digits as original, masked (missing pixels in blue) and inpainted (mean of "
            f"p(pixel | observed) over the last half of the sweeps of {chains} chain"
            f"{'s' * (chains > 1)} per digit, started at {START_TEXT[evaluation.inpaint_start]})."
        )
        out.append((kind, path, caption))
    return out


def _rbm_figures(context: FigureContext, name: str, rbm: nn.Module) -> list[FigureEntry]:
    """Samples after 1,000 Gibbs sweeps and the learned filters."""
    label = rbm.label()
    samples = context.figure_dir / f"{name}-samples.png"
    plots.save_image_grid(
        rbm.sample(36, steps=1000, generator=context.generator("samples", name)),
        samples,
        context.shape,
        6,
        title=f"{label}: samples",
    )
    filters = context.figure_dir / f"{name}-filters.png"
    plots.save_filters(
        rbm,
        filters,
        n=min(100, rbm.n_hidden),
        image_shape=context.shape,
        title=f"{label}: filters",
    )
    return [
        (
            "rbm",
            samples,
            f"{label}: samples, p(v | h) after 1,000 Gibbs sweeps from the base rate.",
        ),
        (
            "rbm",
            filters,
            f"{label}: learned filters, the weights of up to 100 hidden units as images (each "
            "scaled to its own range).",
        ),
    ]


def _vae_code_figure(context: FigureContext, name: str, vae: nn.Module) -> FigureEntry:
    """The manifold of a 2-D code, else a traversal of each code unit."""
    label = vae.label()
    if vae.n_latent == 2:
        path = context.figure_dir / f"{name}-manifold.png"
        plots.save_manifold(
            vae,
            path,
            n=20,
            image_shape=context.shape,
            title=f"{label}: the latent manifold over [-3, 3]^2",
        )
        caption = (
            f"{label}: decoder means on a 20 x 20 grid of codes over [-3, 3]^2 (the "
            "assignment's figure)."
        )
        return "vae", path, caption
    path = context.figure_dir / f"{name}-traversal.png"
    plots.save_traversal(
        vae,
        path,
        steps=13,
        image_shape=context.shape,
        title=f"{label}: traversal of each code unit",
    )
    caption = f"{label}: one row per code unit, varied from -3 to 3 while the others stay 0."
    return "vae", path, caption


def _vae_figures(context: FigureContext, name: str, vae: nn.Module) -> list[FigureEntry]:
    """Code figure, posterior means of the test set, reconstructions and prior samples."""
    label = vae.label()
    out = [_vae_code_figure(context, name, vae)]
    latents = context.figure_dir / f"{name}-latents.png"
    plots.latent_scatter(
        vae,
        context.data.test_images.to(context.device),
        context.data.test_labels,
        latents,
        title=f"{label}: test set posterior means",
    )
    projection = "" if vae.n_latent == 2 else " (first two principal components)"
    out.append(
        ("vae", latents, f"{label}: posterior means of the test set coloured by label{projection}.")
    )
    with torch.no_grad():
        recon = vae.reconstruct(context.images)
        samples = vae.sample(36, generator=context.generator("samples", name))
    reconstructions = context.figure_dir / f"{name}-reconstructions.png"
    plots.save_image_grid(
        torch.cat([context.images, recon]),
        reconstructions,
        context.shape,
        len(context.images),
        title=f"{label}: test digits (top) and reconstructions",
    )
    out.append(
        (
            "vae",
            reconstructions,
            f"{label}: test digits and their reconstructions (decoder mean at the posterior mean).",
        )
    )
    path = context.figure_dir / f"{name}-samples.png"
    plots.save_image_grid(samples, path, context.shape, 6, title=f"{label}: prior samples")
    out.append(("vae", path, f"{label}: decoder means of 36 codes drawn from the prior."))
    return out


# The figures of one model, by kind.
MODEL_FIGURES: dict[str, Callable[[FigureContext, str, nn.Module], list[FigureEntry]]] = {
    "rbm": _rbm_figures,
    "vae": _vae_figures,
}

# The training curves of each kind: (history metric, axis label).
CURVES: dict[str, tuple[tuple[str, str], ...]] = {
    "rbm": (
        ("pseudo_log_likelihood", "pseudo-log-likelihood (nats)"),
        ("reconstruction_error", "reconstruction error (MSE)"),
        ("free_energy_gap", "free energy gap, test - train"),
    ),
    "vae": (("test_elbo", "test ELBO (nats)"),),
}


def _curve_figures(context: FigureContext, kind: str, histories: dict) -> list[FigureEntry]:
    """One figure per metric of ``CURVES[kind]``; ``histories`` maps model labels to histories."""
    out = []
    for metric, ylabel in CURVES.get(kind, ()):
        path = context.figure_dir / f"{kind}-curve-{metric}.png"
        plots.save_training_curves(histories, metric, path, ylabel)
        out.append((kind, path, f"Training curves: {ylabel} after each epoch."))
    return out


def draw_figures(
    models: dict[str, nn.Module],
    histories: dict[str, list[dict]],
    data: Dataset,
    settings: StudySettings,
    figure_dir: str | Path,
    device: torch.device | str = "cpu",
) -> list[FigureEntry]:
    """Every figure of the study, kind by kind: inpainting comparisons, each model's own
    figures (``MODEL_FIGURES``), training curves. ``models`` and ``histories`` are keyed by the
    model's directory name. Returns ``(section, path, caption)`` in report order."""
    context = FigureContext.create(data, settings, torch.device(device), Path(figure_dir))
    groups: dict[str, dict[str, nn.Module]] = {}
    for name, model in models.items():
        groups.setdefault(model.kind, {})[name] = model
    out: list[FigureEntry] = []
    for kind, group in groups.items():
        out += _inpainting_figures(context, kind, group)
        for name, model in group.items():
            out += MODEL_FIGURES[kind](context, name, model)
        out += _curve_figures(
            context, kind, {model.label(): histories[name] for name, model in group.items()}
        )
    return out
