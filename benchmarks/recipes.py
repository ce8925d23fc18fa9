"""RBM training recipes on full MNIST: AIS test log-likelihood against CPU minutes.

Re-runnable measurement for benchmarks/RESULTS.md ("RBM recipes on full MNIST"). Each run trains
a 500-hidden RBM with one named recipe (``rbmvae.training.config.RECIPES``) for about a given number
of CPU minutes (the number of epochs is set from a timed pilot of two epochs on a tenth of the
images), then scores it with AIS, the doubled-betas check and the RAISE bracket
(``rbmvae.evaluate``). One thread, so runs on a shared 2-core machine stay comparable::

    python benchmarks/recipes.py train --recipe cd-rising --minutes 5 --out runs/recipes
    python benchmarks/recipes.py score runs/recipes/cd-rising-5min --images 10000
    python benchmarks/recipes.py table runs/recipes --plot benchmarks/recipes.png

These runs measure named recipes on the test set, for the tables of RESULTS.md; a search over
recipes, scored on a validation split, is ``rbmvae tune rbm`` (docs/tuning.md), whose pilot and
AIS summary this script shares.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import time
from pathlib import Path

import torch

import rbmvae
from rbmvae.models.rbm import RBM
from rbmvae.training import TrainConfig, fit
from rbmvae.tuning import budget
from rbmvae.tuning.score import rbm_summary


def _value(text: str):
    """A ``--set`` value as the CLI reads it: JSON (``25``, ``0.01``, ``true``), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def seconds_per_epoch(config: TrainConfig, data, n_hidden: int, fraction: float = 0.1) -> float:
    """The time of one whole epoch of ``fit`` with ``config`` for an ``n_hidden`` RBM on all of
    ``data``'s training images, from a timed pilot on ``fraction`` of them: the pilot of
    ``rbmvae tune --minutes`` (``rbmvae.tuning.budget.seconds_per_epoch``)."""
    return budget.seconds_per_epoch(config, data, lambda n: RBM(n, n_hidden), fraction)


def train(args) -> None:
    torch.set_num_threads(1)
    data = rbmvae.load_dataset(args.dataset, data_dir=args.data_dir)
    overrides = dict(item.split("=", 1) for item in args.set)
    overrides = {key: _value(value) for key, value in overrides.items()}
    config = TrainConfig.defaults_for("rbm", recipe=args.recipe, **overrides)
    if args.minutes:
        per_epoch = seconds_per_epoch(config, data, args.hidden)
        epochs = max(1, int(args.minutes * 60 / per_epoch))
        config = config.replace(epochs=epochs)
    name = args.name or f"{args.recipe}-{args.minutes:g}min"
    out = Path(args.out) / name
    started = time.perf_counter()
    model = RBM(data.train_images.shape[1], args.hidden)
    history = fit(model, data, config, out_dir=out, progress=False)
    seconds = time.perf_counter() - started
    record = {
        "recipe": args.recipe,
        "minutes_asked": args.minutes,
        "train_seconds": seconds,
        "epochs": config.epochs,
        "config": config.to_dict(),
        "last_epoch": history[-1],
    }
    (out / "recipe.json").write_text(json.dumps(record, indent=1))
    print(json.dumps({k: record[k] for k in ("recipe", "train_seconds", "epochs")}))


def ais_score(model, data, images, runs: int, betas: int, raise_images: int, doubled=True):
    """``rbmvae.evaluate``'s AIS of ``model`` on the first ``images`` test digits (None: all),
    with the doubled-betas rerun and RAISE; returns the whole report and the summary that
    ``rbmvae tune`` scores its RBM trials by (``rbmvae.tuning.score.rbm_summary``)."""
    report = rbmvae.evaluate(
        model,
        data,
        likelihood_images=images,
        ais_runs=runs,
        ais_betas=betas,
        raise_images=raise_images,
        ais_doubled_check=doubled,
        fractions=(),
        baselines=False,
    )
    return report, rbm_summary(report)


def score(args) -> None:
    torch.set_num_threads(1)
    data = rbmvae.load_dataset(args.dataset, data_dir=args.data_dir)
    out = Path(args.model_dir)
    model = rbmvae.load_model(out)
    if isinstance(model, tuple):
        model = model[0]
    report, summary = ais_score(
        model, data, args.images, args.runs, args.betas, args.raise_images, not args.no_doubled
    )
    tag = f"score-{args.images}-{args.runs}-{args.betas}-{args.raise_images}.json"
    (out / tag).write_text(json.dumps(report, indent=1))
    print(json.dumps(summary))


def _rows(root: Path) -> list[dict]:
    rows = []
    for recipe_file in sorted(root.glob("*/recipe.json")):
        record = json.loads(recipe_file.read_text())
        for score_file in sorted(recipe_file.parent.glob("score-*.json")):
            ais = json.loads(score_file.read_text())["log_likelihood"]["ais"]
            test = json.loads(score_file.read_text())["log_likelihood"]["test_images"]["n"]
            rows.append(
                {
                    "name": recipe_file.parent.name,
                    "recipe": record["recipe"],
                    "epochs": record["epochs"],
                    "minutes": record["train_seconds"] / 60,
                    "test_images": test,
                    "ll": ais["mean_log_likelihood"]["value"],
                    "low": (ais.get("bracket") or {}).get("low", {}).get("value"),
                    "ess": ais["effective_runs"]["value"],
                    "runs": ais["n_runs"],
                    "betas": ais["n_betas"],
                    "delta": (ais.get("doubled_betas") or {}).get("delta", {}).get("value"),
                    "reliable": ais["reliable"],
                }
            )
    return rows


def table(args) -> None:
    rows = _rows(Path(args.root))
    if args.match:  # only the runs whose names match one of the patterns
        rows = [r for r in rows if any(fnmatch.fnmatchcase(r["name"], p) for p in args.match)]
    lines = [
        "| recipe | epochs | CPU minutes | test digits | AIS log-likelihood | RAISE bracket "
        "| ESS (of runs) | doubled betas | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in sorted(rows, key=lambda r: (r["recipe"], r["minutes"])):
        figure = f"{r['ll']:.2f}" if r["reliable"] else f"({r['ll']:.2f})"
        low = "-" if r["low"] is None else f"[{r['low']:.2f}, {r['ll']:.2f}]"
        delta = "-" if r["delta"] is None else f"{r['delta']:+.2f}"
        verdict = "ok" if r["reliable"] else "unreliable"
        lines.append(
            f"| {r['name']} | {r['epochs']} | {r['minutes']:.1f} | {r['test_images']} | {figure} "
            f"| {low} | {r['ess']:.1f} ({r['runs']}) | {delta} | {verdict} |"
        )
    print("\n".join(lines))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
        for recipe in sorted({r["recipe"] for r in rows}):
            mine = sorted((r for r in rows if r["recipe"] == recipe), key=lambda r: r["minutes"])
            ax.scatter([r["minutes"] for r in mine], [r["ll"] for r in mine], label=recipe, s=18)
            for r in mine:  # each run named, so runs of one recipe with other settings differ
                ax.annotate(
                    r["name"],
                    (r["minutes"], r["ll"]),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
                if not r["reliable"]:
                    ax.plot(r["minutes"], r["ll"], marker="x", color="k", markersize=9)
        ax.axhline(-86.34, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xlabel("training, CPU minutes (1 thread)")
        ax.set_ylabel("AIS test log-likelihood (nats)")
        ax.set_title("RBM, 500 hidden, full MNIST (x: unreliable)", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train")
    p.add_argument("--recipe", required=True)
    p.add_argument("--minutes", type=float, default=0.0)
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--out", default="runs/recipes")
    p.add_argument("--name", default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(run=train)
    p = sub.add_parser("score")
    p.add_argument("model_dir")
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--betas", type=int, default=14500)
    p.add_argument("--raise-images", type=int, default=100)
    p.add_argument("--no-doubled", action="store_true")
    p.set_defaults(run=score)
    p = sub.add_parser("table")
    p.add_argument("root")
    p.add_argument("--plot", default=None)
    p.add_argument("--match", action="append", default=[], metavar="GLOB", help="run names")
    p.set_defaults(run=table)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
