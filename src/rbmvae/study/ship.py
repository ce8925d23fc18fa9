"""The models of a finished study run made into the package's shipped models (:mod:`rbmvae.zoo`).

``python -m rbmvae.study.ship RUN_DIR [--dest DIR]`` copies each model's float32 weights and
``model.json`` (with the paths of the machine that trained it removed) and writes its card: the
headline test log-likelihood with its estimator and checks, the whole log-likelihood section of
its evaluation, its training settings and seconds, the run's profile, command, commit, wall time
and peak memory, and the quick re-scoring (:func:`rbmvae.zoo.rescore`) that the test suite repeats.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from ..basics.atomic import write_text
from ..basics.errors import RbmvaeError
from ..data import load_dataset
from ..evaluation.sections import EVALUATION_FILE
from ..training.checkpoint import META_FILE, WEIGHTS_FILE, load_model
from ..zoo import CARD_FILE, CARD_FORMAT, RESCORE_IMAGES, models_root, rescore
from .run import METRICS_FILE, MODELS_DIR

CARD_VERSION = 1


def headline(likelihood: dict) -> dict:
    """The figure a model is known by, with how it was estimated and its checks, from the
    ``log_likelihood`` section of its evaluation; an AIS figure that failed a check is None."""
    if "exact" in likelihood:
        part = likelihood["exact"]
        checks = []
        if "ais" in likelihood:
            ais = likelihood["ais"]
            checks.append(
                f"AIS agrees: {ais['mean_log_likelihood']['value']:.2f} "
                f"({ais['effective_runs']['value']:.0f} effective runs of {ais['n_runs']})"
            )
        return {
            "value": part["mean_log_likelihood"]["value"],
            "estimator": part["method"],
            "checks": checks,
            "reliable": True,
        }
    if "ais" in likelihood:
        ais = likelihood["ais"]
        checks = [f"{ais['effective_runs']['value']:.0f} effective runs of {ais['n_runs']}"]
        if "bracket" in ais:
            low, high = ais["bracket"]["low"]["value"], ais["bracket"]["high"]["value"]
            checks.append(f"RAISE-AIS bracket [{low:.2f}, {high:.2f}]")
        if "doubled_betas" in ais:
            checks.append(f"doubled betas move it {ais['doubled_betas']['delta']['value']:+.2f}")
        return {
            "value": ais["mean_log_likelihood"]["value"] if ais["reliable"] else None,
            "estimator": f"AIS, {ais['n_runs']} runs x {ais['n_betas']} betas",
            "checks": checks + list(ais.get("problems", [])),
            "reliable": bool(ais["reliable"]),
        }
    iwae, lower = likelihood["iwae"], likelihood["elbo"]
    checks = [
        f"IWAE standard error {iwae['standard_error']['value']:.2f}",
        f"ELBO {lower['mean']['value']:.2f} +- {lower['standard_error']['value']:.2f}",
        f"{likelihood['active_units']['count']['value']} of "
        f"{likelihood['active_units']['of']} latent units active",
    ]
    if "quadrature" in likelihood:
        quad = likelihood["quadrature"]
        checks.insert(
            0,
            f"IWAE (K = {iwae['k']}) {iwae['mean_log_likelihood']['value']:.2f}, "
            f"{quad['iwae_minus_quadrature']['value']:+.2f} from it",
        )
        if "check" in quad:
            checks.append(
                f"a doubled grid moves it {quad['check']['finer_minus_grid']['value']:+.4f}"
            )
        return {
            "value": quad["mean_log_likelihood"]["value"],
            "estimator": quad["method"],
            "checks": checks,
            "reliable": True,
        }
    return {
        "value": iwae["mean_log_likelihood"]["value"],
        "estimator": iwae["method"],
        "checks": checks,
        "reliable": True,
    }


def _scrubbed(meta: dict) -> dict:
    """``model.json`` without the training machine's paths (the data set keeps its name)."""
    meta = json.loads(json.dumps(meta))
    dataset = meta.get("dataset")
    if isinstance(dataset, dict):
        dataset["source"] = ""
    return meta


def ship_run(
    run_dir: str | Path, dest: str | Path | None = None, command: str | None = None
) -> list[str]:
    """Every model of the run in ``run_dir`` written under ``dest`` (default: the package's
    shipped models); returns their names. ``command`` is the command line that made the run
    (default: the one its settings imply)."""
    run_dir = Path(run_dir)
    dest = Path(dest) if dest is not None else models_root()
    metrics = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    sample = load_dataset("mnist-sample")  # MNIST's test set, and training digits for AIS's base
    test = sample.binarized_test_images(RESCORE_IMAGES, seed=0)
    settings = metrics["settings"]
    provenance = {
        "profile": settings["profile"],
        "command": command
        or f"rbmvae reproduce --profile {settings['profile']} --dataset {settings['dataset']}",
        "commit": metrics.get("commit", "unknown"),
        "modified": metrics.get("modified"),
        "wall_seconds": metrics["seconds"].get("total"),
        "peak_memory_bytes": (metrics.get("peak_memory") or {}).get("value"),
        "package_version": metrics.get("package_version"),
        "dataset": metrics.get("dataset", {}).get("name"),
        "n_train": metrics.get("dataset", {}).get("n_train"),
    }
    names = []
    for name, entry in metrics["models"].items():
        source = run_dir / MODELS_DIR / name
        target = dest / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / WEIGHTS_FILE, target / WEIGHTS_FILE)
        meta = json.loads((source / META_FILE).read_text(encoding="utf-8"))
        write_text(target / META_FILE, json.dumps(_scrubbed(meta), indent=1) + "\n")
        model, _ = load_model(target)
        evaluation = json.loads((source / EVALUATION_FILE).read_text(encoding="utf-8"))
        likelihood = evaluation["log_likelihood"]
        scored = rescore(model, test, sample.train_images)
        if scored.get("log_z_error"):  # a short AIS: how far below the card's log Z it may fall
            long_run = (likelihood.get("exact") or likelihood["ais"])["log_z"]["value"]
            gap = abs(scored["log_z"] - long_run)
            scored["bias_allowance"] = max(1.0, 2 * gap + 3 * scored["log_z_error"])
        card = {
            "format": CARD_FORMAT,
            "format_version": CARD_VERSION,
            "name": name,
            "kind": entry["kind"],
            "label": model.label(),
            "config": entry["config"],
            "headline": {
                **headline(likelihood),
                "unit": "nats per image",
                "test_images": likelihood["test_images"]["description"],
            },
            "log_likelihood": likelihood,
            "training": {
                "config": entry["train_config"],
                "epochs": entry["epochs"],
                "seconds": entry["training_seconds"]["value"],
            },
            "provenance": provenance,
            "rescore": scored,
        }
        write_text(target / CARD_FILE, json.dumps(card, indent=1) + "\n")
        names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rbmvae.study.ship", description=__doc__)
    parser.add_argument("run_dir")
    parser.add_argument("--dest", default=None, help="default: the package's shipped models")
    parser.add_argument("--command", default=None, help="the command line that made the run")
    args = parser.parse_args(argv)
    try:
        names = ship_run(args.run_dir, args.dest, args.command)
    except (RbmvaeError, OSError, KeyError, json.JSONDecodeError) as error:
        print(f"rbmvae: error: {args.run_dir}: {error}", file=sys.stderr)
        return 2
    print("shipped: " + ", ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
