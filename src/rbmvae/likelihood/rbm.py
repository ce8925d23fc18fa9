"""RBM log-likelihoods: exact log Z by enumeration, AIS (Salakhutdinov & Murray 2008) and the
reverse-annealing bound RAISE (docs/derivation.md, section 3)."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..basics.errors import ConfigError
from ..models.rbm import RBM, bernoulli

# ------------------------------------------------------------------------------------------------
# RBM: exact and annealed-importance-sampling estimates of log Z (docs/derivation.md, section 3)

MAX_ENUMERATED_UNITS = 25


def binary_states(
    start: int, stop: int, n_bits: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Rows ``start .. stop - 1`` of the table of all binary vectors of length ``n_bits``."""
    codes = torch.arange(start, stop, device=device, dtype=torch.int64)
    shifts = torch.arange(n_bits, device=device, dtype=torch.int64)
    return ((codes.unsqueeze(1) >> shifts) & 1).to(dtype)


@torch.inference_mode()
def log_partition_exact(rbm: RBM, batch_size: int = 1 << 10) -> float:
    """Exact ``log Z`` by enumerating every state of the smaller layer (Eq. 3.1).

    With H <= D hidden units, ``log Z = logsumexp_h -F(h)`` over all 2^H hidden vectors, with
    ``F(h) = -c'h - sum_i softplus(b_i + W_i h)`` the free energy with the visible units summed out
    (Eq. 1.8); otherwise the sum runs over the 2^D visible vectors with ``F(v)`` (Eq. 1.7).
    States are taken about ``batch_size`` at a time: each batch shares its high bits, so its
    inputs to the other layer are one precomputed table (all low-bit states times their weight
    rows) plus one vector, with no matrix product per batch. Each batch is reduced with a float64
    logsumexp and accumulated. Refuses (:class:`ConfigError`) when the smaller layer has more than
    25 units.
    """
    if batch_size <= 0:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size}")
    if rbm.n_hidden <= rbm.n_visible:
        # states h: linear term c'h, inputs to the visible layer b + W h
        n_units, linear, other_bias, coupling = (
            rbm.n_hidden,
            rbm.hidden_bias,
            rbm.visible_bias,
            rbm.weight.t(),
        )
    else:
        n_units, linear, other_bias, coupling = (
            rbm.n_visible,
            rbm.visible_bias,
            rbm.hidden_bias,
            rbm.weight,
        )
    if n_units > MAX_ENUMERATED_UNITS:
        raise ConfigError(
            f"exact log Z needs a layer of at most {MAX_ENUMERATED_UNITS} units to enumerate; "
            f"this RBM has {rbm.n_visible} visible and {rbm.n_hidden} hidden (use AIS)"
        )
    dtype, device = rbm.weight.dtype, rbm.weight.device
    n_low = min(n_units, max(0, batch_size.bit_length() - 1))
    low = binary_states(0, 1 << n_low, n_low, dtype, device)
    low_inputs = low @ coupling[:n_low]  # (2^n_low, other layer)
    low_linear = low @ linear[:n_low]
    high = binary_states(0, 1 << (n_units - n_low), n_units - n_low, dtype, device)
    high_inputs = torch.addmm(other_bias, high, coupling[n_low:])
    high_linear = high @ linear[n_low:]
    total = torch.tensor(-math.inf, dtype=torch.float64, device=device)
    for offset, shift in zip(high_inputs, high_linear.tolist(), strict=True):
        minus_free = F.softplus(low_inputs + offset).sum(1).double() + low_linear.double()
        total = torch.logaddexp(total, torch.logsumexp(minus_free, dim=0) + shift)
    return float(total)


def base_rate_visible_bias(train_images: torch.Tensor, pseudo_count: float = 1.0) -> torch.Tensor:
    """Visible biases of the base-rate RBM (Eq. 3.6): ``logit`` of smoothed pixel means.

    ``p_i = (sum_n x_ni + pseudo_count) / (N + 2 pseudo_count)``, so that a pixel that is never on
    in the training data still gets a finite bias.
    """
    if pseudo_count <= 0:
        raise ConfigError(f"pseudo_count must be positive, got {pseudo_count}")
    n = train_images.shape[0]
    p = (train_images.double().sum(0) + pseudo_count) / (n + 2 * pseudo_count)
    return (torch.log(p) - torch.log1p(-p)).to(train_images.dtype)


# Salakhutdinov & Murray (2008): 500 betas on [0, 0.5), 4,000 on [0.5, 0.9), 10,000 on [0.9, 1].
SM08_SCHEDULE = ((0.5, 500), (0.9, 4000), (1.0, 10000))


def ais_betas(
    n_betas: int = 14500, schedule: tuple[tuple[float, int], ...] = SM08_SCHEDULE
) -> torch.Tensor:
    """Inverse temperatures ``0 = beta_0 < ... < beta_K = 1`` of the AIS path (Eq. 3.2), float64.

    ``schedule`` lists ``(end, weight)`` segments; each segment receives a share of the K steps in
    proportion to its weight and spaces them evenly. The default reproduces SM08's spacing
    (coarse up to 0.5, finer up to 0.9, finest up to 1) for any K >= 3.
    """
    if n_betas < len(schedule):
        raise ConfigError(f"n_betas must be at least {len(schedule)}, got {n_betas}")
    weights = [weight for _, weight in schedule]
    counts = [max(1, round(n_betas * w / sum(weights))) for w in weights[:-1]]
    counts.append(n_betas - sum(counts))
    if counts[-1] < 1:
        raise ConfigError(f"n_betas {n_betas} is too small for the schedule {schedule}")
    pieces, start = [], 0.0
    for (end, _), count in zip(schedule, counts, strict=True):
        pieces.append(torch.linspace(start, end, count + 1, dtype=torch.float64)[:-1])
        start = end
    pieces.append(torch.ones(1, dtype=torch.float64))
    return torch.cat(pieces)


@dataclass
class AISResult:
    """An AIS estimate of ``log Z`` with its interval ``[log_z_low, log_z_high]`` (Eq. 3.5).

    The interval is ``log(mean w +- 3 std(w) / sqrt(n_runs))`` of the importance weights;
    ``log_z_low`` is ``-inf`` when the lower end is not positive. ``matmuls`` counts the matrix
    products of the annealing loop. Diagnostics: ``effective_runs = (sum w)^2 / sum w^2`` (near
    ``n_runs`` when the weights are even, near 1 when one run dominates and the estimate is
    unreliable) and the standard deviation of the log weights.
    """

    log_z: float
    log_z_low: float
    log_z_high: float
    n_runs: int
    n_betas: int
    seconds: float
    log_z_base: float = 0.0
    matmuls: int = 0
    effective_runs: float = 0.0
    log_weight_std: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _log_mean_interval(log_w: torch.Tensor, width: float = 3.0) -> tuple[float, float, float]:
    """``log mean w`` and ``log(mean w -+ width * std(w) / sqrt(R))``, computed stably."""
    shift = log_w.max()
    w = torch.exp(log_w - shift)
    mean = w.mean()
    std = w.std() if w.numel() > 1 else torch.zeros((), dtype=w.dtype)
    delta = width * std / math.sqrt(w.numel())
    low = float(shift + torch.log(mean - delta)) if mean > delta else -math.inf
    return float(shift + torch.log(mean)), low, float(shift + torch.log(mean + delta))


@torch.inference_mode()
def ais_log_partition(
    rbm: RBM,
    base_visible_bias: torch.Tensor,
    n_runs: int = 100,
    n_betas: int = 14500,
    generator: torch.Generator | None = None,
    betas: torch.Tensor | None = None,
) -> AISResult:
    """Estimate ``log Z`` by annealed importance sampling (Salakhutdinov & Murray 2008).

    The path runs from the base-rate RBM (Eq. 3.6: zero weights, visible biases
    ``base_visible_bias``, zero hidden biases; ``log Z_0 = sum_i softplus(b0_i) + H log 2``) to
    ``rbm`` through ``p_beta(v) ~ f_beta(v)``, ``log f_beta(v) = (1 - beta) b0'v + beta b'v +
    sum_j softplus(beta (c_j + v'W_j))`` (Eq. 3.2). All ``n_runs`` runs advance together as one
    batch. At each beta the product ``v [W | b - b0]`` is computed once: it gives the
    weight increment ``log f_beta(v) - log f_beta_prev(v)`` (Eq. 3.4) and ``p_beta(h | v)`` of
    the Gibbs transition that follows (Eq. 3.3); the transition's ``h W'`` is the only other
    product, so the loop does ``2 K - 1`` matrix products for K betas, and draws one uniform per
    hidden and visible unit and transition, compared in place with the probabilities. The
    softplus differences of the increments are formed without cancellation in float32 (the
    ``log1p``/``expm1`` form of section 3.2 of docs/derivation.md) and summed in float64;
    ``log Z = log Z_0 + log mean exp(log w)`` (Eq. 3.5).
    ``betas`` overrides the SM08 schedule of :func:`ais_betas`.
    """
    started = time.perf_counter()
    if n_runs <= 0:
        raise ConfigError(f"n_runs must be a positive integer, got {n_runs}")
    steps = _checked_betas(ais_betas(n_betas) if betas is None else betas)
    base = base_visible_bias.to(device=rbm.weight.device, dtype=rbm.weight.dtype)
    if base.shape != rbm.visible_bias.shape:
        raise ConfigError(
            f"base_visible_bias has shape {tuple(base.shape)}, "
            f"expected {tuple(rbm.visible_bias.shape)}"
        )
    log_z_base = float(F.softplus(base.double()).sum() + rbm.n_hidden * math.log(2.0))
    log_w, matmuls, _ = _annealed_log_weights(rbm, base, steps, n_runs, generator)
    log_mean, low, high = _log_mean_interval(log_w)
    return AISResult(
        log_z=log_z_base + log_mean,
        log_z_low=log_z_base + low,
        log_z_high=log_z_base + high,
        n_runs=n_runs,
        n_betas=len(steps) - 1,
        seconds=time.perf_counter() - started,
        log_z_base=log_z_base,
        matmuls=matmuls,
        effective_runs=float(
            torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))
        ),
        log_weight_std=float(log_w.std()) if n_runs > 1 else 0.0,
    )


def _checked_betas(betas) -> list[float]:
    betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
    if betas.numel() < 2 or betas[0] != 0 or betas[-1] != 1 or bool((betas.diff() < 0).any()):
        raise ConfigError("betas must rise from 0 to 1 (at least two values, never decreasing)")
    return betas.tolist()


# Steps with |beta - beta'| |c_j + v'W_j| <= this take the float32 form of the increments of
# Eq. 3.4, -log1p(sigma(beta x) expm1((beta' - beta) x)) (docs/derivation.md, section 3.2).
SMALL_STEP = 1.0


def _hidden_input_bound(rbm: RBM) -> float:
    """``max_j |c_j| + sum_i |W_ij|``: a bound on ``|c_j + v'W_j|`` over every binary v."""
    with torch.no_grad():
        return float((rbm.hidden_bias.abs() + rbm.weight.abs().sum(0)).max())


def _softplus_gain(
    hidden_inputs: torch.Tensor,
    probs_h: torch.Tensor,
    beta: float,
    previous: float,
    small: bool,
    terms: torch.Tensor,
) -> torch.Tensor:
    """``sum_j softplus(beta x_j) - softplus(beta' x_j)`` (n_runs,) in float64, for hidden inputs
    x (n_runs, H) whose ``sigma(beta x)`` is in ``probs_h`` and beta' = ``previous``
    (docs/derivation.md, section 3.2). A ``small`` step (every ``|beta - beta'| |x_j|`` at most
    ``SMALL_STEP``) is formed in the inputs' dtype as ``-log1p(sigma(beta x) expm1((beta' - beta)
    x))`` into the buffer ``terms`` (n_runs, H); a larger one as two softplus sums in float64.
    """
    if small:
        torch.mul(hidden_inputs, previous - beta, out=terms).expm1_().mul_(probs_h).log1p_()
        return terms.sum(1, dtype=torch.float64).neg_()
    wide = hidden_inputs.double()
    return F.softplus(wide * beta).sum(1) - F.softplus(wide * previous).sum(1)


@torch.inference_mode()
def _annealed_log_weights(
    rbm: RBM,
    base: torch.Tensor,
    steps: list[float],
    n_runs: int,
    generator,
    start: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int, torch.Tensor]:
    """The log importance weights (n_runs,) of the runs along ``steps`` (Eq. 3.4), float64, the
    number of matrix products made and the runs' last visible states (n_runs, D).

    Without ``start`` the runs begin with exact draws from the base model (``steps[0]`` must then
    be 0); with ``start`` (n_runs, D) they begin with one transition ``T_steps[0]`` from it, the
    reverse chain of RAISE (Eq. 3.10). Then, for k = 1 .. K: the increment ``log f_k(v) - log
    f_(k-1)(v)`` at the current state, followed by ``T_k`` unless k = K. The softplus
    differences of a step are formed in the model's dtype as ``-log1p(sigma(beta x)
    expm1((beta' - beta) x))``, which has no cancellation when the step is small for every
    hidden unit (``|beta - beta'| |x_j| <= SMALL_STEP``, checked against
    :func:`_hidden_input_bound`), or else as two softplus sums in float64; the sums over the H
    units and over the steps are accumulated in float64 (docs/derivation.md, section 3.2).
    """
    weight, visible_bias, hidden_bias = rbm.weight, rbm.visible_bias, rbm.hidden_bias
    dtype, device = weight.dtype, weight.device
    n_hidden = rbm.n_hidden
    bound = _hidden_input_bound(rbm)
    # One product per beta gives the hidden inputs c + vW and, in the last column, (b - b0)'v.
    weight_aug = torch.cat([weight, (visible_bias - base).unsqueeze(1)], dim=1)
    bias_aug = torch.cat([hidden_bias, hidden_bias.new_zeros(1)])
    # Reused buffers; the hidden and visible samples are drawn in place into noise_h, noise_v.
    inputs = torch.empty(n_runs, n_hidden + 1, dtype=dtype, device=device)
    hidden_inputs, linear = inputs[:, :n_hidden], inputs[:, n_hidden]  # views of the product
    probs_h = torch.empty(n_runs, n_hidden, dtype=dtype, device=device)  # sigma(beta x)
    terms = torch.empty(n_runs, n_hidden, dtype=dtype, device=device)
    noise_h = torch.empty(n_runs, n_hidden, dtype=dtype, device=device)
    noise_v = torch.empty(n_runs, rbm.n_visible, dtype=dtype, device=device)
    visible_inputs = torch.empty(n_runs, rbm.n_visible, dtype=dtype, device=device)
    weight_t = weight.t()
    matmuls = 0

    def transition(beta: float) -> torch.Tensor:
        # T_beta from the state whose hidden probabilities sigma(beta x) are in probs_h:
        # h ~ p_beta(h | v), then v ~ p_beta(v | h) (Eq. 3.3), as u < p in place.
        nonlocal matmuls
        torch.rand(noise_h.shape, generator=generator, out=noise_h)
        hidden = noise_h.lt_(probs_h)
        torch.addmm(
            torch.lerp(base, visible_bias, beta), hidden, weight_t, alpha=beta, out=visible_inputs
        )
        matmuls += 1
        torch.rand(noise_v.shape, generator=generator, out=noise_v)
        return noise_v.lt_(visible_inputs.sigmoid_())

    if start is None:
        visible = bernoulli(torch.sigmoid(base).expand(n_runs, -1).contiguous(), generator)
    else:
        torch.addmm(bias_aug, start.to(device=device, dtype=dtype), weight_aug, out=inputs)
        matmuls += 1
        torch.mul(hidden_inputs, steps[0], out=probs_h).sigmoid_()
        visible = transition(steps[0])
    # log w_k - log w_(k-1) per run, in float64 (Eq. 3.4)
    log_w = torch.zeros(n_runs, dtype=torch.float64, device=device)
    previous = steps[0]
    last = len(steps) - 1
    for k in range(1, last + 1):
        beta = steps[k]
        torch.addmm(bias_aug, visible, weight_aug, out=inputs)
        matmuls += 1
        torch.mul(hidden_inputs, beta, out=probs_h).sigmoid_()
        small = abs(beta - previous) * bound <= SMALL_STEP
        gain = _softplus_gain(hidden_inputs, probs_h, beta, previous, small, terms)
        # + (beta - beta') (b - b0)'v
        log_w += gain.add_(linear.double(), alpha=beta - previous)
        previous = beta
        if k == last:
            break
        visible = transition(beta)
    return log_w, matmuls, visible


@torch.inference_mode()
def raise_log_likelihood(
    rbm: RBM,
    visible: torch.Tensor,
    base_visible_bias: torch.Tensor,
    n_betas: int = 14500,
    generator: torch.Generator | None = None,
    betas: torch.Tensor | None = None,
    batch_size: int = 1000,
) -> torch.Tensor:
    """RAISE (Burda, Grosse & Salakhutdinov 2015): a conservative ``log p(v)`` per image (Eq. 3.11).

    For each row of ``visible`` (N, D) one reverse chain runs from the image down the AIS path
    (Eq. 3.2) to the base-rate model, one transition ``T_beta`` per beta from 1 to the smallest
    positive one, collecting the same increments as AIS (Eq. 3.10). ``exp`` of the value is an
    unbiased estimate of ``q(v)``, the probability of v under the annealing model (Eq. 3.9: base
    model followed by the forward transitions), so by Jensen its expectation is a lower bound on ``log
    q(v)``; ``q`` is the RBM blurred by a finite annealing and tends to lie below it on test
    data, which makes the figure conservative. Returns float64 values (N,).
    """
    steps = _checked_betas(ais_betas(n_betas) if betas is None else betas)
    base = base_visible_bias.to(device=rbm.weight.device, dtype=rbm.weight.dtype)
    log_z_base = float(F.softplus(base.double()).sum() + rbm.n_hidden * math.log(2.0))
    parts = []
    for batch in visible.split(batch_size):
        batch = batch.to(device=rbm.weight.device, dtype=rbm.weight.dtype)
        down, _, _ = _annealed_log_weights(rbm, base, steps[::-1], batch.shape[0], generator, batch)
        # down = sum of log f_(k-1)(v_k) - log f_k(v_k); log Z_rev(v) = log Z_0 - down (Eq. 3.10)
        parts.append(-rbm.free_energy(batch).double() - (log_z_base - down))
    return torch.cat(parts)


@torch.inference_mode()
def rbm_log_likelihood(
    rbm: RBM,
    visible: torch.Tensor,
    log_z: float,
    per_image: bool = False,
    batch_size: int = 10000,
) -> float | torch.Tensor:
    """``log p(v) = -F(v) - log Z`` (Eq. 1.4): the mean over ``visible`` in nats, or per image.

    Per-image values are float64; ``visible`` should be binary (a binarized test set).
    """
    device = rbm.weight.device
    parts = [
        -rbm.free_energy(batch.to(device=device, dtype=rbm.weight.dtype)).double() - log_z
        for batch in visible.split(batch_size)
    ]
    values = torch.cat(parts)
    return values if per_image else float(values.mean())
