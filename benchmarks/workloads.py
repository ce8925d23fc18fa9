"""rbmvae's own workloads, the registry of every workload, and the plan of a run.

Each workload takes the worker and keyword parameters and returns a JSON-able dict. Models pass
from one workload to the next as rbmvae checkpoints in the worker's directory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.costs import Gemm, workload_costs
from benchmarks.harness import Worker, measure_floor, peak_memory_mb, summary, synchronize
from benchmarks.settings import N_VISIBLE, SIXTEEN_BITS, VAE_HIDDEN, Settings
from benchmarks.workloads_compared import w_plain_vae, w_sklearn_rbm
from rbmvae.basics.rng import make_generator
from rbmvae.data.masks import random_mask
from rbmvae.likelihood import ais_log_partition, base_rate_visible_bias, iwae_log_likelihood
from rbmvae.models import build_model
from rbmvae.samplers.inpainting import clamped_gibbs
from rbmvae.training import fit

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::addmv", "aten::mv", "aten::addmm_")
RANDOM_OPS = ("aten::uniform_", "aten::normal_", "aten::random_", "aten::bernoulli_")


def w_floor(worker: Worker) -> dict:
    """Matrix-multiply throughput for a large square and every shape of the workloads, and the
    cost of the draws, all measured now (each workload measures its own shapes again, right
    after it ran, for its ratio)."""
    s = worker.settings
    square = Gemm("NN", s.square, s.square, s.square)
    gemms = {square}
    for cost in workload_costs(s, worker.n_train).values():
        gemms.update(cost.gemms)
    floor = measure_floor(gemms, worker.device, s.min_seconds)
    floor["square"] = square.key
    floor["square_gflops"] = floor["gemm"][square.key]["gflops"]
    return floor


def w_baseline(worker: Worker) -> dict:
    """Nothing but torch, rbmvae and the data set in memory: the floor of every peak."""
    return {"images": worker.n_train}


def w_train(
    worker: Worker,
    kind: str,
    config: dict,
    options: dict,
    images: int | None = None,
    save: str | None = None,
) -> dict:
    """Seconds per epoch of ``rbmvae.training.fit`` on a model of ``kind`` built from ``config``,
    with the training ``options`` (``method``, ``k``, ``batch_size``): one warm-up epoch, then
    the timed ones. With ``save`` the trained model is kept under that name.

    The epoch time is fit's own ``train_seconds`` (the epoch's binarization and every step,
    without the epoch-end monitor, reported apart). On a subset of the images it is scaled to the
    whole training set."""
    s = worker.settings
    images = images if images is not None else s.train_images
    data = worker.train_subset(images)
    used = int(data.train_images.shape[0])
    model = build_model(kind, config).to(worker.device)
    history = fit(model, data, epochs=s.epochs + 1, seed=s.seed, progress=False, **options)
    scale = worker.n_train / used
    timed = history[1:]
    if save:
        worker.save_model(model, save)
    return {
        "images": used,
        "scale": scale,
        "epoch_seconds": summary([r["train_seconds"] * scale for r in timed]),
        "monitor_seconds": summary([r["monitor_seconds"] for r in timed]),
        "warmup_seconds": history[0]["train_seconds"] * scale,
        "final_loss": history[-1]["loss"],
    }


def w_ais(worker: Worker) -> dict:
    """``ais_log_partition`` with the settings' runs and betas on the RBM the PCD-1 workload at
    ``ais_hidden`` units trained (an untrained one when that workload did not run)."""
    s = worker.settings
    config = {"n_visible": N_VISIBLE, "n_hidden": s.ais_hidden}
    rbm, trained = worker.load_model(rbm_model_name(s.ais_hidden), "rbm", config)
    base = base_rate_visible_bias(worker.data.train_images)
    times, log_z = [], []
    for repeat in range(s.repeats):
        generator = make_generator(s.seed + repeat, worker.device)
        started = time.perf_counter()
        result = ais_log_partition(rbm, base, s.ais_runs, s.ais_betas, generator=generator)
        synchronize(worker.device)
        times.append(time.perf_counter() - started)
        log_z.append(result.log_z)
    return {"seconds": summary(times), "log_z": log_z, "trained_model": trained}


def w_iwae(worker: Worker) -> dict:
    """``iwae_log_likelihood`` with K samples on the first test images (binarized, seed 0)."""
    s = worker.settings
    latent = max(s.vae_latent)
    config = {"n_visible": N_VISIBLE, "n_hidden": VAE_HIDDEN, "n_latent": latent}
    vae, trained = worker.load_model(f"vae-z{latent}", "vae", config)
    x = worker.binary_test(s.iwae_images).to(worker.device)
    times, values = [], []
    for repeat in range(max(1, s.repeats - 1)):
        generator = make_generator(s.seed + repeat, worker.device)
        started = time.perf_counter()
        value = iwae_log_likelihood(vae, x, k=s.iwae_k, chunk=s.iwae_chunk, generator=generator)
        synchronize(worker.device)
        times.append(time.perf_counter() - started)
        values.append(value)
    return {"seconds": summary(times), "log_likelihood": values, "trained_model": trained}


def w_inpaint(worker: Worker) -> dict:
    """``clamped_gibbs`` on test images with a random mask (each image loses the same fraction)."""
    s = worker.settings
    config = {"n_visible": N_VISIBLE, "n_hidden": s.inpaint_hidden}
    rbm, trained = worker.load_model(rbm_model_name(s.inpaint_hidden), "rbm", config)
    images = worker.data.test_images[: s.inpaint_images].to(worker.device)
    mask = random_mask(
        images.shape[0], N_VISIBLE, s.inpaint_fraction, make_generator(s.seed), worker.device
    )
    times = []
    for repeat in range(max(1, s.repeats - 1)):
        generator = make_generator(s.seed + repeat, worker.device)
        started = time.perf_counter()
        clamped_gibbs(
            rbm, images, mask, s.inpaint_steps, max(1, s.inpaint_steps // 2), generator=generator
        )
        synchronize(worker.device)
        times.append(time.perf_counter() - started)
    return {"seconds": summary(times), "missing": int(mask.sum()), "trained_model": trained}


def w_profile(worker: Worker, kind: str, config: dict, options: dict) -> dict:
    """Where one training step's time goes: ``fit`` (with ``options``) of a model of ``kind``
    built from ``config`` on a few hundred images under the profiler, self time per operator,
    grouped as matrix products, random draws and the rest."""
    from torch.profiler import ProfilerActivity, profile  # loads the profiler only here

    s = worker.settings
    data = worker.train_subset(options["batch_size"] * s.profile_steps)
    model = build_model(kind, config).to(worker.device)
    fit(model, data, epochs=1, progress=False, monitor_size=10, **options)  # warm-up
    activities = [ProfilerActivity.CPU]
    if worker.device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        fit(model, data, epochs=1, progress=False, monitor_size=10, **options)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    groups = {"matrix products": 0.0, "random draws": 0.0, "other": 0.0}
    for e in events:
        groups[_operator_group(e.key)] += e.self_cpu_time_total
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
    return {
        "steps": s.profile_steps,
        "groups": {k: v / total for k, v in groups.items()},
        "top": [
            {"op": e.key, "share": e.self_cpu_time_total / total, "calls": e.count} for e in top
        ],
        "ms_per_step": total / 1000 / s.profile_steps,
        "torch_compile": "not used",
    }


def _operator_group(name: str) -> str:
    if name in MATMUL_OPS:
        return "matrix products"
    return "random draws" if name in RANDOM_OPS else "other"


WORKLOADS = {
    "floor": w_floor,
    "baseline": w_baseline,
    "train": w_train,
    "sklearn_rbm": w_sklearn_rbm,
    "plain_vae": w_plain_vae,
    "ais": w_ais,
    "iwae": w_iwae,
    "inpaint": w_inpaint,
    "profile": w_profile,
}


def run_workload(
    name: str,
    settings: Settings,
    workdir: Path,
    params: dict,
    data=None,
    label: str | None = None,
) -> dict:
    """Run one workload in this process; returns its result with the peak memory and, when
    ``label`` has a cost model, the floor of its own products measured right after it (so that
    its ratio compares times taken in the same state of a shared machine)."""
    torch.set_num_threads(settings.n_threads)
    if settings.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    worker = Worker(settings, workdir, data)
    started = time.perf_counter()
    result = WORKLOADS[name](worker, **params)
    result["wall_seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = peak_memory_mb()
    if settings.device.startswith("cuda"):
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / (1 << 20)
    cost = workload_costs(settings, worker.n_train).get(label) if label else None
    if cost is not None:
        result["floor"] = measure_floor(cost.gemms, settings.device, settings.min_seconds)
    return result


@dataclass
class Step:
    """One workload of a run: its label in the results, the workload's name, its parameters."""

    label: str
    workload: str
    params: dict


def rbm_model_name(hidden: int) -> str:
    """The name under which the PCD-1 workload keeps its RBM with ``hidden`` units."""
    return f"rbm-h{hidden}"


def _rbm(settings: Settings, hidden: int, method: str = "pcd", k: int = 1) -> dict:
    """The parameters of a training workload of an RBM with ``hidden`` units, CD-k or PCD-k."""
    return {
        "kind": "rbm",
        "config": {"n_visible": N_VISIBLE, "n_hidden": hidden},
        "options": {"method": method, "k": k, "batch_size": settings.rbm_batch},
    }


def _vae(settings: Settings, latent: int) -> dict:
    """The parameters of a training workload of a VAE with ``latent`` units."""
    return {
        "kind": "vae",
        "config": {"n_visible": N_VISIBLE, "n_hidden": VAE_HIDDEN, "n_latent": latent},
        "options": {"batch_size": settings.vae_batch},
    }


def plan(settings: Settings) -> list[Step]:
    """Every workload of a run, in order (the floor first, evaluation after training)."""
    s = settings
    steps = [Step("floor", "floor", {}), Step("baseline", "baseline", {})]
    for hidden in s.rbm_hidden:
        pcd = _rbm(s, hidden, "pcd")
        if hidden in (s.ais_hidden, s.inpaint_hidden):  # the model of the AIS and inpainting
            pcd["save"] = rbm_model_name(hidden)
        steps.append(Step(f"rbm-pcd1-h{hidden}", "train", pcd))
        steps.append(Step(f"rbm-cd1-h{hidden}", "train", _rbm(s, hidden, "cd")))
    long, top = max(s.rbm_hidden), max(s.vae_latent)
    for hidden in s.rbm_hidden:  # the small models with draws from 16 random bits (Eq. 1.20)
        if hidden != long:
            fast = _rbm(s, hidden, "pcd")
            fast["options"] = {**fast["options"], "bernoulli_bits": 16}
            steps.append(Step(f"rbm-pcd1-h{hidden}{SIXTEEN_BITS}", "train", fast))
    cd_long = {**_rbm(s, long, "cd", s.cd_long_k), "images": s.cd_long_images}
    steps.append(Step(f"rbm-cd{s.cd_long_k}-h{long}", "train", cd_long))
    pt = _rbm(s, long, "pt")  # the "pt" recipe's sampler (its learning rate does not cost time)
    pt["options"].update(chains=s.pt_chains, pt_temperatures=s.pt_temperatures)
    steps.append(Step(f"rbm-pt1-h{long}", "train", pt))
    for label, params in ((f"rbm-cd{s.cd_long_k}-h{long}", cd_long), (f"rbm-pt1-h{long}", pt)):
        fast = {**params, "options": {**params["options"], "bernoulli_bits": 16}}  # Eq. 1.20
        steps.append(Step(f"{label}{SIXTEEN_BITS}", "train", fast))
    for latent in s.vae_latent:
        save = {"save": f"vae-z{latent}"} if latent == top else {}
        steps.append(Step(f"vae-z{latent}", "train", {**_vae(s, latent), **save}))
    if s.sklearn:
        for hidden in s.rbm_hidden:
            steps.append(Step(f"sklearn-h{hidden}", "sklearn_rbm", {"hidden": hidden}))
    for latent in s.vae_latent:
        steps.append(Step(f"plain-vae-z{latent}", "plain_vae", {"latent": latent}))
    steps.append(Step(f"plain-vae-tensor-z{top}", "plain_vae", {"latent": top, "loader": False}))
    steps += [Step("ais", "ais", {}), Step("iwae", "iwae", {}), Step("inpaint", "inpaint", {})]
    for hidden in s.rbm_hidden:  # where each model's step goes, small ones included
        steps.append(Step(f"profile-rbm-pcd1-h{hidden}", "profile", _rbm(s, hidden)))
    steps.append(Step(f"profile-vae-z{top}", "profile", _vae(s, top)))
    return steps
