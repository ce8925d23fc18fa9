"""The cost model: which matrix products and how many random draws each workload needs.

The floor of a workload is the time its own products and random draws take in isolation,
counted here from the algorithm (and checked against ``FlopCounterMode`` in
tests/test_benchmarks.py), priced by the times measured in the same run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from benchmarks.settings import N_VISIBLE, SIXTEEN_BITS, VAE_HIDDEN, Settings


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
    n: int,
    hidden: int,
    method: str,
    k: int,
    visible: int = N_VISIBLE,
    chains: int | None = None,
    temperatures: int = 1,
) -> Cost:
    """One CD-k, PCD-k or PT step on ``n`` images (``ContrastiveDivergence.step``, Eqs. 1.13-1.14).

    Products: hidden inputs of the data, k Gibbs sweeps of ``h W'`` and ``v W``, and the weight
    gradient ``V_model' H_model - V_data' H_data`` (two). PCD runs ``chains`` persistent chains
    (the batch size; the last batch of an epoch may be shorter) and computes the hidden inputs of
    the data and of the chains' last states as one product. Draws: PCD samples the chains'
    visible and hidden states every sweep; CD samples the data-driven hidden units and every
    state but the last visible and hidden ones (which are probabilities). Parallel tempering
    (``ParallelTempering.step``, Eqs. 1.16-1.17) sweeps ``chains`` chains at each of
    ``temperatures`` temperatures: the hidden inputs of all once, then per round ``h W'`` and
    ``v W`` for all and one uniform per state and per exchanged pair; the data's hidden inputs
    and the weight gradient as PCD's."""
    cost = Cost()
    if method == "pt":
        chains = n if chains is None else chains
        rows = chains * temperatures
        cost.add(Gemm("NN", rows, visible, hidden), 1 + k)
        cost.add(Gemm("NT", rows, hidden, visible), k)
        cost.add(Gemm("NN", n, visible, hidden))
        cost.add(Gemm("TN", visible, n, hidden))
        cost.add(Gemm("TN", visible, chains, hidden))
        cost.uniform = k * (rows * (visible + hidden) + (temperatures - 1) * chains)
    elif method == "pcd":
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
    n_images: int,
    batch: int,
    hidden: int,
    method: str,
    k: int,
    stochastic: bool = True,
    chains: int | None = None,
    temperatures: int = 1,
) -> Cost:
    """One epoch: every step, plus one uniform per pixel for the epoch's stochastic binarization.
    ``chains``: the persistent chains (per temperature; None: the batch size)."""
    cost = Cost()
    chains = batch if chains is None else chains
    for n in batch_sizes(n_images, batch):
        cost.merge(rbm_step_cost(n, hidden, method, k, chains=chains, temperatures=temperatures))
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
    """One epoch of VAE steps (the last batch may be short)."""
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
    costs[f"rbm-pt1-h{long}"] = rbm_epoch_cost(
        n_train, s.rbm_batch, long, "pt", 1, chains=s.pt_chains, temperatures=s.pt_temperatures
    )
    # the same products and as many draws, each from 16 random bits (Eq. 1.20); the floor prices
    # the draws as float32 uniforms, so "with its draws" is measured against the dearer draws
    small = [f"rbm-pcd1-h{hidden}" for hidden in s.rbm_hidden if hidden != long]
    for label in (*small, f"rbm-cd{s.cd_long_k}-h{long}", f"rbm-pt1-h{long}"):
        costs[f"{label}{SIXTEEN_BITS}"] = costs[label]
    for latent in s.vae_latent:
        costs[f"vae-z{latent}"] = vae_epoch_cost(n_train, s.vae_batch, latent)
    costs["ais"] = ais_cost(s.ais_runs, s.ais_betas, s.ais_hidden)
    costs["iwae"] = iwae_cost(s.iwae_images, s.iwae_k, max(s.vae_latent), chunk=s.iwae_chunk)
    missing = round(s.inpaint_fraction * N_VISIBLE) * s.inpaint_images
    costs["inpaint"] = inpaint_cost(s.inpaint_images, s.inpaint_steps, s.inpaint_hidden, missing)
    return costs


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
