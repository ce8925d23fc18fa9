"""An interactive explorer: one offline HTML page that runs the trained models in the browser.

The page holds the models' weights (float32, base64; float16 for the largest matrices when the
page would otherwise pass the size budget) and plain JavaScript (no framework, no network) that
runs them:

- the latent space of a VAE with a 2-D code as a pad over [-3, 3]^2, the decoded manifold drawn
  faintly beneath the test set's posterior means (coloured by label); the pointer's position is
  decoded live. VAEs with larger codes get one slider per code unit.
- an inpainting canvas: a test digit (or one drawn by hand), pixels hidden with the mouse or by a
  random or half mask, filled step by step by clamped Gibbs sampling in an RBM (Eq. 5.2) or
  pseudo-Gibbs sampling in a VAE (Eq. 5.3); observed pixels never change.

:func:`explorer_fragment` returns an HTML fragment that can sit in any page, several times over:
its elements are found by classes carrying ``id_prefix`` inside the fragment's own root, its CSS
is scoped to that root, and its only global is ``window.rbmvaeExplorer``.

Where things are: :mod:`.payload` (weights, digits, the latent pad's data, the size budget),
:mod:`.page` (the fragment and the page from the data files ``explore.html``, ``explore.css``
and the ``*.js`` parts); this module loads a run directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...basics.atomic import write_text
from ...basics.errors import ConfigError, DataError
from ...data import DATASET_NAMES, load_dataset
from ...training.checkpoint import META_FILE, load_model
from .page import build_explorer, build_page, explorer_fragment, explorer_page
from .payload import MAX_PAGE_BYTES, PRECISIONS, ExplorerInfo


def find_run_models(run_dir: str | os.PathLike) -> dict[str, Path]:
    """Model directories of a run: ``RUN/models/NAME`` (or ``RUN/NAME``) holding a checkpoint."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"{run}: run directory not found; give the output of rbmvae reproduce")
    base = run / "models" if (run / "models").is_dir() else run
    found = {
        child.name: child
        for child in sorted(base.iterdir())
        if child.is_dir() and (child / META_FILE).is_file()
    }
    if not found:
        raise ConfigError(
            f"{run}: no trained models (looked for models/NAME/{META_FILE}); "
            "run rbmvae reproduce first or point --run at its output directory"
        )
    return found


def _run_data(metas: list[dict], dataset: str | None = None):
    """The test set the run's models were trained on (or ``dataset``) and None, or None and why
    it is missing."""
    if dataset is not None:
        return load_dataset(dataset), None
    for meta in metas:
        described = meta.get("dataset") or {}
        name = described.get("name")
        source = described.get("source")
        try:
            if name in DATASET_NAMES:
                return load_dataset(name), None
            if source and Path(source).is_dir():
                return load_dataset(None, source), None
        except DataError as error:
            return None, f"The test digits could not be loaded ({error}); draw your own."
    return None, "The models' data set is unknown, so there are no test digits; draw your own."


def write_explorer(
    run_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    n_digits: int = 30,
    max_bytes: int = MAX_PAGE_BYTES,
    dataset: str | None = None,
    title: str | None = None,
) -> ExplorerInfo:
    """Load every model of ``run_dir`` and write the explorer page to ``out_path`` atomically;
    its test digits come from the models' data set, or from ``dataset`` when given; ``title``
    names the models in the page (default: the run directory's name)."""
    directories = find_run_models(run_dir)
    models, metas = {}, []
    for name, directory in directories.items():
        model, meta = load_model(directory, device="cpu")
        models[name] = model
        metas.append(meta)
    data, problem = _run_data(metas, dataset)
    if data is not None:
        n_pixels = next(iter(models.values())).n_visible
        if data.n_pixels != n_pixels:
            data = None
            problem = "The data set does not match the models' image size; draw your own digits."
    page, info = build_page(
        models,
        data,
        n_digits,
        subtitle=f"Run {title or Path(run_dir).name}: the models run in this page, offline."
        + (f" {problem}" if problem else ""),
        max_bytes=max_bytes,
    )
    write_text(out_path, page)
    if problem:
        info.notes.append(problem)
    return info


def describe(info: ExplorerInfo) -> str:
    """One line for the command line: models, size, what was shrunk or dropped."""
    parts = [f"{len(info.models)} models ({', '.join(info.models)}), {info.n_bytes / 1e6:.2f} MB"]
    if info.float16:
        parts.append(f"float16 matrices in {', '.join(info.float16)}")
    if info.dropped:
        parts.append(f"left out: {', '.join(info.dropped)}")
    return "; ".join(parts)


__all__ = [
    "MAX_PAGE_BYTES",
    "PRECISIONS",
    "ExplorerInfo",
    "build_explorer",
    "build_page",
    "describe",
    "explorer_fragment",
    "explorer_page",
    "find_run_models",
    "write_explorer",
]
