"""The drop-in against the original: scikit-learn's ``BernoulliRBM`` and
``rbmvae.sklearn.BernoulliRBM`` fitted side by side at scikit-learn's defaults.

Both fit the same rows with scikit-learn's default settings (256 hidden units, learning rate 0.1,
batches of 10, 10 passes) and the same ``random_state``, in one process, one after the other
(which one goes first alternating from repeat to repeat), each after a warm-up fit; the table
gives the median seconds per ``fit`` with their range, rbmvae's time over scikit-learn's, and the
share of the CPUs that other processes took meanwhile (and the ratio of the two sides' CPU
time, which other processes disturb less). The first fit of each in a fresh process
(the libraries imported, nothing run yet: what a new user waits for) is timed apart, in a
subprocess per side. The data: the 8x8 digits (all 1,797, scaled to [0, 1], float64 as
scikit-learn gives them) and the first ``--mnist-train`` MNIST training digits (float32 in
[0, 1], as ``rbmvae.load_dataset`` reads them)::

    python benchmarks/sklearn_dropin.py --data-dir ../shared/data/mnist
"""

# ruff: noqa: E402  (the imports below follow the path set-up for `python benchmarks/...`)

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import platform
import resource
import subprocess
import time

import numpy as np
import sklearn
import torch
from sklearn.datasets import load_digits
from sklearn.neural_network import BernoulliRBM as SklearnRBM
from threadpoolctl import threadpool_limits

import rbmvae
from benchmarks.harness import cpu_times, others_cpu_share, summary
from benchmarks.sections import publish
from rbmvae.sklearn import BernoulliRBM

HERE = Path(__file__).resolve().parent
SECTION = "sklearn-dropin"
SIDES = ("scikit-learn", "rbmvae")


def load_problems(args) -> dict[str, np.ndarray]:
    """The rows each side fits, by name: the 8x8 digits and, when there is MNIST, its first
    ``args.mnist_train`` training digits."""
    problems = {"8x8 digits": load_digits().data[: args.digits_rows] / 16.0}
    if args.mnist_train > 0 and (args.data_dir or args.dataset != "mnist"):
        data = rbmvae.load_dataset(args.dataset, data_dir=args.data_dir, download=False)
        problems[f"MNIST, first {args.mnist_train:,}"] = data.train_images[
            : args.mnist_train
        ].numpy()
    return problems


def estimator(side: str, args, n_iter: int | None = None):
    """A fresh estimator of ``side`` with scikit-learn's defaults (``args`` may shrink them)."""
    cls = SklearnRBM if side == "scikit-learn" else BernoulliRBM
    n_iter = args.n_iter if n_iter is None else n_iter
    return cls(n_components=args.n_components, n_iter=n_iter, random_state=args.seed)


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_fit(model, X) -> tuple[float, float]:
    """Seconds of ``model.fit(X)``: real time, and this process's CPU time."""
    started, cpu = time.perf_counter(), time.process_time()
    model.fit(X)
    return time.perf_counter() - started, time.process_time() - cpu


def measure_problem(X: np.ndarray, args) -> dict:
    """Warm-up fits, then ``args.repeats`` timed fits of each side, alternating which goes
    first; the seconds of each side and the others' CPU share over the timed fits."""
    for side in SIDES:
        estimator(side, args, n_iter=1).fit(X)
    seconds: dict[str, list[float]] = {side: [] for side in SIDES}
    cpu: dict[str, list[float]] = {side: [] for side in SIDES}
    before, own_before, started = cpu_times(), _own_cpu_seconds(), time.perf_counter()
    for repeat in range(args.repeats):
        for side in SIDES if repeat % 2 == 0 else SIDES[::-1]:
            real, used = time_fit(estimator(side, args), X)
            seconds[side].append(real)
            cpu[side].append(used)
    wall, own = time.perf_counter() - started, _own_cpu_seconds() - own_before
    return {
        "rows": int(X.shape[0]),
        "features": int(X.shape[1]),
        "dtype": str(X.dtype),
        "seconds": {side: summary(values) for side, values in seconds.items()},
        "cpu_seconds": {side: summary(values) for side, values in cpu.items()},
        "others_cpu_share": others_cpu_share(before, cpu_times(), own, wall),
    }


def cold_fit(problem: str, side: str, args) -> float | None:
    """Seconds of the first fit of ``side`` in a fresh process (both libraries imported first)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--cold", side, "--problem", problem]
    command += _data_flags(args)
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        print(f"  cold fit of {side} failed: {(done.stderr or done.stdout).strip()[-300:]}")
        return None
    return float(lines[-1].split()[1])


def _data_flags(args) -> list[str]:
    flags = ["--dataset", args.dataset, "--mnist-train", str(args.mnist_train)]
    flags += ["--n-iter", str(args.n_iter)]
    if args.digits_rows is not None:  # None: all of them, the default of the subprocess too
        flags += ["--digits-rows", str(args.digits_rows)]
    flags += ["--n-components", str(args.n_components), "--seed", str(args.seed)]
    flags += ["--threads", str(args.threads)]
    return flags + (["--data-dir", args.data_dir] if args.data_dir else [])


def measure(args) -> dict:
    results = {
        "threads": args.threads,
        "repeats": args.repeats,
        "n_iter": args.n_iter,
        "n_components": args.n_components,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
            "rbmvae": rbmvae.__version__,
        },
        "cpu_count": os.cpu_count(),
        "problems": {},
    }
    for name, X in load_problems(args).items():
        print(f"{name}: {X.shape[0]} x {X.shape[1]} {X.dtype} ...", flush=True)
        result = measure_problem(X, args)
        if args.cold:
            result["cold"] = {side: cold_fit(name, side, args) for side in SIDES}
        results["problems"][name] = result
        medians = {side: result["seconds"][side]["median"] for side in SIDES}
        print(f"  {medians}, others' CPU {result['others_cpu_share']}", flush=True)
    return results


def _seconds(timing: dict) -> str:
    return f"{timing['median']:.2f} ({timing['min']:.2f}-{timing['max']:.2f})"


def render_section(results: dict) -> str:
    """The section of RESULTS.md: the settings, the table and how to read it."""
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    lines = [
        "## The scikit-learn drop-in at scikit-learn's defaults",
        "",
        " ".join(__doc__.split("\n\n")[1].replace("``", "`").split()).rstrip(":") + ".",
        "",
        f"`python benchmarks/sklearn_dropin.py`: {results['n_components']} hidden units, "
        f"{results['n_iter']} passes, {results['repeats']} timed fits of each side; "
        f"{results['threads']} thread(s) each (torch's and NumPy's BLAS); "
        f"{results['cpu_count']} logical CPUs; {versions}.",
        "",
        "| data | rows x features | dtype | scikit-learn s/fit | rbmvae s/fit "
        "| rbmvae / scikit-learn | goal: <= 1 | the same in CPU time | first fit in a fresh "
        "process: scikit-learn / rbmvae s | others' CPU |",
        "| --- | ---: | --- | ---: | ---: | ---: | :---: | ---: | ---: | ---: |",
    ]
    for name, result in results["problems"].items():
        theirs, ours = (result["seconds"][side] for side in SIDES)
        ratio = ours["median"] / theirs["median"]
        cpu = result["cpu_seconds"]
        cpu_ratio = cpu["rbmvae"]["median"] / cpu["scikit-learn"]["median"]
        cold = result.get("cold") or {}
        cold_text = " / ".join("-" if cold.get(s) is None else f"{cold[s]:.2f}" for s in SIDES)
        share = result["others_cpu_share"]
        lines.append(
            f"| {name} | {result['rows']:,} x {result['features']} | {result['dtype']} "
            f"| {_seconds(theirs)} | {_seconds(ours)} | {ratio:.2f} "
            f"| {'met' if ratio <= 1 else f'missed by {ratio - 1:.0%}'} | {cpu_ratio:.2f} "
            f"| {cold_text} "
            f"| {'-' if share is None else f'{share:.0%}'} |"
        )
    lines += [
        "",
        "Timings with others' CPU above a few percent are disturbed: the two sides then shared "
        "the machine with other work, both alike (they alternate), but a busy machine can "
        "favour either; such a table is to be measured again on a quiet machine.",
    ]
    return "\n".join(lines)


def run_cold(args) -> None:
    """``--cold SIDE``: one fit in this fresh process, its seconds printed as ``RESULT s``."""
    X = load_problems(args)[args.problem]
    print(f"RESULT {time_fit(estimator(args.cold_side, args), X)[0]}")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="MNIST's four IDX files (else digits)")
    parser.add_argument("--dataset", default="mnist", help="rbmvae data set name for the MNIST row")
    parser.add_argument("--mnist-train", type=int, default=10000, help="MNIST rows (0: none)")
    parser.add_argument("--digits-rows", type=int, default=None, help="the first N digits")
    parser.add_argument("--n-components", type=int, default=256)
    parser.add_argument("--n-iter", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="threads of each side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cold", dest="cold", action="store_false", help="skip the cold fits")
    parser.add_argument("--json", default=None, help="also write the raw figures here")
    parser.add_argument("--from-json", default=None, help="render these figures, measure nothing")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--cold", dest="cold_side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--problem", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):  # NumPy's BLAS, for scikit-learn
        if args.cold_side:
            run_cold(args)
            return {}
        measured = json.loads(Path(args.from_json).read_text()) if args.from_json else None
        results = measured or measure(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    publish(args.results, SECTION, render_section(results))
    return results


if __name__ == "__main__":
    main()
