"""The ``rbmvae`` command line: a thin layer over the Python API.

Every failure the user can cause prints one line, ``rbmvae: error: ...``, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from . import __version__
from .errors import ConfigError, RbmvaeError

# ------------------------------------------------------------------------------------------------
# argument types


def _bounded_number(convert, noun: str, accept, rule: str, name: str):
    """An argparse type: ``convert`` the text, then require ``accept(value)``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{rule}, got {value}")
        return value

    parse.__name__ = name
    return parse


positive_int = _bounded_number(
    int, "an integer", lambda v: v > 0, "must be a positive integer", "positive_int"
)
nonnegative_int = _bounded_number(
    int, "an integer", lambda v: v >= 0, "must be >= 0", "nonnegative_int"
)
positive_float = _bounded_number(
    float, "a number", lambda v: v > 0, "must be positive", "positive_float"
)
nonnegative_float = _bounded_number(
    float, "a number", lambda v: v >= 0, "must be >= 0", "nonnegative_float"
)


def mask_spec(text: str) -> str:
    """A missing-pixel spec: a fraction in [0, 1), ``square:SIZE`` or ``half:SIDE``."""
    if text.startswith(("square:", "half:")):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a fraction, square:SIZE or half:top|bottom|left|right"
        ) from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"missing fraction {value} is outside [0, 1)")
    return text


class Parser(argparse.ArgumentParser):
    """argparse, with errors on one line and exit status 2."""

    def error(self, message: str):  # noqa: D401
        command = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        self.exit(2, f"rbmvae: error: {command}{message} (see {self.prog} --help)\n")


def _add_data_options(
    parser: argparse.ArgumentParser, default: str | None = "mnist-sample"
) -> None:
    from .data import DATASET_NAMES

    fallback = default or "the model's data set"
    parser.add_argument(
        "--dataset",
        default=None,
        metavar="NAME",
        help=f"data set: {', '.join(DATASET_NAMES)} (default: {fallback}; "
        "with only --data-dir, the files in that directory)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="directory holding the four standard files (or where to download them); "
        "also RBMVAE_DATA_DIR",
    )


def _add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)"
    )


def _add_training_options(parser: argparse.ArgumentParser, kind: str) -> None:
    from .training import TrainConfig

    defaults = TrainConfig.defaults_for(kind)
    parser.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=defaults.learning_rate,
        help=f"learning rate (default: {defaults.learning_rate})",
    )
    parser.add_argument(
        "--weight-decay",
        type=nonnegative_float,
        default=defaults.weight_decay,
        help=f"L2 penalty on weight matrices (default: {defaults.weight_decay})",
    )
    parser.add_argument(
        "--lr-schedule",
        choices=("constant", "linear"),
        default=defaults.lr_schedule,
        help=f"learning-rate schedule (default: {defaults.lr_schedule})",
    )
    parser.add_argument(
        "--binarize",
        choices=("none", "threshold", "stochastic"),
        default=defaults.binarize,
        help="training pixels: grey values as probabilities (none), >0.5, or a "
        f"fresh Bernoulli draw each epoch (stochastic) (default: {defaults.binarize})",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", metavar="DIR", help="model directory (default: runs/<model>)")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run in --out"
    )
    parser.add_argument("--force", action="store_true", help="overwrite a model already in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_data_options(parser)
    _add_device_option(parser)


# ------------------------------------------------------------------------------------------------
# commands


def cmd_data_info(args) -> int:
    from .data import load_dataset

    data = load_dataset(args.name, args.data_dir, download=False)
    print(json.dumps(data.describe(), indent=2))
    return 0


def cmd_data_download(args) -> int:
    from .data import REMOTE_DATASETS, resolve_dataset_dir

    if args.name not in REMOTE_DATASETS:
        raise ConfigError(
            f"{args.name!r} is not downloadable; choose one of {', '.join(REMOTE_DATASETS)}"
        )
    directory = resolve_dataset_dir(args.name, args.data_dir, download=True)
    print(f"{args.name}: files in {directory}")
    return 0


def _prepare_out(args, default: str) -> Path:
    from .atomic import ensure_writable_dir
    from .checkpoint import META_FILE, STATE_FILE

    out = Path(args.out or default)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a directory; choose another --out")
    has_model = (out / META_FILE).exists() or (out / STATE_FILE).exists()
    if has_model and not (args.resume or args.force):
        raise ConfigError(
            f"{out}: already holds a model; use --resume to continue it, --force to overwrite, "
            "or another --out"
        )
    if args.resume and not (out / STATE_FILE).exists():
        raise ConfigError(
            f"{out}: nothing to resume (no {STATE_FILE}); train without --resume (--force to "
            "overwrite what is there)"
        )
    return ensure_writable_dir(out)


def _train(args, model, kind: str, default_out: str, extra: dict) -> int:
    from .data import load_dataset
    from .devices import resolve_device
    from .training import TrainConfig, TrainingInterrupted, fit

    device = resolve_device(args.device)
    config = TrainConfig.defaults_for(
        kind,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        lr_schedule=args.lr_schedule,
        binarize=args.binarize,
        seed=args.seed,
        **extra,
    )
    out = _prepare_out(args, default_out)
    data = load_dataset(args.dataset, args.data_dir)
    model = model(n_visible=data.n_pixels).to(device)
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
    from functools import partial

    from .models import RBM

    return _train(
        args,
        partial(RBM, n_hidden=args.hidden),
        "rbm",
        f"runs/rbm-h{args.hidden}",
        {"method": args.method, "k": args.k},
    )


def cmd_train_vae(args) -> int:
    from functools import partial

    from .models import VAE

    return _train(
        args,
        partial(VAE, n_hidden=args.hidden, n_latent=args.latent),
        "vae",
        f"runs/vae-z{args.latent}",
        {},
    )


def _load(args):
    from .checkpoint import load_model
    from .devices import resolve_device

    device = resolve_device(args.device)
    return load_model(args.model, device=device)


def _data_for(args, meta: dict):
    from .data import load_dataset

    trained_on = meta.get("dataset", {}).get("name", "mnist-sample")
    name = args.dataset or (None if args.data_dir is not None else trained_on)
    if name is not None and name.startswith("dir:"):
        if args.data_dir is None:
            raise ConfigError(
                f"the model was trained on {name}; give its directory with --data-dir"
            )
        name = None
    data = load_dataset(name, args.data_dir)
    n_visible = meta.get("config", {}).get("n_visible")
    if n_visible is not None and n_visible != data.n_pixels:
        height, width = data.image_shape
        raise ConfigError(
            f"{args.model}: the model takes {n_visible} pixels but {data.name} has {height}x{width}"
            f" = {data.n_pixels}; give the data it was trained on ({trained_on}) with --dataset "
            "or --data-dir"
        )
    return data


def cmd_inpaint(args) -> int:
    from .devices import make_generator
    from .figures import save_inpainting_grid
    from .inpainting import inpaint, masked_mse
    from .masks import make_mask

    model, meta = _load(args)
    data = _data_for(args, meta)
    device = next(model.parameters()).device
    if args.n > data.test_images.shape[0]:
        raise ConfigError(f"--n {args.n} exceeds the {data.test_images.shape[0]} test images")
    generator = make_generator(args.seed, device)
    images = data.test_images[: args.n].to(device)
    mask = make_mask(args.missing, args.n, data.image_shape, generator, device)
    fill = data.train_images.mean(0).to(device)
    filled = inpaint(
        model, images, mask, steps=args.steps, fill=fill, generator=generator, sampler=args.sampler
    )
    mean_fill = torch_where(mask, fill, images)
    result = {
        "model": str(args.model),
        "kind": model.kind,
        "missing": args.missing,
        "n_images": args.n,
        "steps": args.steps,
        "missing_pixels": int(mask.sum()),
        "mse_model": masked_mse(filled, images, mask),
        "mse_training_mean_fill": masked_mse(mean_fill, images, mask),
        "out": str(args.out),
    }
    title = f"{model.kind} {meta['config']}: {args.missing} missing, {args.steps} steps"
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


def torch_where(mask, fill, images):
    import torch

    return torch.where(mask, fill.expand_as(images), images)


def cmd_sample(args) -> int:
    from .devices import make_generator
    from .figures import save_image_grid

    model, meta = _load(args)
    device = next(model.parameters()).device
    generator = make_generator(args.seed, device)
    if model.kind == "rbm":
        images = model.sample(args.n, steps=args.steps, generator=generator)
    else:
        images = model.sample(args.n, generator=generator)
    shape = _image_shape(meta)
    save_image_grid(images, args.out, shape, title=f"{model.kind} samples")
    print(f"{args.n} samples -> {args.out}")
    return 0


def _load_vae(args, command: str):
    """The VAE in ``--model``; any other kind is refused with a one-line error."""
    model, meta = _load(args)
    if model.kind != "vae":
        raise ConfigError(
            f"{args.model}: holds a {model.kind} model; {command} needs a VAE "
            "(train one with `rbmvae train vae`)"
        )
    return model, meta


def _image_shape(meta: dict) -> tuple[int, int]:
    """The training images' (height, width); square, or one row, when the checkpoint lacks it."""
    n_visible = int(meta.get("config", {}).get("n_visible", 784))
    shape = meta.get("dataset", {}).get("image_shape")
    if isinstance(shape, list) and len(shape) == 2 and shape[0] * shape[1] == n_visible:
        return int(shape[0]), int(shape[1])
    side = math.isqrt(n_visible)
    return (side, side) if side * side == n_visible else (1, n_visible)


def cmd_manifold(args) -> int:
    from .figures import save_manifold

    model, meta = _load_vae(args, "manifold")
    if model.n_latent != 2:
        raise ConfigError(
            f"{args.model}: the manifold needs a VAE with 2 latent units, this one has "
            f"{model.n_latent}; use `rbmvae traverse --model {args.model}` instead"
        )
    title = f"vae {meta['config']}: decoder over a {args.n} x {args.n} grid of z"
    save_manifold(model, args.out, args.n, tuple(args.range), _image_shape(meta), title=title)
    print(
        f"{args.n} x {args.n} manifold over z in [{args.range[0]:g}, {args.range[1]:g}]^2 -> {args.out}"
    )
    return 0


def cmd_traverse(args) -> int:
    from .figures import save_traversal

    model, meta = _load_vae(args, "traverse")
    title = f"vae {meta['config']}: one code unit varied per row"
    save_traversal(model, args.out, args.steps, tuple(args.range), _image_shape(meta), title=title)
    print(
        f"{model.n_latent} code units x {args.steps} values in "
        f"[{args.range[0]:g}, {args.range[1]:g}] -> {args.out}"
    )
    return 0


def cmd_latents(args) -> int:
    from .figures import latent_scatter

    model, meta = _load_vae(args, "latents")
    data = _data_for(args, meta)
    n = data.test_images.shape[0] if args.n is None else args.n
    if n > data.test_images.shape[0]:
        raise ConfigError(f"--n {n} exceeds the {data.test_images.shape[0]} test images")
    title = f"vae {meta['config']}: posterior means of {n} test images"
    latent_scatter(model, data.test_images[:n], data.test_labels[:n], args.out, title=title)
    print(f"latent means of {n} test images -> {args.out}")
    return 0


def _add_range_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--range",
        nargs=2,
        type=float,
        default=(-3.0, 3.0),
        metavar=("LOW", "HIGH"),
        help="code values from LOW to HIGH (default: -3 3)",
    )


def fraction_list(text: str) -> tuple[float, ...]:
    """Comma-separated missing fractions in [0, 1), or ``none`` for no inpainting."""
    if text.strip().lower() in ("", "none"):
        return ()
    values = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not a fraction; give e.g. 0.2,0.5,0.8 or none"
            ) from None
        if not 0 <= value < 1:
            raise argparse.ArgumentTypeError(f"missing fraction {value} is outside [0, 1)")
        values.append(value)
    return tuple(values)


def cmd_evaluate(args) -> int:
    from .atomic import write_text
    from .evaluation import evaluate, format_report

    if args.model is None and not args.baselines:
        raise ConfigError(
            "give --model DIR to evaluate a model, or --baselines for the baseline rows alone"
        )
    if args.model is None:
        from .data import load_dataset
        from .devices import resolve_device

        device = resolve_device(args.device)
        name = args.dataset or (None if args.data_dir is not None else "mnist-sample")
        model, data = None, load_dataset(name, args.data_dir)
    else:
        model, meta = _load(args)
        data = _data_for(args, meta)
        device = next(model.parameters()).device
    report = evaluate(
        model,
        data,
        model_dir=None if args.model is None else str(args.model),
        ais_runs=args.ais_runs,
        ais_betas=args.ais_betas,
        iwae_k=args.iwae_k,
        fractions=args.inpaint,
        n=args.n,
        ll_n=args.ll_n,
        steps=args.steps,
        seed=args.seed,
        k_neighbours=args.k_neighbours,
        baselines=args.baselines or not args.no_baselines,
        device=device,
    )
    text = json.dumps(report, indent=2)
    if args.model is not None:
        write_text(Path(args.model) / "evaluation.json", text + "\n")
    if args.json:
        print(text)
    else:
        print(format_report(report))
        if args.model is not None:
            print(f"results -> {Path(args.model) / 'evaluation.json'}")
    return 0


def cmd_explore(args) -> int:
    from .explore import describe, write_explorer

    info = write_explorer(args.run, args.out, n_digits=args.digits)
    print(f"explorer: {describe(info)} -> {args.out}")
    return 0


def cmd_reproduce(args) -> int:
    from .reproduce import format_summary, resolve_settings, run_study

    dataset = args.dataset
    if dataset is None and args.data_dir is not None:
        dataset = "dir"  # only --data-dir: the four files in that directory
    settings = resolve_settings(args.profile, args.set, dataset=dataset)
    if args.show_settings:
        print(json.dumps(settings, indent=2))
        return 0
    out = Path(args.out or f"runs/{args.profile}")
    metrics = run_study(
        out,
        settings,
        force=args.force,
        progress=not args.quiet,
        device=args.device,
        data_dir=args.data_dir,
    )
    print(format_summary(metrics))
    print(
        f"{len(metrics['figures'])} figures, metrics.json and report.html -> {out} "
        f"({metrics['seconds']['total']:.1f} s)"
    )
    if args.export_figures:
        from .reproduce import export_figures

        written = export_figures(out, args.export_figures)
        print(f"{len(written)} small figures -> {args.export_figures}")
    return 0


# ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rbmvae",
        description="Restricted Boltzmann Machines and Variational Autoencoders for images.",
    )
    parser.add_argument("--version", action="version", version=f"rbmvae {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    data = commands.add_parser("data", help="inspect or download data sets")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=Parser)
    data_commands.required = True
    info = data_commands.add_parser("info", help="counts and shapes of a data set")
    info.add_argument("name", nargs="?", default=None, metavar="DATASET")
    info.add_argument("--data-dir", metavar="DIR")
    info.set_defaults(func=cmd_data_info)
    download = data_commands.add_parser("download", help="download and verify a data set")
    download.add_argument("name", metavar="DATASET")
    download.add_argument("--data-dir", metavar="DIR")
    download.set_defaults(func=cmd_data_download)

    train = commands.add_parser("train", help="train a model")
    train_commands = train.add_subparsers(dest="model", metavar="MODEL", parser_class=Parser)
    train_commands.required = True
    rbm = train_commands.add_parser("rbm", help="train a binary RBM with CD-k or PCD-k")
    rbm.add_argument("--hidden", type=positive_int, default=500, help="hidden units (default 500)")
    rbm.add_argument(
        "--method", choices=("pcd", "cd"), default="cd", help="CD or persistent CD (default: cd)"
    )
    rbm.add_argument("--k", type=positive_int, default=1, help="Gibbs steps per update (default 1)")
    _add_training_options(rbm, "rbm")
    rbm.set_defaults(func=cmd_train_rbm)
    vae = train_commands.add_parser(
        "vae", help="train a variational autoencoder (Bernoulli decoder) with Adam"
    )
    vae.add_argument("--latent", type=positive_int, default=2, help="code units z (default 2)")
    vae.add_argument(
        "--hidden", type=positive_int, default=256, help="hidden units per MLP (default 256)"
    )
    _add_training_options(vae, "vae")
    vae.set_defaults(func=cmd_train_vae)

    inpaint = commands.add_parser("inpaint", help="fill in missing pixels of test images")
    inpaint.add_argument("--model", required=True, metavar="DIR")
    inpaint.add_argument(
        "--missing",
        type=mask_spec,
        default="0.5",
        help="fraction missing in [0, 1), square:SIZE or half:SIDE (default 0.5)",
    )
    inpaint.add_argument("--n", type=positive_int, default=16, help="test images (default 16)")
    inpaint.add_argument(
        "--steps",
        type=positive_int,
        default=200,
        help="sampler sweeps (default 200; the last half are averaged)",
    )
    inpaint.add_argument(
        "--sampler",
        default=None,
        help="VAE only: pseudo-gibbs or metropolis (default pseudo-gibbs)",
    )
    inpaint.add_argument("--out", default="inpainting.png", metavar="PNG")
    inpaint.add_argument("--seed", type=int, default=0)
    inpaint.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_data_options(inpaint, default=None)
    _add_device_option(inpaint)
    inpaint.set_defaults(func=cmd_inpaint)

    sample = commands.add_parser("sample", help="draw samples from a model")
    sample.add_argument("--model", required=True, metavar="DIR")
    sample.add_argument("--n", type=positive_int, default=64)
    sample.add_argument("--steps", type=positive_int, default=1000, help="RBM Gibbs sweeps")
    sample.add_argument("--out", default="samples.png", metavar="PNG")
    sample.add_argument("--seed", type=int, default=0)
    _add_device_option(sample)
    sample.set_defaults(func=cmd_sample)

    manifold = commands.add_parser(
        "manifold", help="VAE with 2 code units: decoded images over a grid of z"
    )
    manifold.add_argument("--model", required=True, metavar="DIR")
    _add_range_option(manifold)
    manifold.add_argument("--n", type=positive_int, default=20, help="grid side (default 20)")
    manifold.add_argument("--out", default="manifold.png", metavar="PNG")
    _add_device_option(manifold)
    manifold.set_defaults(func=cmd_manifold)

    traverse = commands.add_parser(
        "traverse", help="VAE: vary each code unit in turn, the others at 0"
    )
    traverse.add_argument("--model", required=True, metavar="DIR")
    _add_range_option(traverse)
    traverse.add_argument(
        "--steps", type=positive_int, default=13, help="values per code unit (default 13)"
    )
    traverse.add_argument("--out", default="traversal.png", metavar="PNG")
    _add_device_option(traverse)
    traverse.set_defaults(func=cmd_traverse)

    latents = commands.add_parser(
        "latents", help="VAE: scatter of the test images' codes coloured by label"
    )
    latents.add_argument("--model", required=True, metavar="DIR")
    latents.add_argument(
        "--n", type=positive_int, default=None, help="test images (default: all of them)"
    )
    latents.add_argument("--out", default="latents.png", metavar="PNG")
    _add_data_options(latents, default=None)
    _add_device_option(latents)
    latents.set_defaults(func=cmd_latents)

    evaluate = commands.add_parser(
        "evaluate", help="test log-likelihood and inpainting quality, against baselines"
    )
    evaluate.add_argument("--model", metavar="DIR", help="model directory to evaluate")
    evaluate.add_argument(
        "--baselines",
        action="store_true",
        help="without --model: only the baseline rows (zero, training-mean and k-NN fill)",
    )
    evaluate.add_argument(
        "--no-baselines", action="store_true", help="with --model: leave the baseline rows out"
    )
    evaluate.add_argument(
        "--ais-runs",
        type=nonnegative_int,
        default=100,
        help="RBM: AIS runs, done as one batch (default 100; 0 skips AIS)",
    )
    evaluate.add_argument(
        "--ais-betas",
        type=positive_int,
        default=14500,
        help="RBM: AIS intermediate distributions, spaced as in SM08 (default 14500)",
    )
    evaluate.add_argument(
        "--iwae-k", type=positive_int, default=5000, help="VAE: importance samples (default 5000)"
    )
    evaluate.add_argument(
        "--ll-n",
        type=positive_int,
        default=None,
        help="test images for the log-likelihood (default: all for an RBM, 1000 for a VAE)",
    )
    evaluate.add_argument(
        "--inpaint",
        type=fraction_list,
        default=(0.2, 0.5, 0.8),
        metavar="F,F,...",
        help="missing fractions to inpaint (default 0.2,0.5,0.8; none skips inpainting)",
    )
    evaluate.add_argument(
        "--n", type=positive_int, default=1000, help="test images to inpaint (default 1000)"
    )
    evaluate.add_argument(
        "--steps",
        type=positive_int,
        default=200,
        help="sampler sweeps (default 200; the last half are averaged)",
    )
    evaluate.add_argument(
        "--k-neighbours", type=positive_int, default=10, help="k of the k-NN baseline (default 10)"
    )
    evaluate.add_argument(
        "--seed", type=int, default=0, help="binarization, masks and samplers (default 0)"
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _add_data_options(evaluate, default=None)
    _add_device_option(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    explore = commands.add_parser(
        "explore", help="an offline HTML page that runs a run's models in the browser"
    )
    explore.add_argument(
        "--run", required=True, metavar="DIR", help="run directory (models under DIR/models)"
    )
    explore.add_argument("--out", default="explore.html", metavar="HTML")
    explore.add_argument(
        "--digits", type=positive_int, default=30, help="test digits to inpaint (default 30)"
    )
    explore.set_defaults(func=cmd_explore)

    reproduce = commands.add_parser(
        "reproduce",
        help="train, evaluate and report the whole study (RBM 20/100/500, VAE z = 2/8/16)",
    )
    reproduce.add_argument(
        "--profile",
        choices=("quick", "full"),
        default="quick",
        help="quick: under a minute on the embedded sample; full: best quality in about ten "
        "minutes of 2-core CPU on 60,000 images (default: quick)",
    )
    reproduce.add_argument("--out", metavar="DIR", help="run directory (default runs/PROFILE)")
    reproduce.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set rbm.epochs=10 --set vae_latent=[2,4] "
        "(see --show-settings)",
    )
    reproduce.add_argument(
        "--show-settings", action="store_true", help="print the resolved settings and exit"
    )
    reproduce.add_argument(
        "--force",
        action="store_true",
        help="retrain and re-evaluate even what is already in the run",
    )
    reproduce.add_argument(
        "--export-figures", metavar="DIR", help="also write small copies of the main figures to DIR"
    )
    reproduce.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_data_options(reproduce, default=None)
    _add_device_option(reproduce)
    reproduce.set_defaults(func=cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RbmvaeError as error:
        print(f"rbmvae: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "rbmvae: interrupted; files already written are complete "
            "(an interrupted training run continues with the same command and --resume)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
