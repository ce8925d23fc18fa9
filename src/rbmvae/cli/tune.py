"""``rbmvae tune rbm|vae``: its options (defaults from ``TuneSettings``) and its command."""

from __future__ import annotations

import argparse
import dataclasses
import json

from ..basics.errors import ConfigError
from ..tuning.settings import INTERMEDIATES, MODEL_DEFAULTS, PRUNERS, TuneSettings
from .types import Parser, positive_float, positive_int

DEFAULTS = {f.name: f.default for f in dataclasses.fields(TuneSettings)}


def _add_study_options(parser: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    parser.add_argument("--study", required=True, metavar="NAME", help="the study's name")
    parser.add_argument(
        "--trials",
        required=True,
        type=positive_int,
        metavar="N",
        help="trials to finish, counted over all workers: complete or pruned (failed ones are "
        "recorded, not counted)",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="SQLAlchemy URL shared by the workers, e.g. postgresql://USER:PASSWORD@HOST/DB "
        "(default: sqlite:///OUT/study.db)",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=d["jobs"],
        metavar="J",
        help=f"worker processes on this machine (default {d['jobs']})",
    )
    parser.add_argument("--space", metavar="FILE", help="search space JSON (default: the kind's)")
    parser.add_argument(
        "--show-space", action="store_true", help="print the search space as JSON and exit"
    )
    parser.add_argument(
        "--minutes",
        type=positive_float,
        metavar="M",
        help="train each trial for about M CPU minutes (its epochs set from a timed pilot)",
    )
    parser.add_argument("--out", metavar="DIR", help="run directory (default runs/tune/STUDY)")
    parser.add_argument(
        "--recipe", metavar="NAME|FILE", help="start every trial from a named recipe or file"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="settings",
        metavar="FIELD=VALUE",
        help="a TrainConfig setting fixed for every trial (JSON value), e.g. --set epochs=30",
    )


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        metavar="NAME",
        help="data set (default mnist-sample; with only --data-dir, the files there)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="directory of the four standard files")
    parser.add_argument(
        "--train-images",
        type=positive_int,
        metavar="N",
        help="use only the first N training digits (default: all)",
    )
    parser.add_argument(
        "--validation",
        type=positive_int,
        metavar="N",
        help="score on the last N of them (default: a sixth; MNIST: the last 10,000)",
    )
    parser.add_argument(
        "--score-images",
        type=positive_int,
        metavar="N",
        help="score on the first N validation digits (default: all)",
    )


def _add_scoring_options(parser: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    for flag, name, kind, text in (
        ("--ais-runs", "ais_runs", positive_int, "RBM: AIS runs"),
        ("--ais-betas", "ais_betas", positive_int, "RBM: AIS intermediate distributions"),
        ("--raise-images", "raise_images", positive_int, "RBM: validation digits of RAISE"),
        ("--iwae-k", "iwae_k", positive_int, "VAE: importance samples"),
        ("--report-every", "report_every", positive_int, "epochs between pruner reports"),
        ("--heartbeat", "heartbeat", positive_int, "seconds between a worker's heartbeats"),
        ("--grace", "grace", positive_int, "seconds without one before a trial is failed"),
        ("--retries", "retries", int, "retries of a trial whose worker died"),
        ("--threads", "threads", positive_int, "torch threads per worker"),
        ("--seed", "seed", int, "training seed of every trial"),
    ):
        parser.add_argument(
            flag, dest=name, type=kind, default=d[name], help=f"{text} (default {d[name]})"
        )
    parser.add_argument(
        "--no-doubled-check",
        dest="ais_doubled_check",
        action="store_false",
        help="RBM: skip the rerun of AIS with doubled betas",
    )
    parser.add_argument(
        "--max-failures",
        type=positive_int,
        metavar="F",
        help="stop once F trials have failed (default: the number of trials)",
    )
    parser.add_argument("--pruner", choices=PRUNERS, default=d["pruner"])
    parser.add_argument("--device", default=d["device"], help=f"(default {d['device']})")
    parser.add_argument("--quiet", action="store_true", help="no line per trial")


def add_tune(commands_) -> None:
    tune = commands_.add_parser(
        "tune", help="search training recipes with Optuna, on one machine or many"
    )
    kinds = tune.add_subparsers(dest="model", metavar="MODEL", parser_class=Parser)
    kinds.required = True
    for kind, text in (("rbm", "tune an RBM's training"), ("vae", "tune a VAE's training")):
        parser = kinds.add_parser(kind, help=text)
        sizes = MODEL_DEFAULTS[kind]
        parser.add_argument(
            "--hidden",
            type=positive_int,
            default=sizes["n_hidden"],
            help=f"hidden units (default {sizes['n_hidden']})",
        )
        if "n_latent" in sizes:
            parser.add_argument(
                "--latent",
                type=positive_int,
                default=sizes["n_latent"],
                help=f"code units (default {sizes['n_latent']})",
            )
        parser.add_argument(
            "--intermediate",
            choices=INTERMEDIATES[kind],
            default=INTERMEDIATES[kind][0],
            help="what a trial reports to the pruner (default %(default)s)",
        )
        _add_study_options(parser)
        _add_data_options(parser)
        _add_scoring_options(parser)
        parser.set_defaults(func=cmd_tune, kind=kind)


def _fixed_settings(assignments: list[str]) -> dict:
    fixed = {}
    for assignment in assignments:
        name, equals, text = assignment.partition("=")
        if not name.strip() or not equals:
            raise ConfigError(f"--set {assignment!r} is not FIELD=VALUE (e.g. --set epochs=30)")
        try:
            fixed[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            fixed[name.strip()] = text
    return fixed


SETTING_NAMES = (
    "storage", "jobs", "space", "minutes", "out", "recipe", "dataset", "data_dir", "train_images",
    "validation", "score_images", "ais_runs", "ais_betas", "raise_images", "iwae_k",
    "report_every", "heartbeat", "grace", "retries", "threads", "seed", "ais_doubled_check",
    "max_failures", "pruner", "device", "intermediate",
)  # fmt: skip


def settings_from(args) -> TuneSettings:
    """The :class:`TuneSettings` named by ``rbmvae tune``'s options."""
    model = {"n_hidden": args.hidden, "n_latent": getattr(args, "latent", None)}
    return TuneSettings(
        kind=args.kind,
        study=args.study,
        trials=args.trials,
        model={k: v for k, v in model.items() if v is not None},
        base=_fixed_settings(args.settings),
        progress=not args.quiet,
        **{name: getattr(args, name) for name in SETTING_NAMES},
    )


def _summary_lines(summary: dict) -> list[str]:
    states = ", ".join(f"{n} {state}" for state, n in sorted(summary["states"].items()))
    lines = [
        f"study {summary['study']} ({summary['storage']}): {summary['counted']} trials counted "
        f"({states or 'none yet'})"
    ]
    best = summary["best"]
    if best is not None:
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in best["settings"].items())  # fmt: skip
        lines.append(f"best: trial {best['trial']}, {best['score']:.3f} ({best['score_name']})")
        lines.append(f"  its recipe: {shown or 'the defaults'}")
    if summary.get("failed_workers"):
        lines.append(f"workers that stopped with an error: {', '.join(summary['failed_workers'])}")
    lines.append("files: " + ", ".join(summary["files"].values()))
    return lines


def cmd_tune(args) -> int:
    from ..tuning import load_space, require_optuna, tune

    settings = settings_from(args)
    if args.show_space:
        space = load_space(settings.space, settings.kind, settings.base_config())
        print(json.dumps(space.to_dict(), indent=2))
        return 0
    require_optuna()
    options = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    summary = tune(**options)
    print("\n".join(_summary_lines(summary)))
    return 0
