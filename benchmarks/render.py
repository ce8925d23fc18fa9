"""RESULTS.md, one function per section, and the compact table on the terminal.

Every figure is a median with (min-max) over the repeats; ratios are measured / floor, where the
floor comes from ``costs.workload_floors``.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

from benchmarks.costs import workload_floors
from benchmarks.settings import FLOOR_GOAL, N_VISIBLE, VAE_HIDDEN, Settings
from benchmarks.targets import evaluate_targets
from rbmvae import __version__ as rbmvae_version


def machine_info(settings: Settings) -> dict:
    """CPU model, cores, threads, library versions (and the GPU, on CUDA)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for module in ("numpy", "sklearn"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "absent"
    versions["rbmvae"] = rbmvae_version
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": settings.n_threads,
        "torch_blas": "MKL" if torch.backends.mkl.is_available() else "other",
        "versions": versions,
        "device": settings.device,
        "platform": platform.platform(terse=True),
    }
    if settings.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(settings.device))
    return info


# ------------------------------------------------------------------------------------------------
# Cells and rows


def _stat(value: dict | None, digits: int = 2) -> str:
    if not value:
        return "-"
    return f"{value['median']:.{digits}f} ({value['min']:.{digits}f}-{value['max']:.{digits}f})"


def floor_goal(seconds: float, floor: float) -> str:
    """Whether ``seconds`` is within ``FLOOR_GOAL`` times ``floor``: "met" or "missed by N%"."""
    ratio = seconds / floor
    return "met" if ratio <= FLOOR_GOAL else f"missed by {ratio / FLOOR_GOAL - 1:.0%}"


def _floor_cells(seconds: float, floor: dict | None, digits: int) -> list[str]:
    """Matmul floor, floor with draws, the two ratios, the 1.3x goal and the GFLOP of a row."""
    if not floor:
        return ["-"] * 6
    gemm, total = floor["gemm_seconds"], floor["seconds"]
    return [
        f"{gemm:.{digits}f}",
        f"{total:.{digits}f}",
        _ratio(seconds, gemm),
        _ratio(seconds, total),
        floor_goal(seconds, gemm),
        f"{floor['flops'] / 1e9:.0f}",
    ]


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def _mb(result: dict) -> str:
    parts = [f"{result['peak_rss_mb']:.0f}"] if "peak_rss_mb" in result else []
    if "peak_cuda_mb" in result:
        parts.append(f"GPU {result['peak_cuda_mb']:.0f}")
    return " / ".join(parts) or "-"


def _others(result: dict) -> str:
    share = result.get("others_cpu_share")
    return "-" if share is None else f"{share:.0%}"


def _median(stat: dict | None) -> float | None:
    return stat and stat["median"]


def _row(*cells) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _table_head(columns: str, aligns: str) -> list[str]:
    """A table's header row and its alignment row; ``columns`` and ``aligns`` are separated by
    `` | `` (``aligns``: ``---``, ``---:`` or ``:---:`` per column)."""
    return [_row(*columns.split(" | ")), _row(*aligns.split())]


# ------------------------------------------------------------------------------------------------
# Sections


def _machine_section(settings: Settings, machine: dict, command: str, n_train: int) -> list[str]:
    scaled = (
        f"; training workloads on the first {settings.train_images} images, scaled to a whole epoch"
        if settings.train_images
        else ""
    )
    gpu = f" ({machine['gpu']})" if "gpu" in machine else ""
    return [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M')}. Figures are "
        "medians with (min-max) over the repeats; every workload ran in a fresh process.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine['cpu']}, {machine['cores']} logical cores; torch threads used: "
        f"{machine['threads']} (BLAS: torch {machine['torch_blas']}, scikit-learn through numpy's "
        "own BLAS limited to the same threads)",
        f"- device: {machine['device']}{gpu}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
        f"- platform: {machine['platform']}",
        f"- data: {settings.dataset}, {n_train} training images of {N_VISIBLE} pixels, "
        f"float32{scaled}",
        "- others' CPU: the share of all CPUs that other processes used while a workload ran "
        "(0% on a quiet machine; timings above a few percent are disturbed)",
        "",
    ]


def _floor_section(floor: dict) -> list[str]:
    if "gemm" not in floor:
        return []
    lines = [
        "## The floor, measured in this run",
        "",
        f"- float32 matrix product {floor['square']}: **{floor['square_gflops']:.0f} GFLOP/s**",
        f"- one uniform draw (`torch.rand` with a generator): {floor['uniform_ns']:.2f} ns; "
        f"one normal draw: {floor['normal_ns']:.2f} ns; one softplus (and sum): "
        f"{floor['softplus_ns']:.2f} ns",
        "- the *matmul floor* of a workload is the time its own matrix products (counted "
        "from the algorithm, in the layouts the code uses) take in isolation, each shape "
        "timed in the workload's own process right after it ran (this machine's speed drifts "
        "by 10-30% over minutes, so a floor measured at another time would skew the ratio); "
        "*+ RNG* adds its random draws at the cost per draw measured there too (the CPU "
        "generator is serial, so draws add to the products' time). The table below is the "
        "run's first measurement of every shape.",
        "",
        *_table_head("product (layout m x k x n) | GFLOP/s | seconds per product", "--- ---: ---:"),
    ]
    for key, value in floor["gemm"].items():
        lines.append(_row(key, f"{value['gflops']:.0f}", f"{value['seconds'] * 1e3:.3f} ms"))
    return [*lines, ""]


def _training_section(results: dict, floors: dict, settings: Settings) -> list[str]:
    lines = [
        "## Training, seconds per epoch",
        "",
        "Per epoch of 60,000 images: `rbmvae.training.fit`'s own time for the epoch (its "
        "stochastic binarization and every step; the epoch-end monitor is shown apart). RBM: "
        f"batch {settings.rbm_batch}, PCD-1 or CD-k; VAE: 784-{VAE_HIDDEN}-z, batch "
        f"{settings.vae_batch}, Adam.",
        "",
        *_table_head(
            "workload | s/epoch | monitor s | matmul floor s | + RNG s | measured / matmul floor "
            f"| measured / (+ RNG) | goal: <= {FLOOR_GOAL}x floor | GFLOP/epoch | GFLOP/s "
            "| peak MB | others' CPU",
            "--- ---: ---: ---: ---: ---: ---: :---: ---: ---: ---: ---:",
        ),
    ]
    for label, result in results.items():
        if "epoch_seconds" not in result or label.startswith(("sklearn", "plain")):
            continue
        seconds = result["epoch_seconds"]["median"]
        f = floors.get(label)
        note = f" (on {result['images']} images, scaled)" if result.get("scale", 1) > 1 else ""
        floor_cells = _floor_cells(seconds, f, 2)
        floor_cells.append(f"{f['flops'] / 1e9 / seconds:.0f}" if f else "-")
        lines.append(
            _row(
                f"{label}{note}",
                _stat(result["epoch_seconds"]),
                f"{result['monitor_seconds']['median']:.2f}",
                *floor_cells,
                _mb(result),
                _others(result),
            )
        )
    return lines


def _sklearn_section(results: dict, floors: dict, settings: Settings) -> list[str]:
    if not settings.sklearn:
        return []
    lines = [
        "scikit-learn's `BernoulliRBM` (PCD-1 with mean-field hidden statistics; float32 "
        f"grey input, batch {settings.rbm_batch}, the same learning rate, `n_iter=1`, "
        "seconds per `fit`). Its products are the same as rbmvae's PCD-1, so the same floor.",
        "",
        *_table_head(
            "hidden | rbmvae PCD-1 s/epoch | BernoulliRBM s/epoch | rbmvae faster by | "
            "BernoulliRBM / matmul floor | BernoulliRBM peak MB",
            "---: ---: ---: ---: ---: ---:",
        ),
    ]
    for hidden in settings.rbm_hidden:
        ours = results.get(f"rbm-pcd1-h{hidden}", {}).get("epoch_seconds")
        sk_result = results.get(f"sklearn-h{hidden}", {})
        theirs = sk_result.get("epoch_seconds")
        f = floors.get(f"rbm-pcd1-h{hidden}")
        lines.append(
            _row(
                hidden,
                _stat(ours),
                _stat(theirs),
                _ratio(_median(theirs), _median(ours)),
                _ratio(_median(theirs), f["gemm_seconds"] if f else None),
                _mb(sk_result),
            )
        )
    return [*lines, ""]


def _plain_vae_section(results: dict, floors: dict, settings: Settings) -> list[str]:
    lines = [
        "A plain PyTorch VAE loop as in PyTorch's examples (the same 784-256-z network, Adam "
        f"1e-3, batch {settings.vae_batch}, summed BCE + KL, `loss.item()` per step) over "
        "`DataLoader(TensorDataset(x), shuffle=True)`; the last row indexes one tensor instead.",
        "",
        *_table_head(
            "VAE | rbmvae s/epoch | plain loop s/epoch | rbmvae faster by | plain / matmul floor",
            "--- ---: ---: ---: ---:",
        ),
    ]
    top = max(settings.vae_latent)
    rows = [(f"z={z}, DataLoader", z, f"plain-vae-z{z}") for z in settings.vae_latent]
    rows.append((f"z={top}, tensor batches", top, f"plain-vae-tensor-z{top}"))
    for name, latent, plain in rows:
        ours = results.get(f"vae-z{latent}", {}).get("epoch_seconds")
        theirs = results.get(plain, {}).get("epoch_seconds")
        f = floors.get(f"vae-z{latent}")
        lines.append(
            _row(
                name,
                _stat(ours),
                _stat(theirs),
                _ratio(_median(theirs), _median(ours)),
                _ratio(_median(theirs), f and f["gemm_seconds"]),
            )
        )
    return lines


def _evaluation_section(results: dict, floors: dict, settings: Settings) -> list[str]:
    lines = [
        "",
        "## Evaluation",
        "",
        f"- AIS: {settings.ais_runs} runs, {settings.ais_betas} betas, "
        f"{settings.ais_hidden} hidden (the RBM of the PCD-1 workload at that size)",
        f"- IWAE: K = {settings.iwae_k} on {settings.iwae_images} binarized test images, VAE "
        f"z={max(settings.vae_latent)}; its floor also counts one softplus per decoded pixel "
        "(Eq. 2.5)",
        f"- inpainting: clamped Gibbs, {settings.inpaint_images} test images, "
        f"{settings.inpaint_steps} sweeps, {settings.inpaint_fraction:.0%} of each image "
        f"missing at random, {settings.inpaint_hidden} hidden",
        "",
        *_table_head(
            "workload | seconds | matmul floor s | + RNG (+ softplus) s | measured / matmul floor "
            f"| measured / (+ RNG) | goal: <= {FLOOR_GOAL}x floor | GFLOP | peak MB | others' CPU",
            "--- ---: ---: ---: ---: ---: ---: :---: ---: ---: ---:",
        ),
    ]
    for label in ("ais", "iwae", "inpaint"):
        result = results.get(label)
        if not result or "seconds" not in result:
            continue
        seconds = result["seconds"]["median"]
        f = floors.get(label)
        floor_cells = _floor_cells(seconds, f, 1)
        lines.append(
            _row(label, _stat(result["seconds"], 1), *floor_cells, _mb(result), _others(result))
        )
    baseline = results.get("baseline", {})
    if "peak_rss_mb" in baseline:
        lines += [
            "",
            f"Peak memory is the resident set of the whole process; torch, rbmvae and "
            f"the data set alone take {baseline['peak_rss_mb']:.0f} MB.",
        ]
    return lines


def _reproduce_section(results: dict, settings: Settings) -> list[str]:
    full = results.get("reproduce-full")
    if not full:
        return []
    lines = ["", "## `rbmvae reproduce --profile full`", ""]
    if "wall_seconds" not in full:
        return [*lines, f"failed: {full.get('error')}"]
    lines.append(f"Wall time: **{full['wall_seconds'] / 60:.1f} min** on {settings.dataset}.")
    lines += ["", *_table_head("part | seconds", "--- ---:")]
    lines += [_row(part, f"{seconds:.1f}") for part, seconds in full["seconds"].items()]
    return lines


def _targets_section(results: dict, floors: dict, settings: Settings) -> list[str]:
    lines = [
        "",
        "## Targets (issues 6 and 15)",
        "",
        *_table_head("target | measured | met", "--- ---: :---:"),
    ]
    for t in evaluate_targets(results, floors, settings):
        mark = "-" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(_row(t["target"], t["text"], mark))
    return lines


def _profile_section(results: dict) -> list[str]:
    profiles = {k: v for k, v in results.items() if k.startswith("profile-") and "groups" in v}
    if not profiles:
        return []
    lines = ["", "## Where the time goes (profile of `fit`, self time per operator)", ""]
    for label, p in profiles.items():
        groups = ", ".join(f"{k} {v:.0%}" for k, v in p["groups"].items())
        top_ops = ", ".join(f"{t['op']} {t['share']:.0%}" for t in p["top"][:6])
        lines.append(
            f"- {label[len('profile-') :]}: {p['ms_per_step']:.2f} ms per step over "
            f"{p['steps']} steps; {groups}. Top: {top_ops}."
        )
    return lines


def _failed_section(results: dict) -> list[str]:
    failed = {k: v["error"] for k, v in results.items() if isinstance(v, dict) and "error" in v}
    if not failed:
        return []
    return ["", "## Failed workloads", "", *(f"- {label}: {e}" for label, e in failed.items())]


def render(results: dict, settings: Settings, machine: dict, command: str) -> str:
    """RESULTS.md: machine, floor, every table with medians (min-max), targets, profiles."""
    n_train = results.get("baseline", {}).get("images", 60000)
    floors = workload_floors(results, settings)
    lines = [
        *_machine_section(settings, machine, command, n_train),
        *_floor_section(results.get("floor", {})),
        *_training_section(results, floors, settings),
        "",
        "## Side by side with what users would pick instead",
        "",
        *_sklearn_section(results, floors, settings),
        *_plain_vae_section(results, floors, settings),
        *_evaluation_section(results, floors, settings),
        *_reproduce_section(results, settings),
        *_targets_section(results, floors, settings),
        *_profile_section(results),
        *_failed_section(results),
    ]
    return "\n".join(lines) + "\n"


def print_table(results: dict, settings: Settings) -> None:
    """A compact table on the terminal: label, seconds, floor, ratio, peak memory."""
    floors = workload_floors(results, settings)
    print(
        f"{'workload':28} {'seconds (min-max)':>26} {'floor':>8} {'ratio':>6} {'MB':>7} {'others':>7}"
    )
    for label, result in results.items():
        if "error" in result:
            print(f"{label:28} failed: {result['error']}")
            continue
        stat = result.get("epoch_seconds") or result.get("seconds")
        if not isinstance(stat, dict) or "median" not in stat:
            continue
        f = floors.get(label)
        ratio = _ratio(stat["median"], f and f["gemm_seconds"])
        print(
            f"{label:28} {_stat(stat):>26} {f['gemm_seconds'] if f else 0:8.2f} {ratio:>6} "
            f"{result.get('peak_rss_mb', 0):7.0f} {_others(result):>7}"
        )
