"""Quality per second: rbmvae's RBM recipe and scikit-learn's BernoulliRBM, the same budgets.

Each side trains a 500-hidden RBM on the full training set for each budget (30 s, 2 min and
8 min by default) on one thread, and every model is scored the same way: rbmvae's AIS on all
the stochastically binarized test digits (seed 0), with the rerun at doubled betas and the RAISE
bracket; a figure those checks reject is shown as unreliable, never as a number. The two sides
run at the same time, each on its own core (``--sequential`` runs them one after the other).

- rbmvae: the study's recipe (``reproduce --profile full``: PCD-1 with one persistent chain
  per batch row, SGD with momentum 0.5, weight decay, a rate decaying linearly from 0.02), as
  many whole epochs as a timed pilot says fit in the budget (two epochs of ``fit`` on a tenth of
  the images, the second timed, monitor and optimizer included, scaled to the whole set; the
  schedule needs the number of epochs before it starts); where not one epoch fits, one epoch
  (and a recipe with a rising k then rises to a lower final k).
- scikit-learn: ``BernoulliRBM(n_components=500, random_state=0)`` with its own defaults
  (PCD-1 with mean-field statistics, learning rate 0.1, batches of 10), ``n_iter`` from its
  timed pilot epoch, grey pixels as it is usually given.

Both real training times are shown beside the budget::

    python benchmarks/equal_budget.py --data-dir ../shared/data/mnist run
"""

# ruff: noqa: E402  (the imports below follow the path set-up for `python benchmarks/...`)

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import math
import os
import subprocess
import time

import numpy as np
import torch

import rbmvae
from benchmarks.recipes import ais_score, seconds_per_epoch
from benchmarks.sections import publish
from benchmarks.workloads_compared import _sklearn_to_rbm
from rbmvae.models.rbm import RBM
from rbmvae.study.settings import FULL

HERE = Path(__file__).resolve().parent
SIDES = ("rbmvae", "sklearn")
SECTION = "equal-budget"
# AIS's estimate of Z is unbiased, so by Markov's inequality P(Z_hat >= Z / (1 - c)) <= 1 - c
# (docs/derivation.md, s. 3.3): with probability at least c the true mean test log-likelihood is
# below the AIS figure plus log(1 / (1 - c)), whatever the run's diagnostics say.
CONFIDENCE = 0.99
MARKOV_NATS = math.log(1.0 / (1.0 - CONFIDENCE))
BOUNDS = (
    "Where a figure is unreliable the budgets can still be compared with bounds that do not rest "
    "on the diagnostics. AIS's estimate of the partition function is unbiased, so by Markov's "
    f"inequality the true figure lies below the AIS figure plus log(1 / (1 - {CONFIDENCE:g})) = "
    f"{MARKOV_NATS:.2f} nats with probability at least {CONFIDENCE:.0%} (docs/derivation.md, "
    "s. 3.3); RAISE's end of the bracket errs low (s. 3.7, Eq. 3.11) and does not use AIS's "
    "weights. rbmvae is *higher* at a budget when its conservative end is above scikit-learn's "
    "bound."
)


def _train_rbmvae(data, hidden: int, budget: float) -> tuple[RBM, dict]:
    """The study's recipe for as many epochs as fit in ``budget``; where not even one epoch fits,
    one epoch, and a recipe with a rising k then rises to a lower final k, chosen so that it fits
    (a step costs about ``2 k + 3`` products, so the mean k scales with the time)."""
    config = FULL.train_config("rbm")
    per_epoch = seconds_per_epoch(config, data, hidden)
    if budget < per_epoch and config.k_final:
        mean_k = (config.k + config.k_final) / 2
        fitted = (budget / per_epoch * (2 * mean_k + 3) - 3) / 2
        config = config.replace(k_final=max(config.k, int(2 * fitted - config.k)))
    config = config.replace(epochs=max(1, int(budget / per_epoch)))
    model = RBM(data.train_images.shape[1], hidden)
    started = time.perf_counter()
    rbmvae.fit(model, data, config, progress=False)
    seconds = time.perf_counter() - started
    method = config.method.upper()
    rule = (
        f"{method}, k {config.k} -> {config.k_final}" if config.k_final else f"{method}-{config.k}"
    )
    what = f"{rule}, lr {config.learning_rate}, momentum {config.final_momentum}"
    what += f", batch {config.batch_size}"
    return model, {"epochs": config.epochs, "train_seconds": seconds, "recipe": what}


def _train_sklearn(data, hidden: int, budget: float) -> tuple[RBM, dict]:
    from sklearn.neural_network import BernoulliRBM
    from threadpoolctl import threadpool_limits

    x = np.ascontiguousarray(data.train_images.numpy())
    with threadpool_limits(limits=torch.get_num_threads()):
        pilot = x[: max(1000, x.shape[0] // 10)]
        started = time.perf_counter()
        BernoulliRBM(n_components=hidden, n_iter=1, random_state=0).fit(pilot)
        per_epoch = (time.perf_counter() - started) * x.shape[0] / pilot.shape[0]
        estimator = BernoulliRBM(
            n_components=hidden, n_iter=max(1, round(budget / per_epoch)), random_state=0
        )
        started = time.perf_counter()
        estimator.fit(x)
        seconds = time.perf_counter() - started
    what = f"PCD-1 (mean field), lr {estimator.learning_rate}, batch {estimator.batch_size}"
    return _sklearn_to_rbm(estimator, "cpu"), {
        "epochs": estimator.n_iter,
        "train_seconds": seconds,
        "recipe": what,
    }


def _score(model: RBM, data, args) -> dict:
    return ais_score(model, data, args.images, args.runs, args.betas, args.raise_images)[1]


def side(args) -> None:
    """One side, every budget: train, score, write ``OUT/SIDE-BUDGET.json``."""
    torch.set_num_threads(args.threads)
    data = rbmvae.load_dataset(args.dataset, data_dir=args.data_dir)
    if args.train_images:
        data = data.subset(n_train=args.train_images)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = _train_rbmvae if args.side == "rbmvae" else _train_sklearn
    for budget in args.budgets:
        model, record = train(data, args.hidden, budget)
        rbmvae.save_model(model, out / f"{args.side}-{budget:g}")  # kept for rescoring
        record.update(side=args.side, budget=budget, threads=args.threads)
        record.update(_score(model, data, args))
        (out / f"{args.side}-{budget:g}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(json.dumps({k: record[k] for k in ("side", "budget", "train_seconds", "ll")}))


def _side_command(args, which: str) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--dataset", args.dataset]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    command += ["side", which, "--out", args.out, "--threads", "1"]
    command += ["--budgets", ",".join(f"{b:g}" for b in args.budgets)]
    for name in ("hidden", "images", "runs", "betas", "raise_images", "train_images"):
        value = getattr(args, name)
        if value is not None:
            command += [f"--{name.replace('_', '-')}", str(value)]
    return command


def run(args) -> None:
    """Both sides (at once, one core each, unless ``--sequential``), then the table."""
    sides = [s for s in SIDES if not (s == "sklearn" and args.no_sklearn)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    started = time.perf_counter()
    if args.sequential:
        for which in sides:
            subprocess.run(_side_command(args, which), check=True, env=env)
    else:
        children = [subprocess.Popen(_side_command(args, which), env=env) for which in sides]
        codes = [child.wait() for child in children]
        if any(codes):
            raise SystemExit(f"a side failed (exit codes {codes})")
    print(f"both sides: {time.perf_counter() - started:.0f} s")
    table(args)


def _rows(root: Path) -> list[dict]:
    rows = [json.loads(p.read_text()) for p in sorted(root.glob("*-*.json")) if p.is_file()]
    return sorted(rows, key=lambda r: (r["budget"], SIDES.index(r["side"])))


def upper_bound(row: dict) -> float:
    """The value the row's true mean test log-likelihood stays below with probability at least
    ``CONFIDENCE`` (Markov's inequality on AIS's unbiased Z estimate; nats)."""
    return row["ll"] + MARKOV_NATS


def verdict(rows: list[dict], budget: float) -> str:
    """Whether rbmvae's conservative (RAISE) end is above scikit-learn's Markov bound at
    ``budget``, in words, with the margin in nats."""
    by_side = {r["side"]: r for r in rows if r["budget"] == budget}
    ours, theirs = by_side.get("rbmvae"), by_side.get("sklearn")
    if ours is None or theirs is None:
        return "one side missing"
    if ours["low"] is None or not math.isfinite(ours["low"]):
        return "not stated (rbmvae has no conservative end)"
    margin = ours["low"] - upper_bound(theirs)
    if margin > 0:
        return f"**rbmvae higher**, by at least {margin:.2f} nats"
    return f"not shown (rbmvae's conservative end is {-margin:.2f} nats below the bound)"


def _figure(row: dict) -> str:
    if not row["reliable"]:
        return f"unreliable ({'; '.join(row['problems'])})"
    low = "" if row["low"] is None else f" [{row['low']:.2f}, {row['ll']:.2f}]"
    return f"**{row['ll']:.2f}**{low}"


def render_section(rows: list[dict], plot: str | None) -> str:
    """The section of RESULTS.md: the table and, when ``plot`` is given, the figure."""
    lines = [
        "## Quality per second: rbmvae's recipe against scikit-learn's BernoulliRBM",
        "",
        __doc__.split("\n\n")[1].replace("\n", " ").replace("``", "`"),
        "",
        __doc__.split("\n\n")[2].replace("``", "`"),
        "",
        BOUNDS,
        "",
        "| budget | side | recipe | epochs | real training s | AIS test log-likelihood "
        f"(RAISE bracket) | ESS (of runs) | doubled betas | RAISE end | below ({CONFIDENCE:.0%}) |",
        "| ---: | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        delta = "-" if r["delta"] is None else f"{r['delta']:+.2f}"
        low = "-" if r["low"] is None else f"{r['low']:.2f}"
        lines.append(
            f"| {r['budget']:g} s | {r['side']} | {r['recipe']} | {r['epochs']} "
            f"| {r['train_seconds']:.1f} | {_figure(r)} | {r['ess']:.1f} ({r['runs']}) "
            f"| {delta} | {low} | {upper_bound(r):.2f} |"
        )
    budgets = sorted({r["budget"] for r in rows})
    if budgets:
        lines += [
            "",
            "| budget | rbmvae's RAISE end against scikit-learn's bound |",
            "| ---: | --- |",
        ]
        lines += [f"| {b:g} s | {verdict(rows, b)} |" for b in budgets]
    scored = rows[0] if rows else None
    if scored:
        lines += [
            "",
            f"AIS: {scored['runs']} runs, {scored['betas']} betas, on {scored['test_images']} "
            f"test digits; one thread per side ({scored['threads']}).",
        ]
    if plot:
        lines += ["", f"![equal budget]({Path(plot).name})"]
    return "\n".join(lines)


def _plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for which in SIDES:
        mine = [r for r in rows if r["side"] == which]
        if mine:
            xs = [r["train_seconds"] for r in mine]
            (line,) = ax.plot(xs, [r["ll"] for r in mine], marker="o", label=which)
            for r in mine:
                if not r["reliable"]:
                    ax.plot(r["train_seconds"], r["ll"], marker="x", color="k", markersize=9)
                # from the conservative end (where there is one) up to the Markov bound
                low = r["low"] if r["low"] is not None and math.isfinite(r["low"]) else r["ll"]
                ax.plot([r["train_seconds"]] * 2, [low, upper_bound(r)], color=line.get_color())
                ax.plot(r["train_seconds"], upper_bound(r), marker="_", color=line.get_color())
    # The view holds every figure and bound; a RAISE end far below its figure runs off it.
    shown = [v for r in rows for v in (r["ll"], upper_bound(r))]
    shown += [r["low"] for r in rows if r["low"] is not None and r["ll"] - r["low"] < 20]
    if shown:
        ax.set_ylim(min(shown) - 2, max(shown) + 2)
    ax.set_xscale("log")
    ticks = sorted({round(r["train_seconds"]) for r in rows})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("real training time, s (1 thread)")
    ax.set_ylabel("AIS test log-likelihood (nats)")
    ax.set_title(
        "RBM, 500 hidden, the same budgets (x: unreliable)\n"
        f"bars: from the RAISE end up to the {CONFIDENCE:.0%} bound",
        fontsize=8,
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def table(args) -> None:
    rows = _rows(Path(args.out))
    if args.plot:
        _plot(rows, args.plot)
    publish(args.results, SECTION, render_section(rows, args.plot))


def _budgets(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("run", run), ("side", side), ("table", table)):
        p = sub.add_parser(name)
        p.set_defaults(func=func)
        if name == "side":
            p.add_argument("side", choices=SIDES)
            p.add_argument("--threads", type=int, default=1)
        p.add_argument("--out", default="runs/equal-budget")
        p.add_argument("--budgets", type=_budgets, default=[30.0, 120.0, 480.0])
        p.add_argument("--hidden", type=int, default=500)
        p.add_argument("--images", type=int, default=None, help="test digits (default all)")
        p.add_argument("--runs", type=int, default=100)
        p.add_argument("--betas", type=int, default=14500)
        p.add_argument("--raise-images", type=int, default=100)
        p.add_argument("--train-images", type=int, default=None)
        p.add_argument("--plot", default=str(HERE / "equal-budget.png"))
        p.add_argument("--results", default=str(HERE / "RESULTS.md"))
        p.add_argument("--sequential", action="store_true")
        p.add_argument("--no-sklearn", action="store_true")
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
