"""The argument parser of ``rbmvae``: one ``add_<command>`` function per command.

Defaults and choices come from the library's settings (``TrainConfig``, ``EvaluationSettings``,
``samplers.SAMPLERS``, the study's profiles), never restated here.
"""

from __future__ import annotations

import argparse

from .._version import __version__
from ..basics.devices import DEVICES
from ..data import DATASET_NAMES
from ..evaluation import EvaluationSettings
from ..evaluation.scoring import INPAINT_STARTS
from ..samplers import SAMPLERS
from ..training.config import CHOICES, RECIPES, TrainConfig
from . import commands
from .options import RBM_OPTIONS, TRAINING_OPTIONS
from .results import add_results
from .tune import add_tune
from .types import (
    Parser,
    fraction_list,
    job_count,
    mask_spec,
    nonnegative_int,
    positive_int,
    recipe_name_or_file,
)

EVALUATION = EvaluationSettings()
STUDY_PROFILES = ("quick", "full", "literature")


def _add_data_options(parser: argparse.ArgumentParser, default: str | None = "mnist-sample"):
    fallback = default or "the model's data set (its directory, while it is there)"
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
        "--device",
        default="auto",
        metavar="|".join(DEVICES),
        help="auto (CUDA when available), cpu or cuda (default: auto)",
    )


def _add_config_options(parser: argparse.ArgumentParser, kind: str, options) -> None:
    defaults = TrainConfig.defaults_for(kind)
    for flag, field, kind_type, text in options:
        choices = CHOICES.get(field)
        parser.add_argument(
            flag,
            dest=field,
            type=None if choices else kind_type,
            choices=choices,
            default=None,
            help=f"{text} (default: {getattr(defaults, field)})",
        )


def _add_training_options(parser: argparse.ArgumentParser, kind: str) -> None:
    _add_config_options(parser, kind, TRAINING_OPTIONS)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        dest="settings",
        help="any other training setting by its TrainConfig name, JSON value, e.g. "
        "--set k_final=25 --set kl_warmup_epochs=5",
    )
    parser.add_argument("--out", metavar="DIR", help="model directory (default: runs/<model>)")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run in --out"
    )
    parser.add_argument("--force", action="store_true", help="overwrite a model already in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    _add_data_options(parser)
    _add_device_option(parser)


def _add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="model directory, or pretrained:NAME for a shipped model (see rbmvae pretrained)",
    )


def _add_range_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--range",
        nargs=2,
        type=float,
        default=(-3.0, 3.0),
        metavar=("LOW", "HIGH"),
        help="code values from LOW to HIGH (default: -3 3)",
    )


def add_data(commands_) -> None:
    data = commands_.add_parser("data", help="inspect or download data sets")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=Parser)
    actions.required = True
    for action, helptext, func in (
        ("info", "counts and shapes of a data set", commands.cmd_data_info),
        ("download", "download and verify a data set", commands.cmd_data_download),
    ):
        parser = actions.add_parser(action, help=helptext)
        parser.add_argument(
            "name", nargs="?", default=None, metavar="DATASET", help="same as --dataset"
        )
        _add_data_options(parser)
        parser.set_defaults(func=func)


def add_train(commands_) -> None:
    train = commands_.add_parser("train", help="train a model")
    models = train.add_subparsers(dest="model", metavar="MODEL", parser_class=Parser)
    models.required = True
    rbm = models.add_parser("rbm", help="train a binary RBM (CD-k, PCD-k, tempering)")
    rbm.add_argument(
        "--hidden", type=positive_int, help="hidden units (default 500, or the recipe file's)"
    )
    rbm.add_argument(
        "--recipe",
        type=recipe_name_or_file,
        default=None,
        metavar="NAME|FILE",
        help=f"a named recipe ({', '.join(RECIPES)}; docs/derivation.md) or a recipe file "
        "(rbmvae tune's best-recipe.json); options given here override it",
    )
    _add_config_options(rbm, "rbm", RBM_OPTIONS)
    _add_training_options(rbm, "rbm")
    rbm.set_defaults(func=commands.cmd_train_rbm)
    vae = models.add_parser("vae", help="train a variational autoencoder (Bernoulli decoder)")
    vae.add_argument(
        "--latent", type=positive_int, help="code units z (default 2, or the recipe file's)"
    )
    vae.add_argument(
        "--hidden", type=positive_int, help="hidden units per MLP (default 256, or the recipe's)"
    )
    vae.add_argument(
        "--recipe",
        type=recipe_name_or_file,
        metavar="FILE",
        help="a recipe file (rbmvae tune's best-recipe.json); options given here override it",
    )
    _add_training_options(vae, "vae")
    vae.set_defaults(func=commands.cmd_train_vae)


def add_inpaint(commands_) -> None:
    samplers = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in SAMPLERS.items())
    inpaint = commands_.add_parser("inpaint", help="fill in missing pixels of test images")
    _add_model_option(inpaint)
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
        default=EVALUATION.inpaint_steps,
        help=f"sampler sweeps (default {EVALUATION.inpaint_steps}; the last half are averaged)",
    )
    inpaint.add_argument(
        "--sampler", default=None, help=f"the model's sampler ({samplers}; default: the first)"
    )
    _add_chain_options(inpaint, "--chains", "--start")
    inpaint.add_argument("--out", default="inpainting.png", metavar="PNG")
    inpaint.add_argument("--seed", type=int, default=0)
    inpaint.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_data_options(inpaint, default=None)
    _add_device_option(inpaint)
    inpaint.set_defaults(func=commands.cmd_inpaint)


def add_figures(commands_) -> None:
    """``sample``, ``manifold``, ``traverse`` and ``latents``."""
    sample = commands_.add_parser("sample", help="draw samples from a model")
    _add_model_option(sample)
    sample.add_argument("--n", type=positive_int, default=64)
    sample.add_argument("--steps", type=positive_int, default=1000, help="RBM Gibbs sweeps")
    sample.add_argument("--out", default="samples.png", metavar="PNG")
    sample.add_argument("--seed", type=int, default=0)
    _add_device_option(sample)
    sample.set_defaults(func=commands.cmd_sample)

    manifold = commands_.add_parser(
        "manifold", help="VAE with 2 code units: decoded images over a grid of z"
    )
    _add_model_option(manifold)
    _add_range_option(manifold)
    manifold.add_argument("--n", type=positive_int, default=20, help="grid side (default 20)")
    manifold.add_argument("--out", default="manifold.png", metavar="PNG")
    _add_device_option(manifold)
    manifold.set_defaults(func=commands.cmd_manifold)

    traverse = commands_.add_parser(
        "traverse", help="VAE: vary each code unit in turn, the others at 0"
    )
    _add_model_option(traverse)
    _add_range_option(traverse)
    traverse.add_argument(
        "--steps", type=positive_int, default=13, help="values per code unit (default 13)"
    )
    traverse.add_argument("--out", default="traversal.png", metavar="PNG")
    _add_device_option(traverse)
    traverse.set_defaults(func=commands.cmd_traverse)

    latents = commands_.add_parser(
        "latents", help="VAE: scatter of the test images' codes coloured by label"
    )
    _add_model_option(latents)
    latents.add_argument(
        "--n", type=positive_int, default=None, help="test images (default: all of them)"
    )
    latents.add_argument("--out", default="latents.png", metavar="PNG")
    _add_data_options(latents, default=None)
    _add_device_option(latents)
    latents.set_defaults(func=commands.cmd_latents)


def _add_chain_options(parser, chains: str, start: str) -> None:
    """How many inpainting chains run per image and where they start (Eq. 5.9)."""
    e = EVALUATION
    parser.add_argument(
        chains,
        type=positive_int,
        default=e.inpaint_chains,
        help=f"inpainting chains per image, averaged (default {e.inpaint_chains})",
    )
    parser.add_argument(
        start,
        choices=INPAINT_STARTS,
        default=e.inpaint_start,
        help="where each chain starts: the training mean, or chain c at the c-th nearest "
        f"training image on the observed pixels (default {e.inpaint_start})",
    )


def add_evaluate(commands_) -> None:
    e = EVALUATION
    evaluate = commands_.add_parser(
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
        default=e.ais_runs,
        help=f"RBM: AIS runs, done as one batch (default {e.ais_runs}; 0 skips AIS)",
    )
    evaluate.add_argument(
        "--ais-betas",
        type=positive_int,
        default=e.ais_betas,
        help=f"RBM: AIS intermediate distributions, spaced as in SM08 (default {e.ais_betas})",
    )
    evaluate.add_argument(
        "--iwae-k",
        type=positive_int,
        default=e.iwae_k,
        help=f"VAE: importance samples (default {e.iwae_k})",
    )
    evaluate.add_argument(
        "--likelihood-images",
        "--ll-n",
        type=positive_int,
        default=None,
        help="test images for the log-likelihood, the same for every model (default: all)",
    )
    evaluate.add_argument(
        "--inpaint",
        type=fraction_list,
        default=e.fractions,
        metavar="F,F,...",
        help="missing fractions to inpaint (default "
        f"{','.join(f'{f:g}' for f in e.fractions)}; none skips inpainting)",
    )
    evaluate.add_argument(
        "--inpaint-images",
        "--n",
        type=positive_int,
        default=e.inpaint_images,
        help=f"test images to inpaint (default {e.inpaint_images})",
    )
    evaluate.add_argument(
        "--inpaint-steps",
        "--steps",
        type=positive_int,
        default=e.inpaint_steps,
        help=f"sampler sweeps (default {e.inpaint_steps}; the last half are averaged)",
    )
    _add_chain_options(evaluate, "--inpaint-chains", "--inpaint-start")
    evaluate.add_argument(
        "--k-neighbours",
        type=positive_int,
        default=e.k_neighbours,
        help=f"k of the k-NN baseline (default {e.k_neighbours})",
    )
    evaluate.add_argument(
        "--seed", type=int, default=e.seed, help=f"binarization, masks, samplers (default {e.seed})"
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _add_data_options(evaluate, default=None)
    _add_device_option(evaluate)
    evaluate.set_defaults(func=commands.cmd_evaluate)


def add_study(commands_) -> None:
    """``explore`` and ``reproduce``."""
    explore = commands_.add_parser(
        "explore", help="an offline HTML page that runs a run's models in the browser"
    )
    source = explore.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="DIR", help="run directory (models under DIR/models)")
    source.add_argument(
        "--pretrained", action="store_true", help="the six trained models shipped with rbmvae"
    )
    explore.add_argument("--out", default="explore.html", metavar="HTML")
    explore.add_argument(
        "--digits", type=positive_int, default=30, help="test digits to inpaint (default 30)"
    )
    explore.set_defaults(func=commands.cmd_explore)

    pretrained = commands_.add_parser(
        "pretrained", help="list the trained models shipped with rbmvae, with their figures"
    )
    pretrained.add_argument("--json", action="store_true", help="the cards as JSON")
    pretrained.set_defaults(func=commands.cmd_pretrained)

    reproduce = commands_.add_parser(
        "reproduce",
        help="train, evaluate and report the whole study (RBM 20/100/500, VAE z = 2/8/16)",
    )
    reproduce.add_argument(
        "--profile",
        choices=STUDY_PROFILES,
        default="quick",
        help="quick: under a minute on the embedded sample; full: the best quality in about 15 "
        "minutes of 2-core CPU on full MNIST; literature: the published quality, for as long as "
        "it takes (default: quick)",
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
    reproduce.add_argument(
        "--jobs",
        type=job_count,
        default=None,
        metavar="N",
        help="worker processes training and evaluating models side by side, one torch thread "
        "each on a 2-core CPU (default auto: one per CPU core; one on a GPU; 1: all in this "
        "process)",
    )
    reproduce.add_argument("--quiet", action="store_true", help="no progress output")
    _add_data_options(reproduce, default=None)
    _add_device_option(reproduce)
    reproduce.set_defaults(func=commands.cmd_reproduce)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rbmvae",
        description="Restricted Boltzmann Machines and Variational Autoencoders for images.",
    )
    parser.add_argument("--version", action="version", version=f"rbmvae {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    subcommands.required = True
    adders = (
        add_data,
        add_train,
        add_inpaint,
        add_figures,
        add_evaluate,
        add_study,
        add_tune,
        add_results,
    )
    for add in adders:
        add(subcommands)
    return parser
