"""The ``rbmvae`` command line: a thin layer over the Python API.

Every failure the user can cause prints one line, ``rbmvae: error: ...``, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .errors import ConfigError, RbmvaeError

# ------------------------------------------------------------------------------------------------
# argument types


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


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
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_data_options(
    parser: argparse.ArgumentParser, default: str | None = "mnist-sample"
) -> None:
    from .data import DATASET_NAMES

    parser.add_argument(
        "--dataset",
        default=default,
        metavar="NAME",
        help=f"data set: {', '.join(DATASET_NAMES)} (default: {default})",
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
        raise ConfigError(f"{out}: exists and is not a directory")
    has_model = (out / META_FILE).exists() or (out / STATE_FILE).exists()
    if has_model and not (args.resume or args.force):
        raise ConfigError(
            f"{out}: already holds a model; use --resume to continue it, --force to overwrite, "
            "or another --out"
        )
    if args.resume and not (out / STATE_FILE).exists():
        raise ConfigError(f"{out}: nothing to resume (no {STATE_FILE})")
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


def _load(args):
    from .checkpoint import load_model
    from .devices import resolve_device

    device = resolve_device(args.device)
    return load_model(args.model, device=device)


def _data_for(args, meta: dict):
    from .data import load_dataset

    name = args.dataset or meta.get("dataset", {}).get("name", "mnist-sample")
    if name.startswith("dir:"):
        if args.data_dir is None:
            raise ConfigError(
                f"the model was trained on {name}; give its directory with --data-dir"
            )
        name = None
    return load_dataset(name, args.data_dir)


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
    shape = tuple(meta.get("dataset", {}).get("image_shape", (28, 28)))
    save_image_grid(images, args.out, shape, title=f"{model.kind} samples")
    print(f"{args.n} samples -> {args.out}")
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
    info.add_argument("name", nargs="?", default="mnist-sample", metavar="DATASET")
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
        "--method", choices=("pcd", "cd"), default="pcd", help="persistent CD or CD (default: pcd)"
    )
    rbm.add_argument("--k", type=positive_int, default=1, help="Gibbs steps per update (default 1)")
    _add_training_options(rbm, "rbm")
    rbm.set_defaults(func=cmd_train_rbm)

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
        print("rbmvae: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
