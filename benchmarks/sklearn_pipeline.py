"""scikit-learn's classic pipeline, RBM features then logistic regression, with
``from rbmvae.sklearn import BernoulliRBM`` next to scikit-learn's own ``BernoulliRBM``.

The same pipeline, settings and split for each implementation; the table gives the RBM's fit
time, the logistic regression's, and the test accuracy. The 8x8 digits ship with scikit-learn
(offline, seconds); MNIST is read with ``rbmvae.load_dataset`` from ``--data-dir`` (the four
standard IDX files)::

    python benchmarks/sklearn_pipeline.py                      # the 8x8 digits only
    python benchmarks/sklearn_pipeline.py --data-dir DIR       # and MNIST from DIR
    python benchmarks/sklearn_pipeline.py --data-dir DIR --mnist-train 10000 --threads 2

Needs ``pip install 'rbmvae[sklearn]'``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SklearnRBM

import rbmvae
from rbmvae.sklearn import BernoulliRBM

# scikit-learn's example (plot_rbm_logistic_classification): 100 hidden units, rate 0.06,
# 10 passes, logistic regression with C = 6000. The same for MNIST, with 256 hidden units.
DIGITS = {"n_components": 100, "learning_rate": 0.06, "n_iter": 10, "C": 6000.0}
MNIST = {"n_components": 256, "learning_rate": 0.06, "n_iter": 10, "C": 100.0}


def digits_split() -> tuple[np.ndarray, ...]:
    """The 8x8 digits scaled to [0, 1], split 80/20 (seed 0): X_train, X_test, y_train, y_test."""
    data = load_digits()
    return tuple(train_test_split(data.data / 16.0, data.target, test_size=0.2, random_state=0))


def mnist_split(data_dir: str, n_train: int | None, n_test: int | None) -> tuple[np.ndarray, ...]:
    """MNIST from ``data_dir``: the first ``n_train`` training and ``n_test`` test images."""
    data = rbmvae.load_dataset(data_dir=data_dir)
    return (
        data.train_images[:n_train].numpy(),
        data.test_images[:n_test].numpy(),
        data.train_labels[:n_train].numpy(),
        data.test_labels[:n_test].numpy(),
    )


def estimators(settings: dict, seed: int, device: str, extras: bool) -> dict[str, object]:
    """The RBMs compared, by name, all with ``settings``' hidden units, rate and passes."""
    common = {k: settings[k] for k in ("n_components", "learning_rate", "n_iter")}
    chosen = {
        "scikit-learn": SklearnRBM(**common, random_state=seed),
        "rbmvae": BernoulliRBM(**common, random_state=seed, device=device),
    }
    if extras:  # rbmvae.fit's own recipe (TrainConfig's RBM defaults), opted into
        common["learning_rate"] = 0.05
        chosen["rbmvae, its own recipe"] = BernoulliRBM(
            **common,
            batch_size=100,
            method="cd",
            momentum=0.5,
            final_momentum=0.9,
            weight_decay=1e-4,
            lr_schedule="linear",
            binarize="stochastic",
            init="marginals",
            random_state=seed,
            device=device,
        )
    return chosen


def run_pipeline(rbm, C: float, split: tuple[np.ndarray, ...]) -> dict[str, float]:
    """Fit ``rbm`` then a logistic regression on its features; times and test accuracy."""
    X_train, X_test, y_train, y_test = split
    started = time.perf_counter()
    rbm = clone(rbm).fit(X_train)
    rbm_seconds = time.perf_counter() - started
    features_train, features_test = rbm.transform(X_train), rbm.transform(X_test)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier = LogisticRegression(C=C, max_iter=1000).fit(features_train, y_train)
    return {
        "rbm_fit_seconds": rbm_seconds,
        "logistic_fit_seconds": time.perf_counter() - started,
        "accuracy": float(classifier.score(features_test, y_test)),
    }


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="directory of MNIST's four IDX files (else digits only)")
    parser.add_argument("--mnist-train", type=int, default=None, help="first N training images")
    parser.add_argument("--mnist-test", type=int, default=None, help="first N test images")
    parser.add_argument("--n-iter", type=int, default=None, help="passes (default: 10)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for both")
    parser.add_argument("--device", default="cpu", help="rbmvae's device: cpu, cuda, auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-extras", action="store_true", help="skip the opt-in recipe row")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    limits = None
    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        limits = threadpool_limits(limits=args.threads)  # NumPy's BLAS, for scikit-learn
    problems = [("digits", DIGITS, digits_split)]
    if args.data_dir:
        problems.append(
            ("mnist", MNIST, lambda: mnist_split(args.data_dir, args.mnist_train, args.mnist_test))
        )
    rows = []
    header = (
        f"{'data':<8} {'n_train':>7} {'estimator':<34} {'RBM fit s':>9} {'LR fit s':>8} {'acc':>6}"
    )
    print(header)
    for name, settings, load in problems:
        settings = {**settings, **({"n_iter": args.n_iter} if args.n_iter else {})}
        split = load()
        for label, rbm in estimators(settings, args.seed, args.device, not args.no_extras).items():
            result = run_pipeline(rbm, settings["C"], split)
            row = {"data": name, "n_train": len(split[0]), "estimator": label, **result}
            rows.append(row)
            print(
                f"{name:<8} {row['n_train']:>7} {label:<34} {result['rbm_fit_seconds']:>9.2f} "
                f"{result['logistic_fit_seconds']:>8.2f} {result['accuracy']:>6.3f}",
                flush=True,
            )
    if limits is not None:
        limits.restore_original_limits()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"settings": vars(args), "rows": rows}, handle, indent=2)
    return rows


if __name__ == "__main__":
    main()
