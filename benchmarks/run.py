"""Benchmarks of rbmvae: speed against the hardware's floor and against what users would pick.

One command runs everything and writes ``benchmarks/RESULTS.md``::

    .venv/bin/python benchmarks/run.py --data-dir DIR   # full MNIST (60,000 x 784) in DIR
    .venv/bin/python benchmarks/run.py --quick     # a smoke run: fewer repeats, smaller workloads
    .venv/bin/python benchmarks/run.py --device cuda

Every workload runs in a fresh Python subprocess (``harness``), so that its peak memory and its
caches are its own. The first workload measures the floor in the same run: float32
matrix-multiply time for a large square product and for every product shape the workloads use,
and the time of one uniform random draw. The floor of a workload is the time its own products
and random draws take in isolation (``costs``); the tables give measured / floor.

Timings on a shared machine swing with other processes: before each workload the runner waits
(``--max-wait`` seconds at most) until the CPUs are quiet, runs a disturbed workload again
(``--retries``), and RESULTS.md records how busy they were.
"""

# ruff: noqa: E402  (the imports below follow the path set-up for `python benchmarks/run.py`)

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the benchmarks package sits beside src/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import tempfile
import time

from benchmarks.harness import run_reproduce, run_with_retries, wait_for_idle
from benchmarks.render import machine_info, print_table, render
from benchmarks.sections import kept_tail
from benchmarks.settings import Settings
from benchmarks.workloads import plan, run_workload
from rbmvae.basics.devices import resolve_device

DEFAULT_OUT = Path(__file__).resolve().with_name("RESULTS.md")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and few")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    parser.add_argument("--dataset", default="mnist", help="data set name (default mnist)")
    parser.add_argument("--data-dir", help="directory of the four standard IDX files")
    parser.add_argument(
        "--out",
        help="RESULTS.md path (default benchmarks/RESULTS.md; with --quick, none unless given)",
    )
    parser.add_argument(
        "--json",
        help="also write every raw figure to this JSON file, after each workload (trained "
        "models go to FILE.models/)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the workloads already in the --json file and run the rest",
    )
    parser.add_argument(
        "--only",
        help="comma-separated workload labels or prefixes to run "
        "(the floor always runs), e.g. rbm-pcd1-h500,sklearn-h500",
    )
    parser.add_argument("--no-sklearn", action="store_true", help="skip the scikit-learn parts")
    parser.add_argument(
        "--reproduce",
        action="store_true",
        help="also time `rbmvae reproduce --profile full` (about 10 minutes)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=900.0,
        help="seconds to wait for a quiet machine before each workload (0: never)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="run a workload again when other processes disturbed it, up to this many times",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--label", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {
        "device": args.device,
        "threads": args.threads,
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "reproduce": args.reproduce,
    }
    if args.no_sklearn:
        overrides["sklearn"] = False
    settings = Settings.quick(**overrides) if args.quick else Settings(**overrides)
    if settings.sklearn:
        try:
            import sklearn  # noqa: F401  (optional: the bench extra)
        except ImportError:
            print("scikit-learn is absent (pip install -e '.[bench]'): skipping its parts")
            settings.sklearn = False
    if settings.device.startswith("cuda"):
        resolve_device(settings.device)  # refuses cuda where there is none
    return settings


def run_all(
    settings: Settings,
    only: list[str] | None = None,
    max_wait: float = 900.0,
    workdir: Path | None = None,
    log=print,
    retries: int = 2,
    previous: dict | None = None,
    save=None,
) -> dict:
    """Run the plan (or the steps whose label starts with one of ``only``), one subprocess each.

    A workload during which other processes took more than 5% of the CPUs runs again (up to
    ``retries`` times, after waiting for quiet); the least disturbed attempt is kept. Workloads
    in ``previous`` that did not fail are kept as they are (a resumed run); ``save(results)`` is
    called after every workload. Trained models pass from one workload to the next through
    ``workdir`` (a temporary directory if None)."""
    results = {k: v for k, v in (previous or {}).items() if "error" not in v}
    with tempfile.TemporaryDirectory(prefix="rbmvae-bench-") as scratch:
        workdir = Path(workdir or scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        for step in plan(settings):
            wanted = step.label in ("floor", "baseline") or not only
            wanted = wanted or any(step.label.startswith(prefix) for prefix in only)
            if not wanted or (step.workload == "sklearn_rbm" and not settings.sklearn):
                continue
            if step.label in results:
                log(f"{step.label}: kept from the earlier run")
                continue
            result = run_with_retries(
                step.workload, settings, workdir, step.params, step.label, retries, max_wait, log
            )
            results[step.label] = result
            if "error" in result:
                log(f"  failed: {result['error']}")
            if save is not None:
                save(results)
        if settings.reproduce and "reproduce-full" not in results:
            if max_wait > 0:
                wait_for_idle(max_wait, log=log)
            log("reproduce --profile full ...")
            results["reproduce-full"] = run_reproduce(settings, workdir)
            if save is not None:
                save(results)
    return results


def _json_saver(raw: Path):
    """``save(results)``: ``raw`` rewritten whole, through a partial file and a rename."""

    def save(results: dict) -> None:
        partial = raw.with_name(raw.name + ".partial")
        partial.write_text(json.dumps(results, indent=1) + "\n")
        partial.replace(raw)

    return save


def _public_args(argv: list[str]) -> list[str]:
    """The flags as RESULTS.md records them: without ``--json``, ``--out`` and ``--resume``, whose
    values are paths of the machine that ran them, not settings of the run."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--json", "--out"):
            skip = True
        elif arg != "--resume" and not arg.startswith(("--json=", "--out=")):
            kept.append(arg)
    return kept


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:  # inside a workload's subprocess
        settings = Settings.from_json(args.settings)
        params = json.loads(args.params)
        result = run_workload(args.worker, settings, Path(args.workdir), params, label=args.label)
        print("RESULT " + json.dumps(result))
        return 0
    settings = settings_from_args(args)
    only = [p.strip() for p in args.only.split(",")] if args.only else None
    started = time.perf_counter()
    previous, save, workdir = None, None, None
    if args.json:
        raw = Path(args.json)
        workdir = raw.with_name(raw.name + ".models")  # kept, so that --resume finds the models
        if args.resume and raw.exists():
            previous = json.loads(raw.read_text())
        save = _json_saver(raw)
    elif args.resume:
        raise SystemExit("--resume needs --json FILE (the figures of the run to continue)")
    results = run_all(
        settings, only, args.max_wait, workdir, retries=args.retries, previous=previous, save=save
    )
    command = "benchmarks/run.py " + " ".join(
        _public_args(argv if argv is not None else sys.argv[1:])
    )
    print_table(results, settings)
    print(f"total {time.perf_counter() - started:.0f} s")
    text = render(results, settings, machine_info(settings), command.strip())
    out = args.out or (None if args.quick else str(DEFAULT_OUT))
    if out:
        tail = kept_tail(out)  # the study scripts' sections and the hand-measured parts
        if tail:
            text = text.rstrip("\n") + "\n\n" + tail
        Path(out).write_text(text)
        print(f"wrote {out}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
