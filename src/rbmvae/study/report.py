"""What the study reports: the summary and inpainting tables, ``report.html`` (through
:mod:`rbmvae.pages.html` and the explorer of :mod:`rbmvae.pages.explore`), the end-of-run text table and
small copies of the main figures for the README."""

from __future__ import annotations

import io
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .._version import __version__
from ..basics.atomic import ensure_writable_dir, write_bytes
from ..basics.errors import RbmvaeError
from ..data import Dataset
from ..evaluation.scoring import START_TEXT
from ..pages.explore import explorer_fragment
from ..pages.html import Figure, Section, Table, paragraph, preformatted, write_report
from ..samplers import SAMPLERS
from .figures import FIGURES_DIR, FigureEntry, sampler_name
from .settings import StudySettings

REPORT_FILE = "report.html"
OPTIMIZER_NAMES = {"adam": "Adam", "sgd": "SGD"}  # TrainConfig.optimizer as the report writes it


@dataclass
class StudyResult:
    """Everything one run of the study produced, keyed by model directory name."""

    settings: StudySettings
    data: Dataset
    device: torch.device
    models: dict[str, nn.Module] = field(default_factory=dict)
    metas: dict[str, dict] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)
    evaluations: dict[str, dict] = field(default_factory=dict)
    baselines: dict = field(default_factory=dict)
    figures: list[FigureEntry] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def history(self, name: str) -> list[dict]:
        return self.metas[name].get("history", [])

    def training_seconds(self, name: str) -> float:
        return sum(record.get("train_seconds", 0.0) for record in self.history(name))


def _value(figure) -> float | None:
    return figure.get("value") if isinstance(figure, dict) else figure


SUMMARY_COLUMNS = [
    "model",
    "epochs",
    "training s",
    "exact log p(v)",
    "AIS log p(v)",
    "AIS low",
    "AIS high",
    "ELBO",
    "IWAE log p(x)",
    "quadrature log p(x)",
    "active units",
]


def summary_rows(result: StudyResult) -> list[list]:
    """One row per model (``SUMMARY_COLUMNS``): label, epochs, training seconds, likelihoods."""
    rows = []
    for name, model in result.models.items():
        likelihood = result.evaluations[name].get("log_likelihood", {})
        ais = likelihood.get("ais", {})
        active = likelihood.get("active_units", {})
        rows.append(
            [
                model.label(),
                len(result.history(name)),
                result.training_seconds(name),
                _value(likelihood.get("exact", {}).get("mean_log_likelihood")),
                _value(ais.get("mean_log_likelihood")),
                _value(ais.get("mean_log_likelihood_low")),
                _value(ais.get("mean_log_likelihood_high")),
                _value(likelihood.get("elbo", {}).get("mean")),
                _value(likelihood.get("iwae", {}).get("mean_log_likelihood")),
                _value(likelihood.get("quadrature", {}).get("mean_log_likelihood")),
                f"{_value(active['count'])} of {active['of']}" if active else None,
            ]
        )
    return rows


def inpainting_rows(evaluations: dict, baselines: dict) -> tuple[list[str], list[list], set[int]]:
    """Columns, rows and the indices of baseline rows of the combined inpainting table."""
    entries = []
    for source in [baselines, *evaluations.values()]:
        entries.extend(source.get("inpainting", {}).get("rows", []))
    fractions = sorted({row["fraction"] for row in entries})
    columns = ["method"]
    for fraction in fractions:
        percent = f"{round(100 * fraction)}%"
        columns += [f"MSE {percent}", f"BCE {percent}", f"accuracy {percent}"]
    by_cell = {(row["method"], row["fraction"]): row for row in entries}
    rows, baseline_rows = [], set()
    for method in dict.fromkeys(row["method"] for row in entries):
        row = [method]
        for fraction in fractions:
            match = by_cell.get((method, fraction))
            figures = ("mse", "bce", "accuracy")
            row += [_value(match[key]) for key in figures] if match else [None] * 3
        if any(by_cell.get((method, f), {}).get("kind") == "baseline" for f in fractions):
            baseline_rows.add(len(rows))
        rows.append(row)
    return columns, rows, baseline_rows


def _count(n: int | None) -> str:
    return "all" if n is None else f"the first {n}"


def _summary_table(result: StudyResult) -> Table:
    evaluation = result.settings.evaluation
    note = (
        f"Log-likelihoods in nats per image on {_count(evaluation.likelihood_images)} (RBM) / "
        f"{_count(evaluation.iwae_images)} (VAE) test images, binarized stochastically with seed "
        f"{evaluation.seed}. AIS: {evaluation.ais_runs} runs, {evaluation.ais_betas} "
        "intermediate distributions; the interval is the log of the mean importance weight ± 3 "
        f"standard errors. IWAE: K = {evaluation.iwae_k}. Salakhutdinov & Murray (2008) report "
        "-86.34 nats for a 500-hidden RBM trained with CD-25 on the full MNIST training set."
    )
    return Table(
        "Models: training and log-likelihood", SUMMARY_COLUMNS, summary_rows(result), note=note
    )


def _inpainting_table(result: StudyResult) -> Table:
    evaluation = result.settings.evaluation
    columns, rows, baseline_rows = inpainting_rows(result.evaluations, result.baselines)
    inpainting = result.baselines.get("inpainting") or next(
        (e["inpainting"] for e in result.evaluations.values() if e.get("inpainting")), {}
    )
    classifier = inpainting.get("classifier", {})
    note = (
        f"The first {evaluation.inpaint_images} test images, the same random masks for every "
        f"row; {evaluation.inpaint_chains} chain(s) per image of {evaluation.inpaint_steps} "
        f"sampler sweeps, started at {START_TEXT[evaluation.inpaint_start]}, the last half "
        "averaged (Eq. 5.9). MSE per missing pixel; BCE in nats per missing pixel; accuracy on the "
        "inpainted images of the evaluation classifier, "
        f"{classifier.get('name', 'fitted on the training split')} trained on "
        f"{classifier.get('trained_on', 'the training split')} (test accuracy "
        f"{classifier.get('test_accuracy', float('nan')):.1%}; "
        f"{classifier.get('accuracy_on_complete_images', float('nan')):.1%} on these images "
        "complete). Baselines in italics."
    )
    return Table(
        "Inpainting: error on the missing pixels and accuracy of the evaluation classifier",
        columns,
        rows,
        note=note,
        baseline_rows=baseline_rows,
    )


def _method_text(settings: StudySettings) -> str:
    rbm = settings.training["rbm"]
    return f"{rbm.method.upper()}-{rbm.k} for {rbm.epochs} epochs"


def _inpainting_text(kind: str) -> str:
    return " and ".join(sampler_name(s, cited=True) for s in SAMPLERS[kind])


def _rbm_text(settings: StudySettings, data: Dataset) -> str:
    return (
        f"Binary RBMs trained by {_method_text(settings)}; inpainting by {_inpainting_text('rbm')}."
    )


def _vae_text(settings: StudySettings, data: Dataset) -> str:
    d, h = data.n_pixels, settings.vae_hidden
    optimizer = settings.training["vae"].optimizer
    return (
        f"{d}-{h}-z-{h}-{d} VAEs with Bernoulli decoders, trained with "
        f"{OPTIMIZER_NAMES.get(optimizer, optimizer)} on the negative ELBO; inpainting by "
        f"{_inpainting_text('vae')}."
    )


def _rbm_sizes(settings: StudySettings) -> str:
    hidden = ", ".join(map(str, settings.rbm_hidden))
    return f"RBMs with {hidden} hidden units, trained by {_method_text(settings)}"


def _vae_sizes(settings: StudySettings) -> str:
    latent = ", ".join(map(str, settings.vae_latent))
    return f"VAEs with z = {latent}, {settings.training['vae'].epochs} epochs"


# Per model kind: the report section's title, its text and the phrase describing the models.
SECTIONS: dict[str, tuple[str, Callable, Callable]] = {
    "rbm": ("Restricted Boltzmann Machines", _rbm_text, _rbm_sizes),
    "vae": ("Variational autoencoders", _vae_text, _vae_sizes),
}


def _data_and_settings(result: StudyResult) -> str:
    settings, describe = result.settings, result.data.describe()
    data_text = paragraph(
        f"Data set: {describe['name']} ({describe['n_train']:,} training and "
        f"{describe['n_test']:,} test images of {describe['image_shape'][0]} x "
        f"{describe['image_shape'][1]} pixels). Source: {describe['source']}. "
        f"Provenance and licence: {describe['provenance'] or 'as given by the user'}."
    )
    kinds = dict.fromkeys(model.kind for model in result.models.values())
    models = "; ".join(SECTIONS[kind][2](settings) for kind in kinds) or "no models"
    return (
        data_text
        + paragraph(
            f"Profile {settings.profile}, seed {settings.seed}. {models}. Every setting, as "
            "`rbmvae reproduce --show-settings` prints it:"
        )
        + "<details><summary>all settings (JSON)</summary>"
        + preformatted(json.dumps(settings.to_dict(), indent=2))
        + "</details>"
    )


def _explorer_section(result: StudyResult) -> Section:
    text = "Drag through the latent space; erase pixels and watch a chain fill them. "
    try:
        fragment = explorer_fragment(result.models, result.data)
    except RbmvaeError as error:  # e.g. no models: the rest of the report still stands
        return Section("Explore the models", paragraph(f"Not available: {error}"))
    return Section(
        "Explore the models", paragraph(text + "The models run in this page.") + fragment
    )


def write_study_report(out_dir: Path, result: StudyResult) -> Path:
    """``out_dir/report.html``: data and settings, the tables, one section per model kind with
    its figures, the explorer."""
    timing = Table(
        "Where the time went",
        ["step", "seconds"],
        [[step, seconds] for step, seconds in result.seconds.items()],
    )
    sections = [
        Section("Data set and settings", _data_and_settings(result)),
        Section("Results", tables=[_summary_table(result), _inpainting_table(result), timing]),
    ]
    figures: dict[str, list[Figure]] = {model.kind: [] for model in result.models.values()}
    for section, path, caption in result.figures:
        figures.setdefault(section, []).append(Figure(path, caption))
    for kind, shown in figures.items():
        title, text, _ = SECTIONS[kind]
        body = paragraph(text(result.settings, result.data))
        sections.append(Section(title, body, figures=shown))
    sections.append(_explorer_section(result))
    name = result.data.describe()["name"]
    title = f"rbmvae study: {name} ({result.settings.profile} profile)"
    subtitle = (
        f"rbmvae {__version__}, torch {torch.__version__}, Python {platform.python_version()}, "
        f"device {result.device}"
    )
    return write_report(out_dir / REPORT_FILE, title, subtitle, sections)


def format_summary(metrics: dict) -> str:
    """The end-of-run table for stdout (``metrics["summary"]`` of :func:`run_study`)."""
    columns = metrics["summary"]["columns"]
    rows = metrics["summary"]["rows"]

    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.2f}"
        return str(value)

    table = [columns] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in table
    ]
    return "\n".join(lines)


README_FIGURES = (
    "rbm-inpainting.png",
    "vae-inpainting-metropolis.png",
    "vae-z2-manifold.png",
    "vae-z2-latents.png",
    "rbm-h500-filters.png",
    "rbm-h500-samples.png",
)


def export_figures(run_dir: str | Path, target: str | Path, max_width: int = 720) -> list[Path]:
    """Small copies of the main figures (for the README), at most ``max_width`` pixels wide."""
    from PIL import Image  # Pillow comes with matplotlib; only this export needs it directly

    target = ensure_writable_dir(target)
    written = []
    for name in README_FIGURES:
        source = Path(run_dir) / FIGURES_DIR / name
        if not source.exists():
            continue
        image = Image.open(source)
        if image.width > max_width:
            height = round(image.height * max_width / image.width)
            image = image.resize((max_width, height), Image.LANCZOS)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG", optimize=True)
        write_bytes(target / name, buffer.getvalue())
        written.append(target / name)
    return written
