"""The commands of the command line, one function each: read the arguments, call the library,
print what happened. Library logic lives in the library, not here."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

from ..basics.atomic import write_text
from ..basics.devices import module_device, resolve_device
from ..basics.errors import ConfigError
from ..basics.rng import make_generator
from ..data import (
    REMOTE_DATASETS,
    SAMPLE_NAME,
    dataset_for_model,
    image_shape_of,
    load_dataset,
    resolve_dataset_dir,
)
from ..data.masks import make_mask
from ..evaluation import EVALUATION_FILE, EvaluationSettings, evaluate, format_report
from ..evaluation.scoring import chain_starts, mean_fill, missing_pixel_errors
from ..models import RBM, VAE
from ..pages.figures import (
    latent_scatter,
    save_image_grid,
    save_inpainting_grid,
    save_manifold,
    save_traversal,
)
from ..samplers import inpaint
from ..training import TrainConfig, TrainingInterrupted, fit
from ..training.checkpoint import load_model, prepare_model_dir
from ..tuning.recipe import looks_like_file, read_recipe
from ..zoo import PREFIX, models_root, pretrained_cards, resolve_model_argument
from .options import RBM_OPTIONS, TRAINING_OPTIONS


def cmd_data_info(args) -> int:
    data = load_dataset(args.dataset or args.name, args.data_dir, download=False)
    print(json.dumps(data.describe(), indent=2))
    return 0


def cmd_data_download(args) -> int:
    name = args.dataset or args.name
    if name not in REMOTE_DATASETS:
        raise ConfigError(
            f"{name!r} is not downloadable; choose one of {', '.join(REMOTE_DATASETS)}"
        )
    directory = resolve_dataset_dir(name, args.data_dir, download=True)
    print(f"{name}: files in {directory}")
    return 0


def training_config(args, kind: str) -> TrainConfig:
    """The :class:`TrainConfig` named by ``rbmvae train``'s options: the kind's defaults, then
    ``--recipe``, then each option given, then ``--set FIELD=VALUE`` (JSON values)."""
    given = {
        field: getattr(args, field)
        for _, field, _, _ in TRAINING_OPTIONS + RBM_OPTIONS
        if getattr(args, field, None) is not None
    }
    for assignment in args.settings:
        field, _, text = assignment.partition("=")
        if not field or not _:
            raise ConfigError(f"--set {assignment!r} is not FIELD=VALUE (e.g. --set k_final=25)")
        try:
            given[field.strip()] = json.loads(text)
        except json.JSONDecodeError:
            given[field.strip()] = text
    recipe = _recipe_file(args, kind)
    if recipe is not None:  # a recipe file: its settings, then the options given
        return TrainConfig.defaults_for(kind, **{**recipe["settings"], **given})
    return TrainConfig.defaults_for(kind, recipe=getattr(args, "recipe", None), **given)


def _recipe_file(args, kind: str) -> dict | None:
    """The recipe file named by ``--recipe`` (checked for ``kind``), None for a named recipe."""
    recipe = getattr(args, "recipe", None)
    if recipe is None or not looks_like_file(recipe):
        return None
    return read_recipe(recipe, kind)


def _size(args, kind: str, option: str, name: str, default: int) -> int:
    """A model size: the option given, else the recipe file's, else ``default``."""
    if getattr(args, option) is not None:
        return getattr(args, option)
    recipe = _recipe_file(args, kind)
    return (recipe or {}).get("model", {}).get(name, default)


def _train(args, build, kind: str, default_out: str) -> int:
    device = resolve_device(args.device)
    config = training_config(args, kind)
    out = prepare_model_dir(args.out or default_out, args.resume, args.force)
    data = load_dataset(args.dataset, args.data_dir)
    model = build(n_visible=data.n_pixels).to(device)
    try:
        history = fit(
            model,
            data,
            config,
            out_dir=out,
            resume=args.resume,
            progress=not args.quiet,
            metadata={"command": "rbmvae " + " ".join(sys.argv[1:])},
        )
    except TrainingInterrupted as stop:
        print(f"rbmvae: {stop}", file=sys.stderr)
        return 130
    last = history[-1] if history else {}
    seconds = sum(r.get("train_seconds", 0.0) for r in history)
    summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k not in ("epoch",))
    print(f"trained {kind} for {len(history)} epochs ({seconds:.1f} s of training) -> {out}")
    if summary:
        print(f"last epoch: {summary}")
    return 0


def cmd_train_rbm(args) -> int:
    hidden = _size(args, "rbm", "hidden", "n_hidden", 500)
    return _train(args, partial(RBM, n_hidden=hidden), "rbm", f"runs/rbm-h{hidden}")


def cmd_train_vae(args) -> int:
    hidden = _size(args, "vae", "hidden", "n_hidden", 256)
    latent = _size(args, "vae", "latent", "n_latent", 2)
    build = partial(VAE, n_hidden=hidden, n_latent=latent)
    return _train(args, build, "vae", f"runs/vae-z{latent}")


def _load(args):
    directory, _ = resolve_model_argument(args.model)
    return load_model(directory, device=resolve_device(args.device))


def _load_vae(args, command: str):
    """The VAE in ``--model``; a model of another kind is refused naming the command."""
    model, meta = _load(args)
    if not isinstance(model, VAE):
        raise ConfigError(
            f"{args.model}: holds an {model.label()}; {command} needs a VAE "
            "(train one with `rbmvae train vae`)"
        )
    return model, meta


def _data_for(args, meta: dict):
    name = args.dataset
    if name is None and args.data_dir is None and str(args.model).startswith(PREFIX):
        name = SAMPLE_NAME  # offline: the embedded sample holds MNIST's whole test set
    return dataset_for_model(meta, name, args.data_dir, model_dir=args.model)


def cmd_inpaint(args) -> int:
    model, meta = _load(args)
    data = _data_for(args, meta)
    device = module_device(model)
    if args.n > data.test_images.shape[0]:
        raise ConfigError(f"--n {args.n} exceeds the {data.test_images.shape[0]} test images")
    generator = make_generator(args.seed, device)
    images = data.test_images[: args.n].to(device)
    mask = make_mask(args.missing, args.n, data.image_shape, generator, device)
    fill = chain_starts(images, mask, data.train_images, args.chains, args.start)
    filled = inpaint(
        model,
        images,
        mask,
        steps=args.steps,
        fill=fill,
        generator=generator,
        sampler=args.sampler,
        chains=args.chains,
    )
    result = {
        "model": str(args.model),
        "kind": model.kind,
        "missing": args.missing,
        "n_images": args.n,
        "steps": args.steps,
        "chains": args.chains,
        "start": args.start,
        "missing_pixels": int(mask.sum()),
        "mse_model": missing_pixel_errors(filled, images, mask)[0],
        "mse_training_mean_fill": missing_pixel_errors(
            mean_fill(images, mask, data.train_images), images, mask
        )[0],
        "out": str(args.out),
    }
    title = f"{model.label()}: {args.missing} missing, {args.steps} steps"
    save_inpainting_grid(images, mask, filled, args.out, data.image_shape, title=title)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{args.n} test images, {args.missing} missing: squared error on missing pixels "
            f"{result['mse_model']:.4f} (training-mean fill {result['mse_training_mean_fill']:.4f})"
            f" -> {args.out}"
        )
    return 0


def cmd_sample(args) -> int:
    model, meta = _load(args)
    generator = make_generator(args.seed, module_device(model))
    images = model.sample(args.n, steps=args.steps, generator=generator)
    save_image_grid(images, args.out, image_shape_of(meta), title=f"{model.label()}: samples")
    print(f"{args.n} samples -> {args.out}")
    return 0


def cmd_manifold(args) -> int:
    model, meta = _load_vae(args, "manifold")
    if model.n_latent != 2:
        raise ConfigError(
            f"{args.model}: the manifold needs a VAE with 2 latent units, this one has "
            f"{model.n_latent}; use `rbmvae traverse --model {args.model}` instead"
        )
    title = f"{model.label()}: decoder over a {args.n} x {args.n} grid of z"
    save_manifold(model, args.out, args.n, tuple(args.range), image_shape_of(meta), title=title)
    low, high = args.range
    print(f"{args.n} x {args.n} manifold over z in [{low:g}, {high:g}]^2 -> {args.out}")
    return 0


def cmd_traverse(args) -> int:
    model, meta = _load_vae(args, "traverse")
    title = f"{model.label()}: one code unit varied per row"
    save_traversal(
        model, args.out, args.steps, tuple(args.range), image_shape_of(meta), title=title
    )
    low, high = args.range
    print(f"{model.n_latent} code units x {args.steps} values in [{low:g}, {high:g}] -> {args.out}")
    return 0


def cmd_latents(args) -> int:
    model, meta = _load_vae(args, "latents")
    data = _data_for(args, meta)
    n = data.test_images.shape[0] if args.n is None else args.n
    if n > data.test_images.shape[0]:
        raise ConfigError(f"--n {n} exceeds the {data.test_images.shape[0]} test images")
    title = f"{model.label()}: posterior means of {n} test images"
    latent_scatter(model, data.test_images[:n], data.test_labels[:n], args.out, title=title)
    print(f"latent means of {n} test images -> {args.out}")
    return 0


def evaluation_settings(args) -> EvaluationSettings:
    """The :class:`EvaluationSettings` named by ``rbmvae evaluate``'s options."""
    return EvaluationSettings(
        seed=args.seed,
        likelihood_images=args.likelihood_images,
        iwae_images=args.likelihood_images,
        ais_runs=args.ais_runs,
        ais_betas=args.ais_betas,
        iwae_k=args.iwae_k,
        fractions=args.inpaint,
        inpaint_images=args.inpaint_images,
        inpaint_steps=args.inpaint_steps,
        k_neighbours=args.k_neighbours,
        baselines=args.baselines or not args.no_baselines,
        inpaint_chains=args.inpaint_chains,
        inpaint_start=args.inpaint_start,
    )


def cmd_evaluate(args) -> int:
    if args.model is None and not args.baselines:
        raise ConfigError(
            "give --model DIR to evaluate a model, or --baselines for the baseline rows alone"
        )
    settings = evaluation_settings(args)
    if args.model is None:
        device = resolve_device(args.device)
        name = args.dataset or (None if args.data_dir is not None else "mnist-sample")
        model, data = None, load_dataset(name, args.data_dir)
    else:
        model, meta = _load(args)
        data = _data_for(args, meta)
        device = module_device(model)
    model_dir = None if args.model is None else str(args.model)
    report = evaluate(model, data, settings, model_dir=model_dir, device=device)
    text = json.dumps(report, indent=2)
    # a shipped model's directory is part of the installation: its card holds its figures
    keep = args.model is not None and not resolve_model_argument(args.model)[1]
    if keep:
        write_text(Path(args.model) / EVALUATION_FILE, text + "\n")
    if args.json:
        print(text)
    else:
        print(format_report(report))
        if keep:
            print(f"results -> {Path(args.model) / EVALUATION_FILE}")
    return 0


def cmd_explore(args) -> int:
    from ..pages.explore import describe, write_explorer  # heavy: the page builder and its assets

    if args.pretrained:
        info = write_explorer(
            models_root(), args.out, n_digits=args.digits, dataset=SAMPLE_NAME, title="pretrained"
        )
    else:
        info = write_explorer(args.run, args.out, n_digits=args.digits)
    print(f"explorer: {describe(info)} -> {args.out}")
    return 0


def _card_line(card: dict) -> str:
    head = card["headline"]
    value = "unreliable" if head["value"] is None else f"{head['value']:.2f}"
    return (
        f"pretrained:{card['name']:<9} {card['label']:<28} {value:>10} nats   "
        f"{head['estimator']}; {'; '.join(head['checks'])}"
    )


def cmd_pretrained(args) -> int:
    cards = pretrained_cards()
    if args.json:
        print(json.dumps(cards, indent=2))
        return 0
    if not cards:
        print("no trained models are shipped with this installation")
        return 0
    origin = cards[0]["provenance"]
    print(
        f"test log-likelihood on MNIST's 10,000 test digits (binarized, seed 0); trained by "
        f"`{origin['command']}` at commit {origin['commit'][:12]}"
    )
    for card in cards:
        print(_card_line(card))
    return 0


def cmd_reproduce(args) -> int:
    from ..study import export_figures, format_summary, resolve_settings, run_study  # heavy

    dataset = args.dataset
    if dataset is None and args.data_dir is not None:
        dataset = "dir"  # only --data-dir: the four files in that directory
    settings = resolve_settings(args.profile, args.set, dataset=dataset)
    if args.show_settings:
        shown = settings.to_dict() if hasattr(settings, "to_dict") else settings
        print(json.dumps(shown, indent=2))
        return 0
    out = Path(args.out or f"runs/{args.profile}")
    metrics = run_study(
        out,
        settings,
        force=args.force,
        progress=not args.quiet,
        device=args.device,
        data_dir=args.data_dir,
        jobs=args.jobs,
    )
    print(format_summary(metrics))
    print(
        f"{len(metrics['figures'])} figures, metrics.json and report.html -> {out} "
        f"({metrics['seconds']['total']:.1f} s)"
    )
    if args.export_figures:
        written = export_figures(out, args.export_figures)
        print(f"{len(written)} small figures -> {args.export_figures}")
    return 0


def cmd_results(args) -> int:
    from ..study.results import check_tables, load_runs, save_metrics_copy, write_tables
    from ..study.tables import TABLES

    runs = load_runs(args.runs)
    if args.copy:
        if len(runs) != 1:
            raise ConfigError(f"--copy takes one run, got {len(runs)}")
        print(f"metrics -> {save_metrics_copy(next(iter(runs.values())), args.copy)}")
    for path in args.write:
        update = write_tables(path, runs)
        left = f"; left as they were (run not given): {', '.join(update.left)}" * bool(update.left)
        print(f"{path}: {len(update.changed)} of {len(update.written)} block(s) changed{left}")
    for path in args.check:
        update = check_tables(path, runs)
        print(f"{path}: {len(update.written)} block(s) up to date")
    if args.write or args.check or args.copy:
        return 0
    tables = [args.table] if args.table else list(TABLES)
    for name, metrics in runs.items():
        for table in tables:
            print(f"<!-- rbmvae:results {table} {name} -->\n{TABLES[table](metrics)}")
            print("<!-- /rbmvae:results -->\n")
    return 0
