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
import platform
import time
from pathlib import Path

import torch

from . import __version__
from .atomic import ensure_writable_dir, write_text
from .checkpoint import META_FILE, STATE_FILE, load_model, read_metadata
from .data import Dataset, load_dataset
from .devices import make_generator, resolve_device
from .errors import CheckpointError, ConfigError

PROFILES: dict[str, dict] = {
    "quick": {
        "dataset": "mnist-sample",
        "seed": 0,
        "rbm_hidden": [20, 100, 500],
        "vae_latent": [2, 8, 16],
        "vae_hidden": 256,
        "rbm": {"epochs": 5, "method": "cd", "k": 1},
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
        "rbm": {"epochs": 30, "method": "cd", "k": 1},
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


# ------------------------------------------------------------------------------------------------
# evaluation with caching

EVALUATION_FILE = "evaluation.json"


def _evaluation_settings(settings: dict, kind: str) -> dict:
    evaluation = settings["evaluation"]
    return {
        "ais_runs": evaluation["ais_runs"],
        "ais_betas": evaluation["ais_betas"],
        "iwae_k": evaluation["iwae_k"],
        "fractions": tuple(evaluation["fractions"]),
        "n": evaluation["inpaint_images"],
        "ll_n": evaluation["iwae_images"] if kind == "vae" else evaluation["loglik_images"],
        "steps": evaluation["inpaint_steps"],
        "seed": evaluation["binarize_seed"],
    }


def evaluate_or_reuse(
    model, data: Dataset, directory: Path | None, settings: dict, force: bool
) -> dict:
    """The model's (or, with ``model=None``, the baselines') evaluation, cached in ``directory``."""
    from .evaluation import evaluate

    kind = model.kind if model is not None else "baselines"
    options = _evaluation_settings(settings, kind)
    key = {**options, "fractions": list(options["fractions"]), "dataset": data.name}
    path = directory / EVALUATION_FILE if directory is not None else None
    if path is not None and path.exists() and not force:
        try:
            cached = json.loads(path.read_text())
            if cached.get("reproduce_key") == key:
                return cached
        except (OSError, json.JSONDecodeError):
            pass
    report = evaluate(model, data, baselines=model is None, **options)
    report["reproduce_key"] = key
    if path is not None:
        ensure_writable_dir(path.parent)
        write_text(path, json.dumps(report, indent=2) + "\n")
    return report


# ------------------------------------------------------------------------------------------------
# the run


def _value(figure) -> float | None:
    return figure.get("value") if isinstance(figure, dict) else figure


def summary_rows(models: dict, metas: dict, evaluations: dict) -> list[list]:
    """One row per model: name, kind, size, epochs, training seconds, log-likelihood figures."""
    rows = []
    for name, model in models.items():
        meta = metas[name]
        history = meta.get("history", [])
        seconds = sum(r.get("train_seconds", 0.0) for r in history)
        likelihood = evaluations[name].get("log_likelihood", {})
        exact = _value(likelihood.get("exact", {}).get("mean_log_likelihood"))
        ais = likelihood.get("ais", {})
        iwae = _value(likelihood.get("iwae", {}).get("mean_log_likelihood"))
        elbo = _value(likelihood.get("elbo", {}).get("mean"))
        active = likelihood.get("active_units", {})
        rows.append(
            [
                _label(name, model),
                len(history),
                seconds,
                exact,
                _value(ais.get("mean_log_likelihood")),
                _value(ais.get("mean_log_likelihood_low")),
                _value(ais.get("mean_log_likelihood_high")),
                elbo,
                iwae,
                f"{_value(active['count'])} of {active['of']}" if active else None,
            ]
        )
    return rows


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
    "active units",
]


def inpainting_rows(evaluations: dict, baselines: dict) -> tuple[list[str], list[list], set[int]]:
    """Columns, rows and the indices of baseline rows of the combined inpainting table."""
    entries = []
    for source in [baselines, *evaluations.values()]:
        entries.extend(source.get("inpainting", {}).get("rows", []))
    methods = list(dict.fromkeys(row["method"] for row in entries))
    fractions = sorted({row["fraction"] for row in entries})
    columns = ["method"]
    for fraction in fractions:
        percent = f"{round(100 * fraction)}%"
        columns += [f"MSE {percent}", f"BCE {percent}", f"accuracy {percent}"]
    rows, baseline_rows = [], set()
    for method in methods:
        row = [method]
        kind = None
        for fraction in fractions:
            match = [r for r in entries if r["method"] == method and r["fraction"] == fraction]
            if match:
                kind = match[0]["kind"]
                row += [
                    _value(match[0]["mse"]),
                    _value(match[0]["bce"]),
                    _value(match[0]["accuracy"]),
                ]
            else:
                row += [None, None, None]
        if kind == "baseline":
            baseline_rows.add(len(rows))
        rows.append(row)
    return columns, rows, baseline_rows


def run_study(
    out_dir: str | Path,
    settings: dict,
    *,
    force: bool = False,
    progress: bool = True,
    device: str = "auto",
    data_dir: str | None = None,
) -> dict:
    """Train, evaluate, draw and report the whole study into ``out_dir``; returns metrics."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    out_dir = ensure_writable_dir(out_dir)
    device = resolve_device(device)
    write_text(out_dir / "settings.json", json.dumps(settings, indent=2) + "\n")
    data = load_dataset(settings["dataset"], data_dir)
    specs = _model_specs(settings)
    total = len(specs) * 2 + 3
    overall = tqdm(total=total, desc="reproduce", unit="task", disable=not progress, position=0)
    models, metas, evaluations, actions, timings = {}, {}, {}, {}, {}
    try:
        for name, kind, model_config, overrides in specs:
            overall.set_postfix_str(f"training {name}")
            t0 = time.perf_counter()
            model, meta, action = train_or_reuse(
                name,
                kind,
                model_config,
                overrides,
                data,
                out_dir / "models" / name,
                device,
                force,
                progress,
            )
            models[name], metas[name], actions[name] = model, meta, action
            timings[f"train {name}"] = time.perf_counter() - t0
            overall.update(1)
        for name, model in models.items():
            overall.set_postfix_str(f"evaluating {name}")
            t0 = time.perf_counter()
            evaluations[name] = evaluate_or_reuse(
                model, data, out_dir / "models" / name, settings, force
            )
            timings[f"evaluate {name}"] = time.perf_counter() - t0
            overall.update(1)
        overall.set_postfix_str("baselines")
        t0 = time.perf_counter()
        baselines = evaluate_or_reuse(None, data, out_dir / "baselines", settings, force)
        timings["baselines"] = time.perf_counter() - t0
        overall.update(1)
        overall.set_postfix_str("figures")
        t0 = time.perf_counter()
        histories = {name: meta.get("history", []) for name, meta in metas.items()}
        figure_list = draw_figures(models, histories, data, settings, out_dir / "figures")
        timings["figures"] = time.perf_counter() - t0
        overall.update(1)
        overall.set_postfix_str("report")
        metrics = {
            "format": "rbmvae-study",
            "package_version": __version__,
            "settings": settings,
            "dataset": data.describe(),
            "device": str(device),
            "models": {
                name: {
                    "kind": models[name].kind,
                    "config": models[name].config(),
                    "train_config": metas[name].get("train_config"),
                    "epochs": metas[name].get("epochs_completed"),
                    "training_seconds": {
                        "value": sum(r.get("train_seconds", 0.0) for r in histories[name]),
                        "unit": "s",
                    },
                    "history": histories[name],
                    "action": actions[name],
                    "evaluation": evaluations[name],
                }
                for name in models
            },
            "baselines": baselines,
            "figures": [
                {"section": s, "path": str(p.relative_to(out_dir)), "caption": c}
                for s, p, c in figure_list
            ],
            "seconds": timings,
        }
        write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        t0 = time.perf_counter()
        _write_study_report(
            out_dir, metrics, models, metas, evaluations, baselines, figure_list, data, settings
        )
        timings["report"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - started
        metrics["seconds"] = timings
        write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        overall.update(1)
    finally:
        overall.close()
    metrics["summary"] = {
        "columns": SUMMARY_COLUMNS,
        "rows": summary_rows(models, metas, evaluations),
    }
    return metrics


def _write_study_report(
    out_dir, metrics, models, metas, evaluations, baselines, figure_list, data, settings
) -> Path:
    from .report import Figure, Section, Table, paragraph, preformatted, write_report

    describe = data.describe()
    evaluation = settings["evaluation"]
    columns, rows, baseline_rows = inpainting_rows(evaluations, baselines)
    classifier = baselines.get("inpainting", {}).get("classifier", {})
    summary = Table(
        "Models: training and log-likelihood",
        SUMMARY_COLUMNS,
        summary_rows(models, metas, evaluations),
        note=(
            f"Log-likelihoods in nats per image on the first {evaluation['loglik_images']} "
            f"(RBM) / {evaluation['iwae_images']} (VAE) test images, binarized stochastically "
            f"with seed {evaluation['binarize_seed']}. AIS: {evaluation['ais_runs']} runs, "
            f"{evaluation['ais_betas']} intermediate distributions; the interval is ±3 standard "
            f"deviations of the importance weights, in log space. IWAE: K = "
            f"{evaluation['iwae_k']}. Salakhutdinov & Murray (2008) report -86.34 nats for a "
            "500-hidden RBM trained with CD-25 on the full MNIST training set."
        ),
    )
    inpainting = Table(
        "Inpainting: error on the missing pixels and accuracy of the evaluation classifier",
        columns,
        rows,
        note=(
            f"The first {evaluation['inpaint_images']} test images, the same random masks for "
            f"every row; {evaluation['inpaint_steps']} sampler sweeps from the training-mean "
            "fill, the last half averaged. MSE per missing pixel; BCE in nats per missing pixel; "
            f"accuracy on the inpainted images of the evaluation classifier, "
            f"{classifier.get('name', 'fitted on the training split')} trained on "
            f"{classifier.get('trained_on', 'the training split')} (test accuracy "
            f"{classifier.get('test_accuracy', float('nan')):.1%}; "
            f"{classifier.get('accuracy_on_complete_images', float('nan')):.1%} on these images "
            "complete). Baselines in italics."
        ),
        baseline_rows=baseline_rows,
    )
    timing = Table(
        "Where the time went",
        ["step", "seconds"],
        [[step, seconds] for step, seconds in metrics["seconds"].items()],
    )
    settings_text = (
        paragraph(
            f"Profile {settings['profile']}, seed {settings['seed']}. RBMs with "
            f"{', '.join(map(str, settings['rbm_hidden']))} hidden units, trained by "
            f"{_method_text(settings)}; VAEs with z = "
            f"{', '.join(map(str, settings['vae_latent']))}, {settings['vae']['epochs']} epochs. "
            "Every setting, as `rbmvae reproduce --show-settings` prints it:"
        )
        + "<details><summary>all settings (JSON)</summary>"
        + preformatted(json.dumps(settings, indent=2))
        + "</details>"
    )
    data_text = paragraph(
        f"Data set: {describe['name']} ({describe['n_train']:,} training and "
        f"{describe['n_test']:,} test images of {describe['image_shape'][0]} x "
        f"{describe['image_shape'][1]} pixels). Source: {describe['source']}. "
        f"Provenance and licence: {describe['provenance'] or 'as given by the user'}."
    )
    by_section = {"rbm": [], "vae": []}
    for section, path, caption in figure_list:
        by_section[section].append(Figure(path, caption))
    sections = [
        Section("Data set and settings", data_text + settings_text),
        Section("Results", tables=[summary, inpainting, timing]),
        Section(
            "Restricted Boltzmann Machines",
            paragraph(
                "Binary RBMs trained by "
                + _method_text(settings)
                + "; inpainting by clamped Gibbs sampling."
            ),
            figures=by_section["rbm"],
        ),
        Section(
            "Variational autoencoders",
            paragraph(
                f"784-{settings['vae_hidden']}-z-{settings['vae_hidden']}-784 VAEs with Bernoulli "
                "decoders, trained with Adam on the negative ELBO; inpainting by pseudo-Gibbs "
                "(Rezende et al. 2014) and Metropolis-within-Gibbs (Mattei & Frellsen 2018)."
            ),
            figures=by_section["vae"],
        ),
    ]
    try:
        from .explore import explorer_fragment

        sections.append(
            Section(
                "Explore the models",
                paragraph(
                    "Drag through the latent space; erase pixels and watch a chain fill them. "
                    "The models run in this page."
                )
                + explorer_fragment(models, data),
            )
        )
    except Exception as error:  # the report must not fail because of the interactive part
        sections.append(Section("Explore the models", paragraph(f"Not available: {error}")))
    title = f"rbmvae study: {describe['name']} ({settings['profile']} profile)"
    subtitle = (
        f"rbmvae {__version__}, torch {torch.__version__}, Python {platform.python_version()}, "
        f"device {metrics['device']}"
    )
    return write_report(out_dir / "report.html", title, subtitle, sections)


def _method_text(settings: dict) -> str:
    rbm = settings["rbm"]
    method = rbm.get("method", "cd").upper()
    return f"{method}-{rbm.get('k', 1)} for {rbm.get('epochs')} epochs"


def format_summary(metrics: dict) -> str:
    """The end-of-run table for stdout."""
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
    import io

    from PIL import Image

    from .atomic import write_bytes

    target = ensure_writable_dir(target)
    written = []
    for name in README_FIGURES:
        source = Path(run_dir) / "figures" / name
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
