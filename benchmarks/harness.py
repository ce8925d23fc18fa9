"""The timing harness: clocks, the ``Worker`` a workload runs in, one subprocess per workload.

Every workload runs in a fresh Python subprocess (``python benchmarks/run.py --worker NAME``), so
that its peak memory (the resident set size from ``getrusage``, which sees torch's allocations
where ``tracemalloc`` does not) is its own and no workload inherits another's warm caches. The
parent waits for quiet CPUs before each workload and runs a disturbed one again.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from benchmarks.costs import Gemm
from benchmarks.settings import DISTURBED, N_VISIBLE, Settings
from rbmvae.basics.rng import make_generator
from rbmvae.data import Dataset, load_dataset
from rbmvae.models import build_model
from rbmvae.training.checkpoint import load_model, save_model

RUNNER = Path(__file__).resolve().with_name("run.py")


def summary(values: list[float]) -> dict:
    """``{"median", "min", "max", "n"}`` of a list of measurements."""
    values = [float(v) for v in values]
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so that a clock read after it is honest."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_call(fn, device: str, min_seconds: float, repeats: int = 5) -> dict:
    """Per-call seconds of ``fn``: ``repeats`` timings, each looping until ``min_seconds``."""
    fn()
    synchronize(device)
    started = time.perf_counter()
    fn()
    synchronize(device)
    once = max(time.perf_counter() - started, 1e-7)
    loops = max(1, math.ceil(min_seconds / once))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(loops):
            fn()
        synchronize(device)
        times.append((time.perf_counter() - started) / loops)
    return summary(times)


def make_gemm_operands(gemm: Gemm, device: str):
    """Operands of ``gemm`` in its layout (transposed operands are views, as in the code)."""
    generator = torch.Generator(device=device).manual_seed(0)

    def matrix(rows: int, cols: int, transposed: bool):
        if transposed:
            return torch.rand(cols, rows, generator=generator, device=device).t()
        return torch.rand(rows, cols, generator=generator, device=device)

    a = matrix(gemm.m, gemm.k, gemm.layout[0] == "T")
    b = matrix(gemm.k, gemm.n, gemm.layout[1] == "T")
    out = torch.empty(gemm.m, gemm.n, device=device)
    return a, b, out


def measure_floor(gemms, device: str, min_seconds: float, repeats: int = 5) -> dict:
    """Seconds per product for each of ``gemms`` (fresh random operands in their layout), and the
    cost of one uniform draw, one normal draw and one softplus (with its sum), measured now."""
    results = {}
    for gemm in sorted(set(gemms), key=lambda g: g.flops):
        a, b, out = make_gemm_operands(gemm, device)
        timing = time_call(
            lambda a=a, b=b, out=out: torch.mm(a, b, out=out), device, min_seconds, repeats
        )
        results[gemm.key] = {
            "seconds": timing["median"],
            "min": timing["min"],
            "max": timing["max"],
            "gflops": gemm.flops / timing["median"] / 1e9,
        }
        del a, b, out
    generator = torch.Generator(device=device).manual_seed(0)
    buffer = torch.empty(1 << 20, device=device)

    def per_element(fn, n: int) -> float:
        return time_call(fn, device, min_seconds, repeats)["median"] / n * 1e9

    logits = torch.randn(4096, N_VISIBLE, device=device)
    return {
        "gemm": results,
        "uniform_ns": per_element(
            lambda: torch.rand(buffer.shape, generator=generator, out=buffer), buffer.numel()
        ),
        "normal_ns": per_element(
            lambda: torch.randn(buffer.shape, generator=generator, out=buffer), buffer.numel()
        ),
        "softplus_ns": per_element(
            lambda: torch.nn.functional.softplus(logits).sum(-1), logits.numel()
        ),
    }


class Worker:
    """What a worker subprocess knows: the settings, the device, the data set (loaded once)."""

    def __init__(self, settings: Settings, workdir: Path, data=None) -> None:
        self.settings = settings
        self.device = settings.device
        self.workdir = Path(workdir)
        self._data = data

    @property
    def data(self) -> Dataset:
        if self._data is None:
            self._data = load_dataset(self.settings.dataset, self.settings.data_dir)
        return self._data

    def train_subset(self, n: int | None) -> Dataset:
        """The data set with its first ``n`` training images (all if None)."""
        return self.data.subset(n_train=n)

    @property
    def n_train(self) -> int:
        return int(self.data.train_images.shape[0])

    def binary_test(self, n: int | None = None) -> torch.Tensor:
        """The first ``n`` test images (all if None), binarized stochastically as ``evaluate``
        does (seed 0). Shape: (n, 784)."""
        return self.data.binarized_test_images(n, seed=0)

    def save_model(self, model: nn.Module, name: str) -> None:
        """Keep ``model`` for a later workload: an rbmvae checkpoint in ``workdir / name``."""
        save_model(model, self.workdir / name)

    def load_model(self, name: str, kind: str, config: dict) -> tuple[nn.Module, bool]:
        """The model an earlier workload kept as ``name`` and True; where there is none, a fresh
        model of ``kind`` built from ``config`` and initialized from the training images' mean,
        and False."""
        directory = self.workdir / name
        if directory.is_dir():
            return load_model(directory, self.device, kind=kind)[0], True
        model = build_model(kind, config).to(self.device)
        mean = self.data.train_images.mean(0).to(self.device)
        model.reset_parameters(visible_mean=mean, generator=make_generator(0, self.device))
        return model, False


def peak_memory_mb() -> float:
    """Peak resident set size of this process in MiB (``ru_maxrss``: KiB on Linux, bytes on
    macOS)."""
    import resource  # Unix only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def cpu_times() -> tuple[float, float] | None:
    """``(busy, total)`` CPU jiffies of the whole machine from /proc/stat (None elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [float(v) for v in fields[:8]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def others_cpu_share(before, after, own_seconds: float, wall: float) -> float | None:
    """The share of all CPUs that other processes took over ``wall`` seconds: the machine's busy
    time between the :func:`cpu_times` samples ``before`` and ``after`` minus ``own_seconds`` of
    CPU time used by the measured work (None where /proc/stat is not available)."""
    if before is None or after is None or wall <= 0:
        return None
    others = (after[0] - before[0]) / os.sysconf("SC_CLK_TCK") - own_seconds
    # clock ticks and the work's own CPU clock differ by rounding: a share is kept in [0, 1]
    return min(1.0, max(0.0, others / (wall * (os.cpu_count() or 1))))


def cpu_busy(seconds: float = 1.0) -> float | None:
    """The fraction of all CPUs busy over the next ``seconds`` (None where unknown)."""
    first = cpu_times()
    if first is None:
        return None
    time.sleep(seconds)
    second = cpu_times()
    total = second[1] - first[1]
    return (second[0] - first[0]) / total if total > 0 else 0.0


def wait_for_idle(max_wait: float, threshold: float = 0.1, log=print) -> tuple[float | None, float]:
    """Wait until other processes use at most ``threshold`` of the CPUs (or ``max_wait`` passes);
    returns the busy fraction last seen and the seconds waited."""
    started = time.perf_counter()
    busy = cpu_busy()
    while busy is not None and busy > threshold and time.perf_counter() - started < max_wait:
        log(f"  waiting: CPUs {busy:.0%} busy with other processes")
        time.sleep(5.0)
        busy = cpu_busy()
    return busy, time.perf_counter() - started


def spawn(
    name: str, settings: Settings, workdir: Path, params: dict, label: str | None = None
) -> dict:
    """Run workload ``name`` in a fresh Python process; returns its result, or ``{"error"}``.

    Also records the CPU share that other processes took meanwhile (machine-wide busy time minus
    the worker's own CPU time), the honest measure of how disturbed the timing was."""
    import resource  # Unix only

    command = [
        sys.executable,
        str(RUNNER),
        "--worker",
        name,
        "--settings",
        settings.to_json(),
        "--params",
        json.dumps(params),
        "--workdir",
        str(workdir),
        "--label",
        label or "",
    ]
    threads = str(settings.n_threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = cpu_times()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = cpu_times()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (usage.ru_utime - children.ru_utime) + (usage.ru_stime - children.ru_stime)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit status {done.returncode}"}
    result = json.loads(lines[-1][len("RESULT ") :])
    share = others_cpu_share(before, after, own, wall)
    if share is not None:
        result["others_cpu_share"] = share
    result["worker_cpu_seconds"] = own
    return result


def run_with_retries(
    name: str,
    settings: Settings,
    workdir: Path,
    params: dict,
    label: str,
    retries: int = 2,
    max_wait: float = 900.0,
    log=print,
) -> dict:
    """``spawn`` after waiting for quiet CPUs (at most ``max_wait`` seconds; 0: never waits).

    A run during which other processes took more than ``DISTURBED`` of the CPUs runs again, up
    to ``retries`` times; the least disturbed attempt is kept."""
    result = None
    for attempt in range(1 + retries):
        busy = wait_for_idle(max_wait, log=log)[0] if max_wait > 0 else None
        log(f"{label} ..." if attempt == 0 else f"{label} again ...")
        trial = spawn(name, settings, workdir, params, label)
        trial["busy_before"] = busy
        trial["attempts"] = attempt + 1
        disturbed = trial.get("others_cpu_share", 0.0)
        if result is None or disturbed < result.get("others_cpu_share", 0.0):
            result = trial
        if "error" in trial or disturbed <= DISTURBED:
            break
        log(f"  other processes took {disturbed:.0%} of the CPUs")
    return result


def run_reproduce(settings: Settings, workdir: Path) -> dict:
    """``rbmvae reproduce --profile full`` on the settings' data set: wall time and its parts."""
    out = workdir / "reproduce-full"
    command = [
        sys.executable,
        "-m",
        "rbmvae",
        "reproduce",
        "--profile",
        "full",
        "--dataset",
        settings.dataset,
        "--out",
        str(out),
        "--quiet",
        "--device",
        settings.device,
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:], "wall": wall}
    metrics = json.loads((out / "metrics.json").read_text())
    return {"wall_seconds": wall, "seconds": metrics.get("seconds", {})}
