"""Time to the first result, two commits side by side on one host: fresh clones of each, their
virtual environments, ``make test`` (and pytest's own time within it), pytest with line coverage,
``make demo`` and ``rbmvae reproduce --profile quick``; then a table with the host's GFLOP/s.

    python3 benchmarks/time_to_first_result.py                  # 07b14b4 against HEAD
    python3 benchmarks/time_to_first_result.py --old A --new B --workdir /tmp/ttfr --keep

Needs only the standard library (each clone builds its own environment with ``make venv``); the
commits are cloned from this checkout, ``../shared`` (full MNIST for the tests that use it) is
linked beside the clones, and each side gets a fresh data cache (``RBMVAE_DATA_DIR``), as a new
user would. Every step runs for the old commit, then for the new one, so that a change in the
machine's load hits both; the load average before each step is recorded beside its time. About
40 minutes on a 2-core host: run it on a quiet machine. Prints the table and writes
``results.json`` into the work directory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GFLOPS_CODE = (
    "import time, torch; torch.set_num_threads(2); n = 2048;"
    "a, b = torch.randn(n, n), torch.randn(n, n); [a @ b for _ in range(3)];"
    "t = time.perf_counter(); [a @ b for _ in range(10)];"
    "print(10 * 2 * n**3 / (time.perf_counter() - t) / 1e9)"
)


def run(command: list[str], cwd: Path, env: dict, log: Path) -> tuple[float, str]:
    """``command`` in ``cwd``; returns its wall seconds and its output (also appended to ``log``).
    A failure is reported, not raised: a step that fails on one commit still times the other."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    output = done.stdout + done.stderr
    with log.open("a", encoding="utf-8") as stream:
        stream.write(f"\n$ {' '.join(command)}  (exit {done.returncode}, {seconds:.1f} s)\n")
        stream.write(output)
    if done.returncode:
        print(f"  exit status {done.returncode}: {' '.join(command)} (see {log})", flush=True)
    return seconds, output


def pytest_seconds(output: str) -> float | None:
    """pytest's own time from its last summary line (``... passed ... in 123.45s ...``)."""
    found = re.findall(r"=+ .*? in ([0-9.]+)s", output)
    return float(found[-1]) if found else None


def pytest_outcome(output: str) -> str:
    """The counts of pytest's last summary line (``571 passed, 8 skipped``)."""
    found = re.findall(r"=+ (\d+ (?:passed|failed).*?) in [0-9.]+s", output)
    return found[-1] if found else "?"


def coverage_percent(output: str) -> float | None:
    """The TOTAL line's percentage of pytest-cov's terminal report."""
    found = re.findall(r"^TOTAL\s.*?(\d+(?:\.\d+)?)%\s*$", output, flags=re.MULTILINE)
    return float(found[-1]) if found else None


def pytest_command(clone: Path, env: dict) -> list[str]:
    """The pytest command of the clone's ``make test`` (with its worker options), from
    ``make -n test``; plain ``.venv/bin/python -m pytest`` where none is found."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "test"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if "-m pytest" in line]
    return lines[-1].split() if lines else [".venv/bin/python", "-m", "pytest"]


def load() -> float:
    return os.getloadavg()[0]


def clone(commit: str, where: Path) -> str:
    """A fresh clone of this checkout's repository at ``commit`` (resolved here, so that HEAD is
    this checkout's); returns the short hash."""
    resolve = ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{commit}^{{commit}}"]
    sha = subprocess.run(resolve, check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(where)], check=True)
    subprocess.run(["git", "-C", str(where), "checkout", "--quiet", "--detach", sha], check=True)
    return sha[:7]


def measure(sides: dict[str, Path], work: Path, only: tuple[str, ...] = ()) -> dict:
    """Every step (those whose names start with one of ``only``, when given; the venv is always
    built) for each side in turn; returns ``{side: {step: value}}``."""
    results = {side: {"load": {}} for side in sides}
    envs = {}
    for side in sides:
        env = dict(os.environ)
        env["RBMVAE_DATA_DIR"] = str(work / f"cache-{side}")
        env.pop("VIRTUAL_ENV", None)
        envs[side] = env
    logs = {side: work / f"{side}.log" for side in sides}

    def step(name, command_for, after=None):
        if only and name != "venv build (s)" and not name.startswith(only):
            return
        for side, path in sides.items():
            print(f"{side}: {name}", flush=True)
            results[side]["load"][name] = round(load(), 2)
            seconds, output = run(command_for(side, path), path, envs[side], logs[side])
            results[side][name] = round(seconds, 1)
            if after is not None:
                after(side, path, output)

    def add_pytest_cov(side, path, output):
        venv_python = path / ".venv" / "bin" / "python"
        probe = subprocess.run([str(venv_python), "-c", "import pytest_cov"], capture_output=True)
        if probe.returncode:
            pip = [str(venv_python), "-m", "pip", "install", "--quiet", "pytest-cov"]
            run(pip, path, envs[side], logs[side])

    step("venv build (s)", lambda s, p: ["make", "venv"], add_pytest_cov)
    step("make venv, already built (s)", lambda s, p: ["make", "venv"])

    def read_tests(side, path, output):
        results[side]["pytest within make test (s)"] = pytest_seconds(output)
        results[side]["tests"] = pytest_outcome(output)

    step("make test (s)", lambda s, p: ["make", "test"], read_tests)

    def read_coverage(side, path, output):
        results[side]["line coverage (%)"] = coverage_percent(output)
        results[side]["coverage outcome"] = pytest_outcome(output)

    # One coverage configuration for both commits: the code run in the tests' subprocesses
    # (the command line, spawned workers) is measured too, as coverage 7.10's patches allow.
    rc = work / "coveragerc"
    rc.write_text("[run]\npatch = subprocess\nconcurrency = multiprocessing,thread\n")
    step(
        "pytest with coverage (s)",
        lambda s, p: [
            *pytest_command(p, envs[s]),
            "--cov=rbmvae",
            f"--cov-config={rc}",
            "--cov-report=term",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        read_coverage,
    )
    step("make demo (s)", lambda s, p: ["make", "demo"])

    def read_metrics(side, path, output):
        metrics = path / "runs" / "quick-timed" / "metrics.json"
        if metrics.is_file():
            seconds = json.loads(metrics.read_text())["seconds"]
            results[side]["reproduce steps (s)"] = {k: round(v, 1) for k, v in seconds.items()}

    def reproduce(side, path):
        shutil.rmtree(work / f"cache-{side}", ignore_errors=True)  # a new user's first run
        command = ".venv/bin/rbmvae reproduce --profile quick --out runs/quick-timed --quiet"
        return command.split()

    step("reproduce --profile quick (s)", reproduce, read_metrics)
    return results


def table(results: dict, gflops: float, commits: dict) -> str:
    old, new = list(results)
    rows = [
        "venv build (s)",
        "make venv, already built (s)",
        "make test (s)",
        "pytest within make test (s)",
        "tests",
        "pytest with coverage (s)",
        "line coverage (%)",
        "make demo (s)",
        "reproduce --profile quick (s)",
    ]
    lines = [
        f"host: {os.cpu_count()} cores, {gflops:.0f} GFLOP/s (2048^3 float32 product, 2 threads)",
        "",
        f"| | {old} ({commits[old]}) | {new} ({commits[new]}) | {new} / {old} |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        a, b = results[old].get(row), results[new].get(row)
        both = isinstance(a, int | float) and isinstance(b, int | float) and a
        ratio = f"{b / a:.2f}" if both and "%" not in row and row != "tests" else ""
        lines.append(f"| {row} | {a} | {b} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="07b14b4", help="the commit to compare with")
    parser.add_argument("--new", default="HEAD", help="the commit measured")
    parser.add_argument("--workdir", help="where the clones go (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the clones afterwards")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated step names (or their starts) to run, e.g. 'pytest with,reproduce'",
    )
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ttfr-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    shared = ROOT.parent / "shared"
    if shared.is_dir() and not (work / "shared").exists():
        (work / "shared").symlink_to(shared)
    sides, commits = {}, {}
    for side, commit in (("old", args.old), ("new", args.new)):
        path = work / side
        commits[side] = clone(commit, path)
        sides[side] = path
    print(f"clones in {work}: old {commits['old']}, new {commits['new']}", flush=True)
    try:
        only = tuple(part.strip() for part in args.only.split(",") if part.strip())
        results = measure(sides, work, only)
        python = str(sides["new"] / ".venv" / "bin" / "python")
        done = subprocess.run([python, "-c", GFLOPS_CODE], capture_output=True, text=True)
        gflops = float(done.stdout.strip() or "nan")
        report = table(results, gflops, commits)
        record = {"commits": commits, "gflops": gflops, "results": results}
        (work / "results.json").write_text(json.dumps(record, indent=2) + "\n")
        print(report)
        for side in results:
            print(f"{side} reproduce steps: {results[side].get('reproduce steps (s)')}")
        print(f"details: {work / 'results.json'}, logs: {work}/old.log, {work}/new.log")
    finally:
        if not args.keep:
            for path in sides.values():
                shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
