"""Measured quality of trained models (docs/derivation.md, section 4)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from .data import binarize
from .devices import make_generator
from .errors import ConfigError, RbmvaeError
from .models.rbm import RBM, bernoulli


@torch.no_grad()
def pseudo_log_likelihood(rbm: RBM, visible: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Stochastic pseudo-log-likelihood per image (Eq. 4.1), as in Besag (1975).

    For each binary image one pixel i is drawn at random and
    ``PLL(v) ~= D * log sigm(F(v with v_i flipped) - F(v))``, an unbiased estimate of
    ``sum_i log p(v_i | v_-i)``. The pixel choice is fixed by ``seed``.
    """
    n, n_visible = visible.shape
    generator = make_generator(seed, visible.device)
    pixels = torch.randint(0, n_visible, (n,), generator=generator, device=visible.device)
    flipped = visible.clone()
    rows = torch.arange(n, device=visible.device)
    flipped[rows, pixels] = 1.0 - flipped[rows, pixels]
    return n_visible * F.logsigmoid(rbm.free_energy(flipped) - rbm.free_energy(visible))


# ------------------------------------------------------------------------------------------------
# RBM: exact and annealed-importance-sampling estimates of log Z (docs/derivation.md, section 3)

MAX_ENUMERATED_UNITS = 25


def _binary_states(
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
    low = _binary_states(0, 1 << n_low, n_low, dtype, device)
    low_inputs = low @ coupling[:n_low]  # (2^n_low, other layer)
    low_linear = low @ linear[:n_low]
    high = _binary_states(0, 1 << (n_units - n_low), n_units - n_low, dtype, device)
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
    increments are summed in float64 and ``log Z = log Z_0 + log mean exp(log w)`` (Eq. 3.5).
    ``betas`` overrides the SM08 schedule of :func:`ais_betas`.
    """
    started = time.perf_counter()
    if n_runs <= 0:
        raise ConfigError(f"n_runs must be a positive integer, got {n_runs}")
    if betas is None:
        betas = ais_betas(n_betas)
    betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
    if betas.numel() < 2 or betas[0] != 0 or betas[-1] != 1 or bool((betas.diff() < 0).any()):
        raise ConfigError("betas must rise from 0 to 1 (at least two values, never decreasing)")
    steps = betas.tolist()
    weight, visible_bias, hidden_bias = rbm.weight, rbm.visible_bias, rbm.hidden_bias
    dtype, device = weight.dtype, weight.device
    n_hidden = rbm.n_hidden
    base = base_visible_bias.to(device=device, dtype=dtype)
    if base.shape != visible_bias.shape:
        raise ConfigError(
            f"base_visible_bias has shape {tuple(base.shape)}, expected {tuple(visible_bias.shape)}"
        )
    # One product per beta gives the hidden inputs c + vW and, in the last column, (b - b0)'v.
    weight_aug = torch.cat([weight, (visible_bias - base).unsqueeze(1)], dim=1)
    bias_aug = torch.cat([hidden_bias, hidden_bias.new_zeros(1)])
    log_z_base = float(F.softplus(base.double()).sum() + n_hidden * math.log(2.0))

    visible = bernoulli(torch.sigmoid(base).expand(n_runs, -1).contiguous(), generator)
    # Reused buffers; the hidden and visible samples are drawn in place into noise_h, noise_v.
    inputs = torch.empty(n_runs, n_hidden + 1, dtype=dtype, device=device)
    hidden_inputs, linear = inputs[:, :n_hidden], inputs[:, n_hidden]  # views of the product
    scaled = torch.empty(n_runs, n_hidden, dtype=dtype, device=device)
    noise_h = torch.empty(n_runs, n_hidden, dtype=dtype, device=device)
    noise_v = torch.empty(n_runs, rbm.n_visible, dtype=dtype, device=device)
    visible_inputs = torch.empty(n_runs, rbm.n_visible, dtype=dtype, device=device)
    # log w_k - log w_(k-1) per run, summed in float64 at the end (Eq. 3.4)
    increments = torch.empty(len(steps) - 1, n_runs, dtype=dtype, device=device)
    weight_t = weight.t()
    log_2 = math.log(2.0)
    matmuls = 0
    previous = steps[0]
    last = len(steps) - 1
    for k in range(1, last + 1):
        beta = steps[k]
        torch.addmm(bias_aug, visible, weight_aug, out=inputs)
        matmuls += 1
        # sum_j softplus(beta x_j) - softplus(beta' x_j), with softplus(b x) = b F.softplus(x, b)
        torch.mul(hidden_inputs, beta, out=scaled)
        gain = F.softplus(scaled).sum(1)
        if previous > 0:
            gain -= F.softplus(hidden_inputs, beta=previous).sum(1).mul_(previous)
        else:
            gain -= n_hidden * log_2
        torch.add(gain, linear, alpha=beta - previous, out=increments[k - 1])
        if k == last:
            break
        # T_beta: h ~ p_beta(h | v), then v ~ p_beta(v | h) (Eq. 3.3), as u < p in place.
        torch.rand(noise_h.shape, generator=generator, out=noise_h)
        hidden = noise_h.lt_(scaled.sigmoid_())
        torch.addmm(
            torch.lerp(base, visible_bias, beta), hidden, weight_t, alpha=beta, out=visible_inputs
        )
        matmuls += 1
        torch.rand(noise_v.shape, generator=generator, out=noise_v)
        visible = noise_v.lt_(visible_inputs.sigmoid_())
        previous = beta
    log_w = increments.sum(0, dtype=torch.float64)
    log_mean, low, high = _log_mean_interval(log_w)
    return AISResult(
        log_z=log_z_base + log_mean,
        log_z_low=log_z_base + low,
        log_z_high=log_z_base + high,
        n_runs=n_runs,
        n_betas=last,
        seconds=time.perf_counter() - started,
        log_z_base=log_z_base,
        matmuls=matmuls,
        effective_runs=float(
            torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))
        ),
        log_weight_std=float(log_w.std()) if n_runs > 1 else 0.0,
    )


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


# ------------------------------------------------------------------------------------------------
# VAE: ELBO, importance-weighted log-likelihood, active units


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def iwae_log_likelihood(
    vae,
    x: torch.Tensor,
    k: int = 5000,
    chunk: int = 25,
    batch_size: int = 100,
    generator: torch.Generator | None = None,
    per_image: bool = False,
) -> float | torch.Tensor:
    """Importance-weighted estimate of ``log p(x)`` with ``k`` samples (Eq. 3.7; Burda et al. 2016).

    ``log p(x) ~= log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x)`` with ``z_k ~ q(z | x)``, the
    bound L_K of Eq. 2.7, which rises to ``log p(x)`` as K grows. Images go ``batch_size`` at a time
    and samples ``chunk`` at a time (at most ``batch_size * chunk`` decoder rows in memory: the
    default 2,500 rows of logits stay in the CPU's cache between the product that writes them
    and the softplus that reads them, which is ~30% faster than 25,000); ``log p(x | z)`` comes
    from ``decoder_log_likelihood`` (one pass over the logits); the log-mean-exp runs in float64
    across chunks. Returns the mean in nats, or float64 values per image.
    """
    from .models.vae import decoder_log_likelihood

    if k <= 0 or chunk <= 0 or batch_size <= 0:
        raise ConfigError(
            f"k, chunk and batch_size must be positive, got {k}, {chunk}, {batch_size}"
        )
    device = _model_device(vae)
    parts = []
    for batch in x.split(batch_size):
        batch = batch.to(device)
        mean, log_var = vae.encode(batch)
        std = torch.exp(0.5 * log_var)
        total = torch.full((batch.shape[0],), -math.inf, dtype=torch.float64, device=device)
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            eps = torch.randn(
                (m, *mean.shape), generator=generator, device=device, dtype=mean.dtype
            )
            z = mean + std * eps
            log_px = decoder_log_likelihood(vae, batch, z)
            # log p(z) - log q(z | x): the (2 pi) constants cancel, and z - mean = std * eps.
            log_ratio = 0.5 * (log_var + eps.pow(2) - z.pow(2)).sum(-1)
            log_w = (log_px + log_ratio).double()
            total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
        parts.append(total - math.log(k))
    values = torch.cat(parts)
    return values if per_image else float(values.mean())


@torch.inference_mode()
def elbo(
    vae,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    batch_size: int = 1000,
    per_image: bool = False,
) -> float | torch.Tensor:
    """The evidence lower bound ``E_q[log p(x | z)] - KL(q(z | x) || p(z))`` (Eq. 2.2), in nats.

    One reparameterized sample per image (an unbiased estimate); the mean over ``x``, or per image.
    """
    from .models.vae import negative_elbo

    device = _model_device(vae)
    parts = [-negative_elbo(vae, b.to(device), generator)[0].double() for b in x.split(batch_size)]
    values = torch.cat(parts)
    return values if per_image else float(values.mean())


@torch.inference_mode()
def posterior_mean_variance(vae, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Per latent unit, the variance over ``x`` of the posterior mean ``E_q[z_u | x]`` (Eq. 4.2)."""
    device = _model_device(vae)
    means = torch.cat([vae.encode(b.to(device))[0] for b in x.split(batch_size)])
    return means.double().var(dim=0, correction=0)


def active_units(vae, x: torch.Tensor, threshold: float = 0.01) -> int:
    """The number of latent units whose posterior mean varies over the data by more than
    ``threshold`` (Eq. 4.2; Burda et al. 2016 use 0.01)."""
    return int((posterior_mean_variance(vae, x) > threshold).sum())


# ------------------------------------------------------------------------------------------------
# Inpainting quality: baselines, scores, the evaluation classifier, the table

BCE_CLIP = 1e-4


def zero_fill(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Missing pixels set to 0 (what the original assignment's code did)."""
    return images.masked_fill(mask, 0.0)


def mean_fill(images: torch.Tensor, mask: torch.Tensor, train_images: torch.Tensor) -> torch.Tensor:
    """Missing pixels set to the training images' mean of that pixel."""
    mean = train_images.to(images.device, images.dtype).mean(0)
    return torch.where(mask, mean.expand_as(images), images)


@torch.inference_mode()
def knn_fill(
    images: torch.Tensor,
    mask: torch.Tensor,
    train_images: torch.Tensor,
    k: int = 10,
    batch_size: int = 500,
) -> torch.Tensor:
    """Missing pixels set to the mean of the ``k`` training images nearest on the observed pixels.

    The squared distance over observed pixels ``o`` is ``sum_i o_i (x_i - t_i)^2 = sum_i o_i x_i^2
    - 2 (o * x) . t + o . t^2``; the last two terms are two matrix products per batch of images (the
    first does not depend on the neighbour, so it is left out of the ranking).
    """
    if not 0 < k <= train_images.shape[0]:
        raise ConfigError(f"k must be between 1 and {train_images.shape[0]}, got {k}")
    train = train_images.to(images.device, images.dtype)
    train_sq_t = train.pow(2).t()
    train_t = train.t()
    parts = []
    for batch, missing in zip(images.split(batch_size), mask.split(batch_size), strict=True):
        observed = (~missing).to(batch.dtype)
        score = (observed @ train_sq_t).sub_(2.0 * (observed * batch) @ train_t)
        nearest = score.topk(k, dim=1, largest=False).indices
        neighbours = train[nearest].mean(1)
        parts.append(torch.where(missing, neighbours, batch))
    return torch.cat(parts) if parts else images.clone()


def missing_pixel_errors(
    filled: torch.Tensor, original: torch.Tensor, mask: torch.Tensor, clip: float = BCE_CLIP
) -> tuple[float, float]:
    """``(MSE, BCE)`` over the missing pixels only (Eq. 4.3), each a mean per missing pixel.

    BCE is ``-[x log p + (1 - x) log(1 - p)]`` with ``p`` clipped to ``[clip, 1 - clip]`` so that
    a hard 0 or 1 costs at most ``-log(clip)`` nats; for grey targets it is a cross-entropy.
    """
    if not bool(mask.any()):
        return 0.0, 0.0
    p = filled[mask].double()
    x = original[mask].double()
    mse = float((p - x).pow(2).mean())
    p = p.clamp(clip, 1.0 - clip)
    bce = float(-(x * torch.log(p) + (1.0 - x) * torch.log1p(-p)).mean())
    return mse, bce


CLASSIFIER_HIDDEN = 128
CLASSIFIER_SETTINGS = {
    "architecture": "mlp",
    "hidden": CLASSIFIER_HIDDEN,
    "epochs": 15,
    "batch_size": 100,
    "learning_rate": 1e-3,
    "optimizer": "adam",
    "seed": 0,
}


def _build_classifier(n_pixels: int, n_classes: int, hidden: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(n_pixels, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_classes)
    )


def fit_classifier(
    images: torch.Tensor, labels: torch.Tensor, settings: dict | None = None
) -> torch.nn.Sequential:
    """A small MLP ``D -> hidden (ReLU) -> classes`` fitted with Adam; fully determined by the seed.

    Weights start from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) drawn from a seeded generator, and the
    minibatch order comes from the same generator, so the same data give the same classifier.
    """
    settings = {**CLASSIFIER_SETTINGS, **(settings or {})}
    generator = make_generator(settings["seed"], images.device)
    n_classes = int(labels.max()) + 1
    model = _build_classifier(images.shape[1], n_classes, settings["hidden"]).to(images.device)
    with torch.no_grad():
        for layer in (model[0], model[2]):
            bound = 1.0 / math.sqrt(layer.in_features)
            for param in (layer.weight, layer.bias):
                noise = torch.rand(param.shape, generator=generator, device=images.device)
                param.copy_((2.0 * noise - 1.0) * bound)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    n = images.shape[0]
    for _ in range(settings["epochs"]):
        order = torch.randperm(n, generator=generator, device=images.device)
        for index in order.split(settings["batch_size"]):
            loss = F.cross_entropy(model(images[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    return model


@torch.inference_mode()
def classifier_accuracy(
    classifier: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> float:
    """The fraction of ``images`` that ``classifier`` labels correctly."""
    device = _model_device(classifier)
    predictions = torch.cat([classifier(b.to(device)).argmax(1) for b in images.split(5000)])
    return float((predictions == labels.to(device)).double().mean())


def _classifier_key(data, settings: dict) -> str:
    digest = hashlib.sha256()
    for tensor in (data.train_images, data.train_labels):
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", data.name or "data")
    return f"{safe_name}-{digest.hexdigest()[:16]}"


def evaluation_classifier(
    data,
    device: torch.device | str = "cpu",
    cache_dir: str | os.PathLike | None = None,
) -> tuple[torch.nn.Sequential, dict]:
    """The fixed classifier used to score inpainted images, and a description of it.

    Fitted once on ``data``'s training split and cached as safetensors + JSON in
    ``cache_dir`` (default ``data.default_cache_dir() / "classifiers"``), keyed by the data set's
    name and a hash of its training images, labels and the classifier settings. A damaged or
    mismatched cache entry is refitted; if the cache cannot be written the classifier is used
    uncached. The description holds its architecture, settings and test accuracy.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors
    from safetensors.torch import save as save_safetensors

    from .atomic import write_bytes, write_text
    from .data import default_cache_dir

    settings = dict(CLASSIFIER_SETTINGS)
    n_classes = int(data.train_labels.max()) + 1
    key = _classifier_key(data, settings)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "classifiers"
    weights_path = directory / f"{key}.safetensors"
    info_path = directory / f"{key}.json"
    classifier = _build_classifier(data.n_pixels, n_classes, settings["hidden"])
    info = None
    cache = str(info_path)
    if weights_path.is_file() and info_path.is_file():
        try:
            blob = weights_path.read_bytes()
            info = json.loads(info_path.read_text(encoding="utf-8"))
            if info.get("weights_sha256") != hashlib.sha256(blob).hexdigest():
                raise ValueError("weights do not match their description")
            classifier.load_state_dict(load_safetensors(blob))
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError, AttributeError):
            info = None
    if info is None:
        started = time.perf_counter()
        train_images = data.train_images.to(device)
        classifier = fit_classifier(train_images, data.train_labels.to(device), settings)
        seconds = time.perf_counter() - started
        test_accuracy = classifier_accuracy(classifier, data.test_images, data.test_labels)
        blob = save_safetensors(
            {name: t.detach().to("cpu").contiguous() for name, t in classifier.state_dict().items()}
        )
        info = {
            "name": f"MLP {data.n_pixels}-{settings['hidden']}-{n_classes} (ReLU), "
            f"Adam, {settings['epochs']} epochs, seed {settings['seed']}",
            "trained_on": f"{data.name} training split ({data.train_images.shape[0]} images)",
            "settings": settings,
            "test_accuracy": test_accuracy,
            "n_test": int(data.test_images.shape[0]),
            "fit_seconds": seconds,
            "key": key,
            "weights_sha256": hashlib.sha256(blob).hexdigest(),
        }
        try:
            write_bytes(weights_path, blob)
            write_text(info_path, json.dumps(info, indent=2) + "\n")
        except (RbmvaeError, OSError):
            cache = None
    info = {**info, "cache": cache}
    classifier.to(device).eval()
    return classifier, info


@dataclass
class InpaintingTable:
    """Rows of inpainting scores (one per method, sampler and missing fraction) and settings.

    Each row: ``method``, ``kind`` (baseline, rbm, vae), ``sampler``, ``fraction``, ``mse`` and
    ``bce`` (per missing pixel, Eq. 4.3), ``accuracy`` (of the evaluation classifier on the
    inpainted images) and ``seconds``.
    """

    rows: list[dict]
    settings: dict
    classifier: dict

    def to_dict(self) -> dict:
        return {"rows": self.rows, "settings": self.settings, "classifier": self.classifier}

    def format(self) -> str:
        """The table as text, one line per row."""
        lines = [
            f"{'method':<28} {'missing':>7} {'MSE':>8} {'BCE':>8} {'accuracy':>9} {'seconds':>8}"
        ]
        for row in sorted(self.rows, key=lambda r: r["fraction"]):
            lines.append(
                f"{row['method']:<28} {row['fraction']:>7.0%} {row['mse']:>8.4f} "
                f"{row['bce']:>8.4f} {row['accuracy']:>9.1%} {row['seconds']:>8.2f}"
            )
        return "\n".join(lines)


VAE_SAMPLERS = ("pseudo-gibbs", "metropolis")


def inpainting_table(
    models: dict,
    data,
    fractions: tuple[float, ...] = (0.2, 0.5, 0.8),
    n: int = 1000,
    steps: int = 200,
    seed: int = 0,
    baselines: bool = True,
    k_neighbours: int = 10,
    vae_samplers: tuple[str, ...] = VAE_SAMPLERS,
    classifier: tuple[torch.nn.Module, dict] | None = None,
    device: torch.device | str | None = None,
) -> InpaintingTable:
    """Score every model and baseline at filling in missing pixels of the first ``n`` test images.

    For each fraction one set of random masks (seeded from ``seed`` and the fraction's position)
    is shared by every row. Models (``{name: model}``; RBMs by clamped Gibbs sampling, VAEs with
    each of ``vae_samplers``) run ``steps`` sweeps from the training-mean fill, averaging the
    last half; baselines are zero fill, training-mean fill and ``k_neighbours``-nearest-neighbour
    fill. Each row reports MSE and BCE on the missing pixels (Eq. 4.3) against the grey test
    images, and the accuracy of the evaluation classifier (:func:`evaluation_classifier`) on the
    inpainted images. Every row draws from its own generator seeded by ``seed``, so a row does not
    depend on which other rows are computed.
    """
    from .inpainting import inpaint

    if not 0 < n <= data.test_images.shape[0]:
        raise ConfigError(f"n must be between 1 and {data.test_images.shape[0]}, got {n}")
    if device is None:
        device = _model_device(next(iter(models.values()))) if models else "cpu"
    device = torch.device(device)
    if classifier is None:
        classifier = evaluation_classifier(data, device=device)
    model_classifier, classifier_info = classifier
    images = data.test_images[:n].to(device)
    labels = data.test_labels[:n].to(device)
    train_images = data.train_images.to(device)
    fill = train_images.mean(0)
    methods = []
    if baselines:
        methods += [
            ("zero fill", "baseline", None, lambda m, g: zero_fill(images, m)),
            (
                "training-mean fill",
                "baseline",
                None,
                lambda m, g: mean_fill(images, m, train_images),
            ),
            (
                f"{k_neighbours}-NN fill",
                "baseline",
                None,
                lambda m, g: knn_fill(images, m, train_images, k_neighbours),
            ),
        ]
    for name, model in models.items():
        samplers = vae_samplers if model.kind == "vae" else (None,)
        for sampler in samplers:

            def run(m, g, model=model, sampler=sampler):
                return inpaint(
                    model, images, m, steps=steps, fill=fill, generator=g, sampler=sampler
                )

            label = name if sampler is None else f"{name} ({sampler})"
            methods.append((label, model.kind, sampler, run))
    rows = []
    masks = evaluation_masks(n, data.n_pixels, tuple(fractions), seed, device)
    for fraction, mask in zip(fractions, masks, strict=True):
        for label, kind, sampler, run in methods:
            started = time.perf_counter()
            filled = run(mask, make_generator(seed, device))
            seconds = time.perf_counter() - started
            mse, bce = missing_pixel_errors(filled, images, mask)
            rows.append(
                {
                    "method": label,
                    "kind": kind,
                    "sampler": sampler,
                    "fraction": float(fraction),
                    "mse": mse,
                    "bce": bce,
                    "accuracy": classifier_accuracy(model_classifier, filled, labels),
                    "seconds": seconds,
                }
            )
    settings = {
        "n_images": n,
        "images": f"the first {n} test images of {data.name}, grey values in [0, 1]",
        "fractions": [float(f) for f in fractions],
        "steps": steps,
        "average_last": max(1, steps // 2),
        "start_fill": "training mean",
        "seed": seed,
        "k_neighbours": k_neighbours,
        "bce_clip": BCE_CLIP,
        "masks": "per fraction, the same random masks for every row",
    }
    classifier_info = {
        **classifier_info,
        "accuracy_on_complete_images": classifier_accuracy(model_classifier, images, labels),
    }
    return InpaintingTable(rows=rows, settings=settings, classifier=classifier_info)


def evaluation_masks(
    n: int,
    n_pixels: int,
    fractions: tuple[float, ...],
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """One random mask per fraction, as :func:`inpainting_table` uses (shared by all its rows)."""
    from .masks import random_mask

    return [
        random_mask(n, n_pixels, fraction, make_generator(seed + 7919 * (i + 1), device), device)
        for i, fraction in enumerate(fractions)
    ]


# ------------------------------------------------------------------------------------------------
# The report of ``rbmvae evaluate``

REPORT_FORMAT = "rbmvae-evaluation"
REPORT_VERSION = 1
NATS = "nats per image"


def _figure(value: float, unit: str) -> dict:
    """``{"value", "unit"}``; a non-finite value (an unbounded interval end) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    return {"value": value, "unit": unit}


def _number(figure: dict, digits: int = 3) -> str:
    value = figure["value"]
    return "unbounded" if value is None else f"{value:.{digits}f}"


def _rbm_likelihood(rbm: RBM, test: torch.Tensor, data, settings: dict) -> dict:
    result = {}
    smaller = min(rbm.n_visible, rbm.n_hidden)
    if smaller <= MAX_ENUMERATED_UNITS:
        layer = "hidden" if rbm.n_hidden <= rbm.n_visible else "visible"
        started = time.perf_counter()
        log_z = log_partition_exact(rbm)
        ll = rbm_log_likelihood(rbm, test, log_z)
        result["exact"] = {
            "method": f"enumeration of the 2^{smaller} {layer} states (Eq. 3.1)",
            "log_z": _figure(log_z, "nats"),
            "mean_log_likelihood": _figure(ll, NATS),
            "seconds": _figure(time.perf_counter() - started, "s"),
        }
    if settings["ais_runs"] > 0:
        device = rbm.weight.device
        started = time.perf_counter()
        ais = ais_log_partition(
            rbm,
            base_rate_visible_bias(data.train_images),
            n_runs=settings["ais_runs"],
            n_betas=settings["ais_betas"],
            generator=make_generator(settings["seed"], device),
        )
        free = rbm_log_likelihood(rbm, test, 0.0)
        result["ais"] = {
            "method": "annealed importance sampling from the base-rate RBM (SM08; Eqs. 3.2-3.6)",
            "log_z": _figure(ais.log_z, "nats"),
            "log_z_low": _figure(ais.log_z_low, "nats"),
            "log_z_high": _figure(ais.log_z_high, "nats"),
            "log_z_base": _figure(ais.log_z_base, "nats"),
            "mean_log_likelihood": _figure(free - ais.log_z, NATS),
            "mean_log_likelihood_low": _figure(free - ais.log_z_high, NATS),
            "mean_log_likelihood_high": _figure(free - ais.log_z_low, NATS),
            "n_runs": ais.n_runs,
            "n_betas": ais.n_betas,
            "matmuls": ais.matmuls,
            "effective_runs": _figure(ais.effective_runs, "runs"),
            "log_weight_std": _figure(ais.log_weight_std, "nats"),
            "reliable": ais.effective_runs >= 0.1 * ais.n_runs,
            "interval": "log of (mean +- 3 std / sqrt(runs)) of the importance weights",
            "seconds": _figure(time.perf_counter() - started, "s"),
        }
    return result


def _vae_likelihood(vae, test: torch.Tensor, settings: dict) -> dict:
    device = _model_device(vae)
    started = time.perf_counter()
    lower = elbo(vae, test, generator=make_generator(settings["seed"], device))
    elbo_seconds = time.perf_counter() - started
    started = time.perf_counter()
    iwae = iwae_log_likelihood(
        vae, test, k=settings["iwae_k"], generator=make_generator(settings["seed"], device)
    )
    iwae_seconds = time.perf_counter() - started
    started = time.perf_counter()
    variances = posterior_mean_variance(vae, test)
    threshold = settings["active_threshold"]
    return {
        "elbo": {
            "method": "one reparameterized sample per image (Eq. 2.2)",
            "mean": _figure(lower, NATS),
            "seconds": _figure(elbo_seconds, "s"),
        },
        "iwae": {
            "method": f"importance-weighted estimate with K = {settings['iwae_k']} (Eq. 3.7)",
            "mean_log_likelihood": _figure(iwae, NATS),
            "k": settings["iwae_k"],
            "seconds": _figure(iwae_seconds, "s"),
        },
        "active_units": {
            "method": f"variance over the test images of the posterior mean > {threshold} (Eq. 4.2)",
            "count": _figure(int((variances > threshold).sum()), "units"),
            "of": int(variances.numel()),
            "variances": [float(v) for v in variances],
            "seconds": _figure(time.perf_counter() - started, "s"),
        },
    }


def evaluate(
    model: torch.nn.Module | None,
    data,
    *,
    model_dir: str | None = None,
    ais_runs: int = 100,
    ais_betas: int = 14500,
    iwae_k: int = 5000,
    fractions: tuple[float, ...] = (0.2, 0.5, 0.8),
    n: int = 1000,
    ll_n: int | None = None,
    steps: int = 200,
    seed: int = 0,
    k_neighbours: int = 10,
    baselines: bool = True,
    active_threshold: float = 0.01,
    device: torch.device | str | None = None,
) -> dict:
    """Every measurement of ``rbmvae evaluate`` as one JSON-ready object.

    With a model: its test log-likelihood (RBM: exact when a layer has at most 25 units, and AIS
    unless ``ais_runs`` is 0; VAE: ELBO, IWAE with ``iwae_k`` samples, active units) on the first
    ``ll_n`` test images (default: all for an RBM, 1000 for a VAE) stochastically binarized with
    ``seed``; then the inpainting table (:func:`inpainting_table`) with the baselines unless
    ``baselines`` is False. With ``model=None``: the baseline rows alone. Every figure is
    ``{"value": ..., "unit": ...}``; settings and the time of each part are included.
    """
    started_all = time.perf_counter()
    if model is None and not baselines:
        raise ConfigError("nothing to evaluate: give a model or ask for the baselines")
    if device is None:
        device = _model_device(model) if model is not None else torch.device("cpu")
    device = torch.device(device)
    n_test = data.test_images.shape[0]
    if ll_n is None:
        ll_n = min(n_test, 1000) if model is not None and model.kind == "vae" else n_test
    if not 0 < ll_n <= n_test:
        raise ConfigError(f"the log-likelihood needs 1 to {n_test} test images, got {ll_n}")
    settings = {
        "ais_runs": ais_runs,
        "ais_betas": ais_betas,
        "iwae_k": iwae_k,
        "fractions": [float(f) for f in fractions],
        "n": n,
        "ll_n": ll_n,
        "steps": steps,
        "seed": seed,
        "k_neighbours": k_neighbours,
        "baselines": baselines,
        "active_threshold": active_threshold,
    }
    report = {
        "format": REPORT_FORMAT,
        "format_version": REPORT_VERSION,
        "model": None,
        "dataset": {
            "name": data.name,
            "n_train": int(data.train_images.shape[0]),
            "n_test": n_test,
        },
        "device": str(device),
        "settings": settings,
    }
    timing = {}
    models = {}
    if model is not None:
        config = model.config() if hasattr(model, "config") else {}
        report["model"] = {"dir": model_dir, "kind": model.kind, "config": config}
        started = time.perf_counter()
        binary = binarize(data.test_images[:ll_n], "stochastic", generator=make_generator(seed)).to(
            device
        )
        likelihood = {
            "test_images": {
                "n": ll_n,
                "binarization": "stochastic",
                "seed": seed,
                "description": f"the first {ll_n} test images, each pixel drawn as "
                f"Bernoulli(grey value) with seed {seed}",
            }
        }
        if model.kind == "rbm":
            likelihood.update(_rbm_likelihood(model, binary, data, settings))
        elif model.kind == "vae":
            likelihood.update(_vae_likelihood(model, binary, settings))
        report["log_likelihood"] = likelihood
        timing["log_likelihood"] = time.perf_counter() - started
        models[_model_label(model)] = model
    if fractions:
        started = time.perf_counter()
        table = inpainting_table(
            models,
            data,
            fractions=tuple(fractions),
            n=n,
            steps=steps,
            seed=seed,
            baselines=baselines,
            k_neighbours=k_neighbours,
            device=device,
        )
        units = {
            "mse": "squared error per missing pixel",
            "bce": "nats per missing pixel",
            "accuracy": "fraction of images",
            "seconds": "s",
        }
        rows = [
            {key: _figure(value, units[key]) if key in units else value for key, value in r.items()}
            for r in table.rows
        ]
        report["inpainting"] = {
            "settings": table.settings,
            "classifier": table.classifier,
            "rows": rows,
        }
        timing["inpainting"] = time.perf_counter() - started
    timing["total"] = time.perf_counter() - started_all
    report["seconds"] = {part: _figure(value, "s") for part, value in timing.items()}
    return report


def _model_label(model: torch.nn.Module) -> str:
    if model.kind == "rbm":
        return f"RBM {model.n_hidden} hidden"
    if model.kind == "vae":
        return f"VAE z={model.n_latent}"
    return str(model.kind)


def format_report(report: dict) -> str:
    """The report of :func:`evaluate` as text: log-likelihoods, the inpainting table, timings."""
    lines = []
    model = report.get("model")
    data = report["dataset"]
    where = f"on {data['name']} (device {report['device']})"
    if model is None:
        lines.append(f"baselines {where}")
    else:
        lines.append(f"{model['kind']} {model['config']} from {model['dir']} {where}")
    likelihood = report.get("log_likelihood")
    if likelihood:
        test = likelihood["test_images"]
        lines.append(
            f"test log-likelihood, nats per image, on {test['n']} test images binarized "
            f"stochastically with seed {test['seed']}:"
        )
        if "exact" in likelihood:
            part = likelihood["exact"]
            lines.append(
                f"  exact  log p(v) {part['mean_log_likelihood']['value']:10.3f}   "
                f"log Z {part['log_z']['value']:.3f}   ({part['method']}; "
                f"{part['seconds']['value']:.1f} s)"
            )
        if "ais" in likelihood:
            part = likelihood["ais"]
            lines.append(
                f"  AIS    log p(v) {part['mean_log_likelihood']['value']:10.3f} "
                f"[{_number(part['mean_log_likelihood_low'])}, "
                f"{_number(part['mean_log_likelihood_high'])}]   "
                f"log Z {part['log_z']['value']:.3f}   ({part['n_runs']} runs, "
                f"{part['n_betas']} betas, effective runs {part['effective_runs']['value']:.1f}; "
                f"{part['seconds']['value']:.1f} s)"
            )
            if not part["reliable"]:
                lines.append(
                    "         unreliable: a few runs carry the importance weights (effective runs "
                    "below 10%); log Z is then likely underestimated and log p(v) too high. Use "
                    "more betas or runs."
                )
        if "elbo" in likelihood:
            part = likelihood["elbo"]
            lines.append(
                f"  ELBO            {part['mean']['value']:10.3f}   ({part['seconds']['value']:.1f} s)"
            )
        if "iwae" in likelihood:
            part = likelihood["iwae"]
            lines.append(
                f"  IWAE   log p(x) {part['mean_log_likelihood']['value']:10.3f}   "
                f"(K = {part['k']}; {part['seconds']['value']:.1f} s)"
            )
        if "active_units" in likelihood:
            part = likelihood["active_units"]
            lines.append(
                f"  active units    {part['count']['value']} of {part['of']} "
                f"(posterior-mean variance > {report['settings']['active_threshold']})"
            )
    inpainting = report.get("inpainting")
    if inpainting:
        settings = inpainting["settings"]
        classifier = inpainting["classifier"]
        lines.append(
            f"inpainting {settings['n_images']} test images ({settings['steps']} sweeps, last "
            f"{settings['average_last']} averaged, start from the training mean, seed "
            f"{settings['seed']}); MSE and BCE per missing pixel, BCE clipped at "
            f"{settings['bce_clip']:g}"
        )
        lines.append(
            f"classifier: {classifier['name']}, test accuracy {classifier['test_accuracy']:.1%} "
            f"({classifier['accuracy_on_complete_images']:.1%} on these images complete)"
        )
        plain = [
            {k: v["value"] if isinstance(v, dict) else v for k, v in r.items()}
            for r in inpainting["rows"]
        ]
        lines.append(InpaintingTable(plain, settings, classifier).format())
    timing = ", ".join(f"{part} {fig['value']:.1f} s" for part, fig in report["seconds"].items())
    lines.append(f"time: {timing}")
    return "\n".join(lines)


@torch.no_grad()
def log_likelihood_quadrature(
    vae, x: torch.Tensor, grid_size: int = 401, limit: float = 6.0, chunk: int = 4096
) -> torch.Tensor:
    """``log p(x)`` per row of a VAE with a 2-D code, by quadrature over a latent grid (Eq. 3.8).

    ``p(x) = integral p(x | z) N(z; 0, I) dz`` is approximated on a ``grid_size`` x ``grid_size``
    grid over ``[-limit, limit]^2`` with spacing ``d``: ``log p(x) ~= logsumexp_j (log p(x | z_j) +
    log N(z_j; 0, I)) + 2 log d``. Exact up to the grid's resolution and the mass outside it; the
    grid is decoded in chunks of ``chunk`` points, all images at once. ``vae`` is a
    :class:`rbmvae.models.vae.VAE`.
    """
    from .errors import ConfigError
    from .models.vae import standard_normal_log_density

    if getattr(vae, "kind", None) != "vae" or vae.n_latent != 2:
        raise ConfigError("quadrature over the latent grid needs a VAE with a 2-D code")
    if grid_size < 2 or not limit > 0:
        raise ConfigError(f"need grid_size >= 2 and limit > 0, got {grid_size} and {limit}")
    device = vae.decoder_output.weight.device
    x = x.to(device=device, dtype=vae.decoder_output.weight.dtype)
    axis = torch.linspace(-limit, limit, grid_size, device=device, dtype=x.dtype)
    grid = torch.cartesian_prod(axis, axis)
    parts = []
    for points in grid.split(chunk):
        logits = vae.decode_logits(points)
        # log p(x | z_j) = x'l_j - sum_i softplus(l_ij) (Eq. 2.5) for every (image, point) pair
        log_joint = x @ logits.t() - F.softplus(logits).sum(-1)
        parts.append(torch.logsumexp(log_joint + standard_normal_log_density(points), dim=1))
    spacing = 2.0 * limit / (grid_size - 1)
    return torch.logsumexp(torch.stack(parts, dim=1), dim=1) + 2.0 * math.log(spacing)
