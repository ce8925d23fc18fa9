"""Benchmarks of rbmvae: speed against the hardware's floor and against what users would pick.

One command runs everything and writes ``benchmarks/RESULTS.md``::

    .venv/bin/python benchmarks/run.py             # full size (Fashion-MNIST, 60,000 x 784)
    .venv/bin/python benchmarks/run.py --quick     # a smoke run: fewer repeats, smaller workloads
    .venv/bin/python benchmarks/run.py --device cuda

Every workload runs in a fresh Python subprocess, so that its peak memory (the resident set size
from ``getrusage``, which sees torch's allocations where ``tracemalloc`` does not) is its own and
no workload inherits another's warm caches. The first workload measures the floor in the same
run: float32 matrix-multiply time for a large square product and for every product shape the
workloads use, and the time of one uniform random draw. The floor of a workload is the time its
own products and random draws take in isolation (counted from the algorithm, checked against
``FlopCounterMode`` in tests/test_benchmarks.py); the table gives measured / floor.

Timings on a shared machine swing with other processes: ``--wait-idle`` (on by default on Linux)
waits before each workload until the CPUs are quiet, and RESULTS.md records how busy they were.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import rbmvae
from rbmvae.data import Dataset, binarize
from rbmvae.devices import make_generator, resolve_device
from rbmvae.evaluation import (
    ais_log_partition,
    base_rate_visible_bias,
    iwae_log_likelihood,
    rbm_log_likelihood,
)
from rbmvae.inpainting import clamped_gibbs
from rbmvae.masks import random_mask
from rbmvae.models import MODEL_KINDS, RBM, VAE
from rbmvae.training import TrainConfig, fit

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "RESULTS.md"
N_VISIBLE = 784
VAE_HIDDEN = 256


# ------------------------------------------------------------------------------------------------
# Settings


@dataclass
class Settings:
    """Sizes of every workload. ``Settings()`` is the full benchmark, ``Settings.quick()`` a smoke
    run; tests build tiny ones."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    device: str = "cpu"
    threads: int = 0  # 0: every core torch sees
    epochs: int = 5  # timed epochs per training workload (after one warm-up epoch)
    repeats: int = 3  # repeats of the other timed workloads
    train_images: int | None = None  # None: the whole training set (per-epoch figures are scaled)
    rbm_hidden: tuple[int, ...] = (20, 100, 500)
    vae_latent: tuple[int, ...] = (2, 8, 16)
    rbm_batch: int = 100
    vae_batch: int = 128
    cd_long_k: int = 30
    cd_long_images: int = 12000  # CD-30 runs on this many images; its epoch time is scaled
    equal_time_hidden: int = 500
    equal_time_seconds: float = 90.0
    ais_runs: int = 100
    ais_betas: int = 14500
    iwae_k: int = 5000
    iwae_images: int = 1000
    inpaint_hidden: int = 500
    inpaint_images: int = 1000
    inpaint_steps: int = 1000
    inpaint_fraction: float = 0.5
    square: int = 2048  # side of the large square product
    min_seconds: float = 0.2  # each floor measurement loops at least this long
    sklearn: bool = True
    reproduce: bool = False
    profile_steps: int = 60
    seed: int = 0

    @classmethod
    def quick(cls, **overrides) -> Settings:
        values = dict(
            epochs=2,
            repeats=2,
            train_images=6000,
            cd_long_images=1000,
            equal_time_seconds=15.0,
            ais_betas=1000,
            iwae_k=500,
            iwae_images=200,
            inpaint_images=200,
            inpaint_steps=100,
            square=1024,
            min_seconds=0.05,
            profile_steps=20,
        )
        values.update(overrides)
        return cls(**values)


def summary(values: list[float]) -> dict:
    """``{"median", "min", "max", "n"}`` of a list of measurements."""
    values = [float(v) for v in values]
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


# ------------------------------------------------------------------------------------------------
# The cost model: which matrix products and how many random draws each workload needs


@dataclass(frozen=True)
class Gemm:
    """One matrix product ``(m x k) @ (k x n)``; ``layout`` says which operand is a transposed
    view, as the code passes it: ``NN`` (both contiguous), ``NT`` (``x @ W.t()``, as nn.Linear and
    ``h W'`` do) or ``TN`` (``X.t() @ Y``, the weight gradients)."""

    layout: str
    m: int
    k: int
    n: int

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n

    @property
    def key(self) -> str:
        return f"{self.layout} {self.m}x{self.k}x{self.n}"


@dataclass
class Cost:
    """The inherent work of a workload: products (with counts), uniform and normal draws."""

    gemms: dict[Gemm, int] = field(default_factory=dict)
    uniform: int = 0
    normal: int = 0
    elementwise: int = 0  # softplus evaluations that the estimator itself needs (IWAE)

    def add(self, gemm: Gemm, count: int = 1) -> None:
        if count:
            self.gemms[gemm] = self.gemms.get(gemm, 0) + count

    def merge(self, other: Cost, times: int = 1) -> None:
        for gemm, count in other.gemms.items():
            self.add(gemm, count * times)
        self.uniform += other.uniform * times
        self.normal += other.normal * times
        self.elementwise += other.elementwise * times

    @property
    def flops(self) -> int:
        return sum(g.flops * c for g, c in self.gemms.items())


def batch_sizes(n_images: int, batch: int) -> list[int]:
    """The sizes of the minibatches of one epoch (the last one may be short)."""
    full, rest = divmod(n_images, batch)
    return [batch] * full + ([rest] if rest else [])


def rbm_step_cost(
    n: int, hidden: int, method: str, k: int, visible: int = N_VISIBLE, chains: int | None = None
) -> Cost:
    """One CD-k / PCD-k step on ``n`` images (training.ContrastiveDivergence.step, Eq. 1.13-1.14).

    Products: hidden inputs of the data, k Gibbs sweeps of ``h W'`` and ``v W``, and the weight
    gradient ``V_model' H_model - V_data' H_data`` (two). PCD runs ``chains`` persistent chains
    (the batch size; the last batch of an epoch may be shorter) and computes the hidden inputs of
    the data and of the chains' last states as one product. Draws: PCD samples the chains'
    visible and hidden states every sweep; CD samples the data-driven hidden units and every
    state but the last visible and hidden ones (which are probabilities)."""
    cost = Cost()
    if method == "pcd":
        chains = n if chains is None else chains
        cost.add(Gemm("NN", n + chains, visible, hidden))
        cost.add(Gemm("NN", chains, visible, hidden), k - 1)
        cost.add(Gemm("NT", chains, hidden, visible), k)
        cost.add(Gemm("TN", visible, n, hidden))
        cost.add(Gemm("TN", visible, chains, hidden))
        cost.uniform = k * chains * (visible + hidden)
    else:
        cost.add(Gemm("NN", n, visible, hidden), 1 + k)
        cost.add(Gemm("NT", n, hidden, visible), k)
        cost.add(Gemm("TN", visible, n, hidden), 2)
        cost.uniform = n * hidden + (k - 1) * n * (visible + hidden)
    return cost


def rbm_epoch_cost(
    n_images: int, batch: int, hidden: int, method: str, k: int, stochastic: bool = True
) -> Cost:
    """One epoch: every step, plus one uniform per pixel for the epoch's stochastic binarization."""
    cost = Cost()
    for n in batch_sizes(n_images, batch):
        cost.merge(rbm_step_cost(n, hidden, method, k, chains=batch))
    if stochastic:
        cost.uniform += n_images * N_VISIBLE
    return cost


def vae_step_cost(n: int, latent: int, hidden: int = VAE_HIDDEN, visible: int = N_VISIBLE) -> Cost:
    """One VAE step on ``n`` images (Eq. 2.6): the forward pass through the five linear layers, the
    gradient of every weight, and the gradient of every layer's input but the first (the images
    need none). One normal draw per latent unit and image (Eq. 2.3)."""
    cost = Cost()
    layers = [(visible, hidden), (hidden, latent), (hidden, latent), (latent, hidden)]
    layers.append((hidden, visible))
    for index, (fan_in, fan_out) in enumerate(layers):
        cost.add(Gemm("NT", n, fan_in, fan_out))  # y = x W'
        cost.add(Gemm("TN", fan_out, n, fan_in))  # dW = dy' x
        if index > 0:
            cost.add(Gemm("NN", n, fan_out, fan_in))  # dx = dy W
    cost.normal = n * latent
    return cost


def vae_epoch_cost(n_images: int, batch: int, latent: int) -> Cost:
    cost = Cost()
    for n in batch_sizes(n_images, batch):
        cost.merge(vae_step_cost(n, latent))
    return cost


def ais_cost(runs: int, betas: int, hidden: int, visible: int = N_VISIBLE) -> Cost:
    """``ais_log_partition``: per beta one ``v [W | b - b0]`` product; per transition (all betas
    but the last) one ``h W'`` product and a draw for every hidden and visible unit (Eq. 3.3)."""
    cost = Cost()
    cost.add(Gemm("NN", runs, visible, hidden + 1), betas)
    cost.add(Gemm("NT", runs, hidden, visible), betas - 1)
    cost.uniform = (betas - 1) * runs * (hidden + visible) + runs * visible
    return cost


def iwae_cost(
    images: int,
    k: int,
    latent: int,
    hidden: int = VAE_HIDDEN,
    chunk: int = 25,
    batch: int = 100,
    visible: int = N_VISIBLE,
) -> Cost:
    """``iwae_log_likelihood`` (Eq. 3.7): the encoder once per image; the decoder once per sample
    (``k`` per image) and ``x W_o`` once per chunk (``decoder_log_likelihood``); one normal draw
    per latent unit and sample; one softplus per decoded pixel (Eq. 2.5)."""
    cost = Cost()
    for n in batch_sizes(images, batch):
        cost.add(Gemm("NT", n, visible, hidden))
        cost.add(Gemm("NT", n, hidden, latent), 2)
        for m in batch_sizes(k, chunk):
            cost.add(Gemm("NT", m * n, latent, hidden))
            cost.add(Gemm("NT", m * n, hidden, visible))
            cost.add(Gemm("NN", n, visible, hidden))  # x W_o, for the data term x'l
    cost.normal = images * k * latent
    cost.elementwise = images * k * visible
    return cost


def _iwae_chunk() -> int:
    """The samples per chunk that ``iwae_log_likelihood`` uses by default."""
    return inspect.signature(iwae_log_likelihood).parameters["chunk"].default


def inpaint_cost(
    images: int, steps: int, hidden: int, missing: int, visible: int = N_VISIBLE
) -> Cost:
    """``clamped_gibbs`` (Eq. 5.2): per sweep ``v W`` and ``h W'`` for every image; a draw for every
    hidden unit and for every missing pixel (``missing`` in all images together)."""
    cost = Cost()
    cost.add(Gemm("NN", images, visible, hidden), steps)
    cost.add(Gemm("NT", images, hidden, visible), steps)
    cost.uniform = steps * (images * hidden + missing)
    return cost


def floor_seconds(cost: Cost, floor: dict) -> dict:
    """The floor of ``cost`` from the measured product times and draw costs of ``floor``."""
    gemm_seconds = 0.0
    for gemm, count in cost.gemms.items():
        gemm_seconds += count * floor["gemm"][gemm.key]["seconds"]
    rng_seconds = (
        cost.uniform * floor["uniform_ns"] * 1e-9 + cost.normal * floor["normal_ns"] * 1e-9
    )
    elementwise_seconds = cost.elementwise * floor["softplus_ns"] * 1e-9
    return {
        "flops": cost.flops,
        "gemm_seconds": gemm_seconds,
        "rng_seconds": rng_seconds,
        "elementwise_seconds": elementwise_seconds,
        "seconds": gemm_seconds + rng_seconds + elementwise_seconds,
        "peak_seconds": cost.flops / (floor["square_gflops"] * 1e9),
        "uniform_draws": cost.uniform,
        "normal_draws": cost.normal,
    }


def workload_costs(settings: Settings, n_train: int) -> dict[str, Cost]:
    """The cost of one epoch (training) or one run (evaluation) of every workload."""
    s = settings
    costs = {}
    for hidden in s.rbm_hidden:
        for method in ("pcd", "cd"):
            costs[f"rbm-{method}1-h{hidden}"] = rbm_epoch_cost(
                n_train, s.rbm_batch, hidden, method, 1
            )
    long = max(s.rbm_hidden)
    costs[f"rbm-cd{s.cd_long_k}-h{long}"] = rbm_epoch_cost(
        n_train, s.rbm_batch, long, "cd", s.cd_long_k
    )
    for latent in s.vae_latent:
        costs[f"vae-z{latent}"] = vae_epoch_cost(n_train, s.vae_batch, latent)
    costs["ais"] = ais_cost(s.ais_runs, s.ais_betas, s.equal_time_hidden)
    costs["iwae"] = iwae_cost(s.iwae_images, s.iwae_k, max(s.vae_latent), chunk=_iwae_chunk())
    missing = round(s.inpaint_fraction * N_VISIBLE) * s.inpaint_images
    costs["inpaint"] = inpaint_cost(s.inpaint_images, s.inpaint_steps, s.inpaint_hidden, missing)
    return costs


# ------------------------------------------------------------------------------------------------
# Timing helpers (run inside a worker)


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


class Worker:
    """What a worker subprocess knows: the settings, the device, the data set (loaded once)."""

    def __init__(self, settings: Settings, workdir: Path, data=None) -> None:
        self.settings = settings
        self.device = settings.device
        self.workdir = Path(workdir)
        self._data = data

    @property
    def data(self):
        if self._data is None:
            self._data = rbmvae.load_dataset(self.settings.dataset, self.settings.data_dir)
        return self._data

    def train_subset(self, n: int | None):
        """The data set with its first ``n`` training images (all if None)."""
        data = self.data
        if n is None or n >= data.train_images.shape[0]:
            return data
        return Dataset(
            name=data.name,
            train_images=data.train_images[:n],
            train_labels=data.train_labels[:n],
            test_images=data.test_images,
            test_labels=data.test_labels,
            image_shape=data.image_shape,
        )

    @property
    def n_train(self) -> int:
        return int(self.data.train_images.shape[0])

    def binary_test(self, n: int | None = None):
        """The first ``n`` test images, binarized stochastically with seed 0 (as evaluate does)."""
        images = self.data.test_images if n is None else self.data.test_images[:n]
        return binarize(images, "stochastic", generator=make_generator(0))


# ------------------------------------------------------------------------------------------------
# Workloads. Each takes the worker and keyword parameters and returns a JSON-able dict.


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


def _save_model(worker: Worker, model, name: str) -> None:
    torch.save({"config": model.config(), "state": model.state_dict()}, worker.workdir / name)


def _load_model(worker: Worker, name: str, kind: str, **config):
    """A model saved by an earlier workload, or a fresh one initialized from the data."""
    path = worker.workdir / name
    if path.exists():
        saved = torch.load(path, map_location=worker.device)
        model = MODEL_KINDS[kind](**saved["config"])
        model.load_state_dict(saved["state"])
        return model.to(worker.device), True
    model = MODEL_KINDS[kind](**config).to(worker.device)
    mean = worker.data.train_images.mean(0).to(worker.device)
    if kind == "rbm":
        model.reset_parameters(visible_mean=mean, generator=make_generator(0, worker.device))
    else:
        model.reset_parameters(generator=make_generator(0, worker.device), visible_mean=mean)
    return model, False


def w_train(
    worker: Worker,
    kind: str,
    size: int,
    method: str = "pcd",
    k: int = 1,
    images: int | None = None,
    save: str | None = None,
) -> dict:
    """Seconds per epoch of ``rbmvae.training.fit``: one warm-up epoch, then the timed ones.

    The epoch time is fit's own ``train_seconds`` (the epoch's binarization and every step,
    without the epoch-end monitor, reported apart). On a subset of the images it is scaled to the
    whole training set."""
    s = worker.settings
    images = images if images is not None else s.train_images
    data = worker.train_subset(images)
    used = int(data.train_images.shape[0])
    if kind == "rbm":
        model = RBM(N_VISIBLE, size).to(worker.device)
        options = {"method": method, "k": k, "batch_size": s.rbm_batch}
    else:
        model = VAE(N_VISIBLE, VAE_HIDDEN, size).to(worker.device)
        options = {"batch_size": s.vae_batch}
    history = fit(model, data, epochs=s.epochs + 1, seed=s.seed, progress=False, **options)
    scale = worker.n_train / used
    timed = history[1:]
    if save:
        _save_model(worker, model, save)
    return {
        "images": used,
        "scale": scale,
        "epoch_seconds": summary([r["train_seconds"] * scale for r in timed]),
        "monitor_seconds": summary([r["monitor_seconds"] for r in timed]),
        "warmup_seconds": history[0]["train_seconds"] * scale,
        "final_loss": history[-1]["loss"],
    }


def w_sklearn_rbm(worker: Worker, hidden: int) -> dict:
    """scikit-learn's BernoulliRBM, one epoch per ``fit`` (``n_iter=1``) on the float32 grey
    images, with the same hidden units, batch size and learning rate as rbmvae's defaults."""
    import numpy as np
    from sklearn.neural_network import BernoulliRBM
    from threadpoolctl import threadpool_info, threadpool_limits

    s = worker.settings
    images = worker.train_subset(s.train_images).train_images
    x = np.ascontiguousarray(images.numpy(), dtype=np.float32)
    scale = worker.n_train / x.shape[0]
    rate = TrainConfig.defaults_for("rbm").learning_rate
    times = []
    with threadpool_limits(limits=_threads(s)):
        for repeat in range(s.repeats + 1):
            rbm = BernoulliRBM(
                n_components=hidden,
                learning_rate=rate,
                batch_size=s.rbm_batch,
                n_iter=1,
                random_state=repeat,
            )
            started = time.perf_counter()
            rbm.fit(x)
            times.append((time.perf_counter() - started) * scale)
        blas = [
            f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
            for i in threadpool_info()
            if i["user_api"] == "blas"
        ]
    return {
        "images": int(x.shape[0]),
        "epoch_seconds": summary(times[1:]),
        "learning_rate": rate,
        "blas": blas,
    }


def _plain_vae(latent: int):
    """The VAE of PyTorch's examples (784-H-z-H-784, ReLU, sigmoid output), with rbmvae's sizes."""
    from torch import nn
    from torch.nn import functional as F

    class PlainVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(N_VISIBLE, VAE_HIDDEN)
            self.fc21 = nn.Linear(VAE_HIDDEN, latent)
            self.fc22 = nn.Linear(VAE_HIDDEN, latent)
            self.fc3 = nn.Linear(latent, VAE_HIDDEN)
            self.fc4 = nn.Linear(VAE_HIDDEN, N_VISIBLE)

        def forward(self, x):
            h1 = F.relu(self.fc1(x))
            mu, logvar = self.fc21(h1), self.fc22(h1)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar

    def loss_function(recon, x, mu, logvar):
        bce = F.binary_cross_entropy(recon, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld

    return PlainVAE(), loss_function


def w_plain_vae(worker: Worker, latent: int, loader: bool = True) -> dict:
    """A plain PyTorch VAE loop as in PyTorch's examples: ``DataLoader(TensorDataset(x),
    batch_size=128, shuffle=True)``, ``.to(device)`` per batch, Adam(1e-3), summed BCE + KL.
    With ``loader=False`` the same loop indexes one tensor kept on the device instead."""
    from torch.utils.data import DataLoader, TensorDataset

    s, device = worker.settings, worker.device
    images = worker.train_subset(s.train_images).train_images
    scale = worker.n_train / images.shape[0]
    torch.manual_seed(s.seed)
    model, loss_function = _plain_vae(latent)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    if loader:
        batches = DataLoader(TensorDataset(images), batch_size=s.vae_batch, shuffle=True)
    else:
        on_device = images.to(device)

        def tensor_batches():
            order = torch.randperm(on_device.shape[0], device=device)
            for start in range(0, on_device.shape[0], s.vae_batch):
                yield (on_device[order[start : start + s.vae_batch]],)

    times = []
    for _ in range(s.epochs + 1):
        model.train()
        started = time.perf_counter()
        total = 0.0
        for (x,) in batches if loader else tensor_batches():
            x = x.to(device)
            optimizer.zero_grad()
            recon, mu, logvar = model(x)
            loss = loss_function(recon, x, mu, logvar)
            loss.backward()
            total += loss.item()
            optimizer.step()
        synchronize(device)
        times.append((time.perf_counter() - started) * scale)
    return {"images": int(images.shape[0]), "epoch_seconds": summary(times[1:]), "loss": total}


def _sklearn_to_rbm(estimator, device: str):
    """BernoulliRBM's ``components_`` (H x D), ``intercept_hidden_``, ``intercept_visible_`` as an
    rbmvae RBM with ``weight = components_.T``, ``hidden_bias``, ``visible_bias``."""
    hidden, visible = estimator.components_.shape
    rbm = RBM(visible, hidden)
    with torch.no_grad():
        rbm.weight.copy_(torch.as_tensor(estimator.components_).t())
        rbm.hidden_bias.copy_(torch.as_tensor(estimator.intercept_hidden_))
        rbm.visible_bias.copy_(torch.as_tensor(estimator.intercept_visible_))
    return rbm.to(device)


def _score_rbm(worker: Worker, rbm, seed: int) -> dict:
    """AIS log Z (SM08 schedule) and the mean test log-likelihood on the binarized test set."""
    s = worker.settings
    base = base_rate_visible_bias(worker.data.train_images)
    ais = ais_log_partition(
        rbm,
        base,
        n_runs=s.ais_runs,
        n_betas=s.ais_betas,
        generator=make_generator(seed, worker.device),
    )
    test = worker.binary_test()
    return {
        "log_z": ais.log_z,
        "log_z_low": ais.log_z_low,
        "log_z_high": ais.log_z_high,
        "effective_runs": ais.effective_runs,
        "test_log_likelihood": rbm_log_likelihood(rbm, test, ais.log_z),
        "test_log_likelihood_low": rbm_log_likelihood(rbm, test, ais.log_z_high),
        "test_log_likelihood_high": rbm_log_likelihood(rbm, test, ais.log_z_low),
        "ais_seconds": ais.seconds,
    }


def w_equal_time(
    worker: Worker,
    hidden: int,
    rbmvae_epoch: float | None = None,
    sklearn_epoch: float | None = None,
) -> dict:
    """rbmvae's RBM (its default training settings) and BernoulliRBM trained for the same wall
    time, both scored by rbmvae's AIS on the same binarized test images.

    rbmvae gets as many whole epochs (with its epoch-end monitor) as fit in the budget; the
    epochs are fixed before training because the learning rate decays over them. BernoulliRBM
    then gets enough epochs to use at least the time rbmvae actually took."""
    s = worker.settings
    data = worker.train_subset(s.train_images)
    scale = data.train_images.shape[0] / worker.n_train
    defaults = TrainConfig.defaults_for("rbm")
    result = {
        "budget_seconds": s.equal_time_seconds,
        "hidden": hidden,
        "method": f"{defaults.method.upper()}-{defaults.k}",
    }
    if rbmvae_epoch is None:
        probe = fit(RBM(N_VISIBLE, hidden).to(worker.device), data, epochs=1, progress=False)
        rbmvae_epoch = probe[0]["train_seconds"] + probe[0]["monitor_seconds"]
    else:
        rbmvae_epoch *= scale
    epochs = max(1, int(s.equal_time_seconds // rbmvae_epoch))
    model = RBM(N_VISIBLE, hidden).to(worker.device)
    started = time.perf_counter()
    fit(model, data, epochs=epochs, seed=s.seed, progress=False)
    wall = time.perf_counter() - started
    _save_model(worker, model, "rbm-equal-time.pt")
    result["rbmvae"] = {"epochs": epochs, "seconds": wall, **_score_rbm(worker, model, s.seed)}
    if s.sklearn:
        import numpy as np
        from sklearn.neural_network import BernoulliRBM
        from threadpoolctl import threadpool_limits

        x = np.ascontiguousarray(data.train_images.numpy(), dtype=np.float32)
        rate = TrainConfig.defaults_for("rbm").learning_rate
        with threadpool_limits(limits=_threads(s)):
            if sklearn_epoch is None:
                started = time.perf_counter()
                BernoulliRBM(hidden, learning_rate=rate, batch_size=s.rbm_batch, n_iter=1).fit(x)
                sklearn_epoch = time.perf_counter() - started
            else:
                sklearn_epoch *= scale
            n_iter = max(1, math.ceil(wall / sklearn_epoch))
            estimator = BernoulliRBM(
                hidden,
                learning_rate=rate,
                batch_size=s.rbm_batch,
                n_iter=n_iter,
                random_state=s.seed,
            )
            started = time.perf_counter()
            estimator.fit(x)
            sk_wall = time.perf_counter() - started
        rbm = _sklearn_to_rbm(estimator, worker.device)
        result["sklearn"] = {
            "epochs": n_iter,
            "seconds": sk_wall,
            **_score_rbm(worker, rbm, s.seed),
        }
        result["difference_nats"] = (
            result["rbmvae"]["test_log_likelihood"] - result["sklearn"]["test_log_likelihood"]
        )
    return result


def w_ais(worker: Worker) -> dict:
    """``ais_log_partition`` with the settings' runs and betas at 500 hidden units."""
    s = worker.settings
    rbm, trained = _load_model(worker, "rbm-equal-time.pt", "rbm", n_hidden=s.equal_time_hidden)
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
    vae, trained = _load_model(worker, f"vae-z{latent}.pt", "vae", n_latent=latent)
    x = worker.binary_test(s.iwae_images).to(worker.device)
    times, values = [], []
    for repeat in range(max(1, s.repeats - 1)):
        generator = make_generator(s.seed + repeat, worker.device)
        started = time.perf_counter()
        values.append(iwae_log_likelihood(vae, x, k=s.iwae_k, generator=generator))
        synchronize(worker.device)
        times.append(time.perf_counter() - started)
    return {"seconds": summary(times), "log_likelihood": values, "trained_model": trained}


def w_inpaint(worker: Worker) -> dict:
    """``clamped_gibbs`` on test images with a random mask (each image loses the same fraction)."""
    s = worker.settings
    rbm, trained = _load_model(worker, "rbm-equal-time.pt", "rbm", n_hidden=s.inpaint_hidden)
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


def w_baseline(worker: Worker) -> dict:
    """Nothing but torch, rbmvae and the data set in memory: the floor of every peak."""
    return {"images": worker.n_train}


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::addmv", "aten::mv", "aten::addmm_")
RANDOM_OPS = ("aten::uniform_", "aten::normal_", "aten::random_", "aten::bernoulli_")


def w_profile(worker: Worker, kind: str, size: int, method: str = "pcd") -> dict:
    """Where one training step's time goes: ``fit`` on a few hundred images under the profiler,
    self time per operator, grouped as matrix products, random draws and the rest."""
    from torch.profiler import ProfilerActivity, profile

    s = worker.settings
    batch = s.rbm_batch if kind == "rbm" else s.vae_batch
    data = worker.train_subset(batch * s.profile_steps)
    if kind == "rbm":
        model, options = RBM(N_VISIBLE, size), {"method": method, "batch_size": batch}
    else:
        model, options = VAE(N_VISIBLE, VAE_HIDDEN, size), {"batch_size": batch}
    model = model.to(worker.device)
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
        name = e.key
        group = (
            "matrix products"
            if name in MATMUL_OPS
            else "random draws"
            if name in RANDOM_OPS
            else "other"
        )
        groups[group] += e.self_cpu_time_total
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


WORKLOADS = {
    "floor": w_floor,
    "baseline": w_baseline,
    "train": w_train,
    "sklearn_rbm": w_sklearn_rbm,
    "plain_vae": w_plain_vae,
    "equal_time": w_equal_time,
    "ais": w_ais,
    "iwae": w_iwae,
    "inpaint": w_inpaint,
    "profile": w_profile,
}


def _threads(settings: Settings) -> int:
    return settings.threads or os.cpu_count() or 1


def peak_memory_mb() -> float:
    """Peak resident set size of this process in MiB (``ru_maxrss``: KiB on Linux, bytes on
    macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


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
    torch.set_num_threads(_threads(settings))
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


# ------------------------------------------------------------------------------------------------
# The parent: quiet-machine checks, one subprocess per workload


def _cpu_times() -> tuple[float, float] | None:
    """``(busy, total)`` CPU jiffies of the whole machine from /proc/stat (None elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [float(v) for v in fields[:8]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def cpu_busy(seconds: float = 1.0) -> float | None:
    """The fraction of all CPUs busy over the next ``seconds`` (None where unknown)."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(seconds)
    second = _cpu_times()
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
    import resource

    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--settings",
        json.dumps(dataclasses.asdict(settings)),
        "--params",
        json.dumps(params),
        "--workdir",
        str(workdir),
        "--label",
        label or "",
    ]
    threads = str(_threads(settings))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = _cpu_times()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = _cpu_times()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (usage.ru_utime - children.ru_utime) + (usage.ru_stime - children.ru_stime)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit status {done.returncode}"}
    result = json.loads(lines[-1][len("RESULT ") :])
    if before is not None and after is not None:
        jiffy = 1.0 / os.sysconf("SC_CLK_TCK")
        cpus = os.cpu_count() or 1
        others = (after[0] - before[0]) * jiffy - own
        result["others_cpu_share"] = max(0.0, others / (wall * cpus))
    result["worker_cpu_seconds"] = own
    return result


@dataclass
class Step:
    label: str
    workload: str
    params: dict


def plan(settings: Settings) -> list[Step]:
    """Every workload of a run, in order (the floor first, evaluation after training)."""
    s = settings
    steps = [Step("floor", "floor", {}), Step("baseline", "baseline", {})]
    for hidden in s.rbm_hidden:
        for method in ("pcd", "cd"):
            steps.append(
                Step(
                    f"rbm-{method}1-h{hidden}",
                    "train",
                    {"kind": "rbm", "size": hidden, "method": method, "k": 1},
                )
            )
    long = max(s.rbm_hidden)
    steps.append(
        Step(
            f"rbm-cd{s.cd_long_k}-h{long}",
            "train",
            {
                "kind": "rbm",
                "size": long,
                "method": "cd",
                "k": s.cd_long_k,
                "images": s.cd_long_images,
            },
        )
    )
    for latent in s.vae_latent:
        save = f"vae-z{latent}.pt" if latent == max(s.vae_latent) else None
        steps.append(Step(f"vae-z{latent}", "train", {"kind": "vae", "size": latent, "save": save}))
    if s.sklearn:
        for hidden in s.rbm_hidden:
            steps.append(Step(f"sklearn-h{hidden}", "sklearn_rbm", {"hidden": hidden}))
    for latent in s.vae_latent:
        steps.append(Step(f"plain-vae-z{latent}", "plain_vae", {"latent": latent}))
    top = max(s.vae_latent)
    steps.append(Step(f"plain-vae-tensor-z{top}", "plain_vae", {"latent": top, "loader": False}))
    steps.append(Step("equal-time", "equal_time", {"hidden": s.equal_time_hidden}))
    steps += [Step("ais", "ais", {}), Step("iwae", "iwae", {}), Step("inpaint", "inpaint", {})]
    steps.append(Step(f"profile-rbm-pcd1-h{long}", "profile", {"kind": "rbm", "size": long}))
    steps.append(Step(f"profile-vae-z{top}", "profile", {"kind": "vae", "size": top}))
    return steps


def _equal_time_params(step: Step, results: dict, settings: Settings) -> dict:
    """The equal-time run reuses the measured epoch times of rbmvae and BernoulliRBM."""
    params = dict(step.params)
    hidden = params["hidden"]
    defaults = TrainConfig.defaults_for("rbm")
    train = results.get(f"rbm-{defaults.method}{defaults.k}-h{hidden}", {})
    # the fastest epochs: other processes can only slow a run down, never speed it up
    if "epoch_seconds" in train:
        params["rbmvae_epoch"] = train["epoch_seconds"]["min"] + train["monitor_seconds"]["min"]
    sk = results.get(f"sklearn-h{hidden}", {})
    if "epoch_seconds" in sk:
        params["sklearn_epoch"] = sk["epoch_seconds"]["min"]
    return params


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


# ------------------------------------------------------------------------------------------------
# The report


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

    versions["rbmvae"] = getattr(rbmvae, "__version__", "?")
    blas = "MKL" if torch.backends.mkl.is_available() else "other"
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": _threads(settings),
        "torch_blas": blas,
        "versions": versions,
        "device": settings.device,
        "platform": platform.platform(terse=True),
    }
    if settings.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(settings.device))
    return info


def _stat(value: dict | None, digits: int = 2) -> str:
    if not value:
        return "-"
    return f"{value['median']:.{digits}f} ({value['min']:.{digits}f}-{value['max']:.{digits}f})"


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


def evaluate_targets(results: dict, floors: dict, settings: Settings) -> list[dict]:
    """The issue's targets, each with the measured figure and whether it is met. A figure from a
    workload that other processes disturbed (more than 5% of the CPUs) is marked as such."""
    targets = []

    def add(name, value, limit, text, labels, higher=False, note=""):
        if value is None:
            targets.append({"target": name, "value": None, "met": None, "text": "not measured"})
            return
        met = value >= limit if higher else value <= limit
        shares = [results.get(label, {}).get("others_cpu_share") or 0.0 for label in labels]
        text = text.format(value) + note
        if max(shares, default=0.0) > DISTURBED:
            text += f" (disturbed: other processes took {max(shares):.0%} of the CPUs)"
        targets.append({"target": name, "value": value, "met": met, "text": text})

    def seconds_of(label: str) -> float | None:
        result = results.get(label, {})
        stat = result.get("epoch_seconds") or result.get("seconds")
        return stat["median"] if isinstance(stat, dict) else None

    def against_floor(label: str, limit: float, name: str) -> None:
        seconds, floor = seconds_of(label), floors.get(label)
        if not (seconds and floor):
            add(name, None, limit, "", [label])
            return
        note = f"; {seconds / floor['seconds']:.2f}x with its random draws in the floor"
        add(name, seconds / floor["gemm_seconds"], limit, "{:.2f}x", [label], note=note)

    def faster(label: str, other: str, limit: float, name: str) -> None:
        ours, theirs = seconds_of(label), seconds_of(other)
        value = theirs / ours if ours and theirs else None
        add(name, value, limit, "{:.2f}x", [label, other], higher=True)

    hidden = max(settings.rbm_hidden)
    for method in ("pcd1", "cd1"):
        label = f"rbm-{method}-h{hidden}"
        name = f"RBM {method.upper()} at {hidden} hidden"
        against_floor(label, 1.5, f"{name} <= 1.5x its matmul floor")
        faster(label, f"sklearn-h{hidden}", 1.5, f"{name} >= 1.5x faster than BernoulliRBM")
    latent = max(settings.vae_latent)
    against_floor(f"vae-z{latent}", 1.6, f"VAE z={latent} <= 1.6x its matmul floor")
    faster(
        f"vae-z{latent}",
        f"plain-vae-z{latent}",
        2.0,
        f"VAE z={latent} >= 2x faster than the DataLoader loop",
    )
    against_floor("inpaint", 1.5, "clamped Gibbs inpainting <= 1.5x its matmul floor")
    against_floor("ais", 1.5, "AIS <= 1.5x its matmul floor")
    if settings.ais_runs == 100 and settings.ais_betas == 14500:
        add(
            f"AIS with the defaults (100 runs, 14,500 betas) at {settings.equal_time_hidden} "
            "hidden under 40 s",
            seconds_of("ais"),
            40.0,
            "{:.1f} s",
            ["ais"],
        )
    equal = results.get("equal-time", {})
    if "difference_nats" in equal:
        add(
            "equal wall time: rbmvae's AIS test log-likelihood above BernoulliRBM's",
            equal["difference_nats"],
            0.0,
            "{:+.2f} nats",
            ["equal-time"],
            higher=True,
        )
    full = results.get("reproduce-full", {})
    if "wall_seconds" in full:
        add(
            "`reproduce --profile full` under 10 minutes",
            full["wall_seconds"] / 60,
            10.0,
            "{:.1f} min",
            [],
        )
    return targets


def workload_floors(results: dict, settings: Settings) -> dict[str, dict]:
    """The floor of every workload that ran: from the products and draws it measured right after
    it ran, or else from the run's first measurement."""
    common = results.get("floor", {})
    n_train = results.get("baseline", {}).get("images", 60000)
    floors = {}
    for label, cost in workload_costs(settings, n_train).items():
        own = results.get(label, {}).get("floor")
        if own is None and "gemm" not in common:
            continue
        floor = {**common, **(own or {})}
        floor["gemm"] = {**common.get("gemm", {}), **(own or {}).get("gemm", {})}
        floor.setdefault("square_gflops", math.inf)
        floors[label] = floor_seconds(cost, floor)
    return floors


def render(results: dict, settings: Settings, machine: dict, command: str) -> str:
    """RESULTS.md: machine, floor, every table with medians (min-max), targets, profiles."""
    floor = results.get("floor", {})
    n_train = results.get("baseline", {}).get("images", 60000)
    floors = workload_floors(results, settings)
    lines = [
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
        f"- device: {machine['device']}" + (f" ({machine['gpu']})" if "gpu" in machine else ""),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
        f"- platform: {machine['platform']}",
        f"- data: {settings.dataset}, {n_train} training images of {N_VISIBLE} pixels, float32"
        + (
            f"; training workloads on the first {settings.train_images} images, scaled to "
            "a whole epoch"
            if settings.train_images
            else ""
        ),
        "- others' CPU: the share of all CPUs that other processes used while a workload ran "
        "(0% on a quiet machine; timings above a few percent are disturbed)",
        "",
    ]
    if "gemm" in floor:
        lines += [
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
            "| product (layout m x k x n) | GFLOP/s | seconds per product |",
            "| --- | ---: | ---: |",
        ]
        for key, value in floor["gemm"].items():
            lines.append(f"| {key} | {value['gflops']:.0f} | {value['seconds'] * 1e3:.3f} ms |")
        lines.append("")
    lines += [
        "## Training, seconds per epoch",
        "",
        "Per epoch of 60,000 images: `rbmvae.training.fit`'s own time for the epoch (its "
        "stochastic binarization and every step; the epoch-end monitor is shown apart). RBM: "
        f"batch {settings.rbm_batch}, PCD-1 or CD-k; VAE: 784-{VAE_HIDDEN}-z, batch "
        f"{settings.vae_batch}, Adam.",
        "",
        "| workload | s/epoch | monitor s | matmul floor s | + RNG s | measured / matmul floor "
        "| measured / (+ RNG) | GFLOP/epoch | GFLOP/s | peak MB | others' CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, result in results.items():
        if "epoch_seconds" not in result or label.startswith(("sklearn", "plain")):
            continue
        seconds = result["epoch_seconds"]["median"]
        f = floors.get(label)
        note = f" (on {result['images']} images, scaled)" if result.get("scale", 1) > 1 else ""
        lines.append(
            f"| {label}{note} | {_stat(result['epoch_seconds'])} | "
            f"{result['monitor_seconds']['median']:.2f} | "
            + (
                f"{f['gemm_seconds']:.2f} | {f['seconds']:.2f} | {_ratio(seconds, f['gemm_seconds'])} | "
                f"{_ratio(seconds, f['seconds'])} | {f['flops'] / 1e9:.0f} | "
                f"{f['flops'] / 1e9 / seconds:.0f} | "
                if f
                else "- | - | - | - | - | - | "
            )
            + f"{_mb(result)} | {_others(result)} |"
        )
    failed = {k: v["error"] for k, v in results.items() if isinstance(v, dict) and "error" in v}
    lines += ["", "## Side by side with what users would pick instead", ""]
    if settings.sklearn:
        lines += [
            "scikit-learn's `BernoulliRBM` (PCD-1 with mean-field hidden statistics; float32 "
            f"grey input, batch {settings.rbm_batch}, the same learning rate, `n_iter=1`, "
            "seconds per `fit`). Its products are the same as rbmvae's PCD-1, so the same floor.",
            "",
            "| hidden | rbmvae PCD-1 s/epoch | BernoulliRBM s/epoch | rbmvae faster by | "
            "BernoulliRBM / matmul floor | BernoulliRBM peak MB |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for hidden in settings.rbm_hidden:
            ours = results.get(f"rbm-pcd1-h{hidden}", {}).get("epoch_seconds")
            sk_result = results.get(f"sklearn-h{hidden}", {})
            theirs = sk_result.get("epoch_seconds")
            f = floors.get(f"rbm-pcd1-h{hidden}")
            sk_floor = f["gemm_seconds"] if f else None
            lines.append(
                f"| {hidden} | {_stat(ours)} | {_stat(theirs)} | "
                f"{_ratio(theirs and theirs['median'], ours and ours['median'])} | "
                f"{_ratio(theirs and theirs['median'], sk_floor)} | {_mb(sk_result)} |"
            )
        lines.append("")
    lines += [
        "A plain PyTorch VAE loop as in PyTorch's examples (the same 784-256-z network, Adam "
        f"1e-3, batch {settings.vae_batch}, summed BCE + KL, `loss.item()` per step) over "
        "`DataLoader(TensorDataset(x), shuffle=True)`; the last row indexes one tensor instead.",
        "",
        "| VAE | rbmvae s/epoch | plain loop s/epoch | rbmvae faster by | plain / matmul floor |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for latent in settings.vae_latent:
        ours = results.get(f"vae-z{latent}", {}).get("epoch_seconds")
        theirs = results.get(f"plain-vae-z{latent}", {}).get("epoch_seconds")
        f = floors.get(f"vae-z{latent}")
        lines.append(
            f"| z={latent}, DataLoader | {_stat(ours)} | {_stat(theirs)} | "
            f"{_ratio(theirs and theirs['median'], ours and ours['median'])} | "
            f"{_ratio(theirs and theirs['median'], f and f['gemm_seconds'])} |"
        )
    top = max(settings.vae_latent)
    ours = results.get(f"vae-z{top}", {}).get("epoch_seconds")
    theirs = results.get(f"plain-vae-tensor-z{top}", {}).get("epoch_seconds")
    f = floors.get(f"vae-z{top}")
    lines.append(
        f"| z={top}, tensor batches | {_stat(ours)} | {_stat(theirs)} | "
        f"{_ratio(theirs and theirs['median'], ours and ours['median'])} | "
        f"{_ratio(theirs and theirs['median'], f and f['gemm_seconds'])} |"
    )
    equal = results.get("equal-time", {})
    if "rbmvae" in equal:
        lines += [
            "",
            f"## Quality at equal wall time ({equal['hidden']} hidden units)",
            "",
            f"Budget {equal['budget_seconds']:.0f} s each. rbmvae: its default training "
            f"({equal['method']}, momentum, weight decay, learning rate decaying over the epochs, "
            "fresh stochastic binarization every epoch), as many whole epochs as fit in the "
            "budget; "
            "BernoulliRBM: enough epochs to take at least as long. Both scored by rbmvae's AIS "
            f"({settings.ais_runs} runs, {settings.ais_betas} betas, base-rate start) on the "
            "same stochastically binarized test set (seed 0); the interval is from AIS's "
            "+-3 standard errors on Z.",
            "",
            "| model | epochs | train s | log Z | test log-likelihood (nats) | effective runs |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, label in (("rbmvae", "rbmvae RBM"), ("sklearn", "BernoulliRBM")):
            r = equal.get(name)
            if not r:
                continue
            lines.append(
                f"| {label} | {r['epochs']} | {r['seconds']:.1f} | {r['log_z']:.2f} | "
                f"**{r['test_log_likelihood']:.2f}** [{r['test_log_likelihood_low']:.2f}, "
                f"{r['test_log_likelihood_high']:.2f}] | {r['effective_runs']:.1f} |"
            )
        if "difference_nats" in equal:
            lines += [
                "",
                f"Difference (rbmvae - BernoulliRBM): **{equal['difference_nats']:+.2f} "
                "nats** per test image.",
            ]
    lines += [
        "",
        "## Evaluation",
        "",
        f"- AIS: {settings.ais_runs} runs, {settings.ais_betas} betas, "
        f"{settings.equal_time_hidden} hidden (the equal-time rbmvae model)",
        f"- IWAE: K = {settings.iwae_k} on {settings.iwae_images} binarized test images, VAE "
        f"z={top}; its floor also counts one softplus per decoded pixel (Eq. 2.5)",
        f"- inpainting: clamped Gibbs, {settings.inpaint_images} test images, "
        f"{settings.inpaint_steps} sweeps, {settings.inpaint_fraction:.0%} of each image "
        f"missing at random, {settings.inpaint_hidden} hidden",
        "",
        "| workload | seconds | matmul floor s | + RNG (+ softplus) s | measured / matmul floor "
        "| measured / (+ RNG) | GFLOP | peak MB | others' CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label in ("ais", "iwae", "inpaint"):
        result = results.get(label)
        if not result or "seconds" not in result:
            continue
        seconds = result["seconds"]["median"]
        f = floors.get(label)
        lines.append(
            f"| {label} | {_stat(result['seconds'], 1)} | {f['gemm_seconds']:.1f} | "
            f"{f['seconds']:.1f} | {_ratio(seconds, f['gemm_seconds'])} | "
            f"{_ratio(seconds, f['seconds'])} | {f['flops'] / 1e9:.0f} | {_mb(result)} | "
            f"{_others(result)} |"
        )
    baseline = results.get("baseline", {})
    if "peak_rss_mb" in baseline:
        lines += [
            "",
            f"Peak memory is the resident set of the whole process; torch, rbmvae and "
            f"the data set alone take {baseline['peak_rss_mb']:.0f} MB.",
        ]
    full = results.get("reproduce-full")
    if full:
        lines += ["", "## `rbmvae reproduce --profile full`", ""]
        if "wall_seconds" in full:
            lines.append(
                f"Wall time: **{full['wall_seconds'] / 60:.1f} min** on {settings.dataset}."
            )
            lines += ["", "| part | seconds |", "| --- | ---: |"]
            for part, seconds in full["seconds"].items():
                lines.append(f"| {part} | {seconds:.1f} |")
        else:
            lines.append(f"failed: {full.get('error')}")
    targets = evaluate_targets(results, floors, settings)
    lines += [
        "",
        "## Targets (issue 6)",
        "",
        "| target | measured | met |",
        "| --- | ---: | :---: |",
    ]
    for t in targets:
        mark = "-" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['target']} | {t['text']} | {mark} |")
    profiles = {k: v for k, v in results.items() if k.startswith("profile-") and "groups" in v}
    if profiles:
        lines += [
            "",
            "## Where the time goes (profile of `fit`, self time per operator)",
            "",
        ]
        for label, p in profiles.items():
            groups = ", ".join(f"{k} {v:.0%}" for k, v in p["groups"].items())
            top_ops = ", ".join(f"{t['op']} {t['share']:.0%}" for t in p["top"][:6])
            lines.append(
                f"- {label[len('profile-') :]}: {p['ms_per_step']:.2f} ms per step over "
                f"{p['steps']} steps; {groups}. Top: {top_ops}."
            )
    if failed:
        lines += ["", "## Failed workloads", ""]
        lines += [f"- {label}: {error}" for label, error in failed.items()]
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


# ------------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and few")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    parser.add_argument("--dataset", default="fashion-mnist", help="data set name")
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
    parser.add_argument("--equal-time", type=float, help="seconds per model at equal wall time")
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
    if args.equal_time:
        overrides["equal_time_seconds"] = args.equal_time
    if args.no_sklearn:
        overrides["sklearn"] = False
    settings = Settings.quick(**overrides) if args.quick else Settings(**overrides)
    if settings.sklearn:
        try:
            import sklearn  # noqa: F401
        except ImportError:
            print("scikit-learn is absent (pip install -e '.[bench]'): skipping its parts")
            settings.sklearn = False
    if settings.device.startswith("cuda"):
        resolve_device(settings.device)  # refuses cuda where there is none
    return settings


def settings_from_json(text: str) -> Settings:
    values = json.loads(text)
    for name in ("rbm_hidden", "vae_latent"):
        values[name] = tuple(values[name])
    return Settings(**values)


DISTURBED = 0.05  # others' CPU share above which a workload's timing is not trusted


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
            if not wanted or (step.workload in ("sklearn_rbm",) and not settings.sklearn):
                continue
            if step.label in results:
                log(f"{step.label}: kept from the earlier run")
                continue
            params = step.params
            if step.workload == "equal_time":
                params = _equal_time_params(step, results, settings)
            result = None
            for attempt in range(1 + retries):
                busy = wait_for_idle(max_wait, log=log)[0] if max_wait > 0 else None
                log(f"{step.label} ..." if attempt == 0 else f"{step.label} again ...")
                trial = spawn(step.workload, settings, workdir, params, step.label)
                trial["busy_before"] = busy
                trial["attempts"] = attempt + 1
                disturbed = trial.get("others_cpu_share", 0.0)
                if result is None or disturbed < result.get("others_cpu_share", 0.0):
                    result = trial
                if "error" in trial or disturbed <= DISTURBED:
                    break
                log(f"  other processes took {disturbed:.0%} of the CPUs")
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:  # inside a workload's subprocess
        settings = settings_from_json(args.settings)
        result = run_workload(
            args.worker, settings, Path(args.workdir), json.loads(args.params), label=args.label
        )
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

        def save(results: dict) -> None:
            partial = raw.with_name(raw.name + ".partial")
            partial.write_text(json.dumps(results, indent=1) + "\n")
            partial.replace(raw)

    elif args.resume:
        raise SystemExit("--resume needs --json FILE (the figures of the run to continue)")
    results = run_all(
        settings, only, args.max_wait, workdir, retries=args.retries, previous=previous, save=save
    )
    command = "benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print_table(results, settings)
    print(f"total {time.perf_counter() - started:.0f} s")
    text = render(results, settings, machine_info(settings), command.strip())
    out = args.out or (None if args.quick else str(DEFAULT_OUT))
    if out:
        Path(out).write_text(text)
        print(f"wrote {out}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
