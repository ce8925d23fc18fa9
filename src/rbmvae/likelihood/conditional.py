"""The conditional log-likelihood of the missing pixels given the observed ones, in nats per image
(docs/derivation.md, section 5.5): exact and AIS for RBMs, importance sampling for VAEs, and the
k-nearest-neighbour mixture of the baseline.

Every function takes binary images ``x`` (n, D) and a boolean mask ``mask`` (n, D), True where a
pixel is missing, and returns ``log p(x_m | x_o)`` per image: the log-probability the model gives
to the missing pixels' actual (binary) values once the observed ones are known. Estimators return
a :class:`ConditionalEstimate` with a per-image standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..basics.errors import ConfigError
from ..models.rbm import RBM
from ..models.vae import gaussian_log_density, standard_normal_log_density
from .rbm import MAX_ENUMERATED_UNITS, ais_betas, binary_states


@dataclass
class ConditionalEstimate:
    """Per-image ``log p(x_m | x_o)`` (float64, shape (n,)), each with its standard error (the
    delta-method error of the log of an average of importance weights; 0 for exact values), a
    description of the method, and diagnostics (``effective_samples`` per image, mean)."""

    values: torch.Tensor
    std_errors: torch.Tensor
    method: str
    effective_samples: float = float("nan")

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    @property
    def mean_std_error(self) -> float:
        """The estimator's standard error of the mean over images (errors independent)."""
        return float(self.std_errors.pow(2).sum().sqrt() / max(1, self.values.numel()))

    @property
    def images_std_error(self) -> float:
        """The spread over the test images, as a standard error of the mean."""
        n = self.values.numel()
        return float(self.values.std() / math.sqrt(n)) if n > 1 else 0.0

    def to_dict(self) -> dict:
        return {
            "mean": self.mean,
            "mean_std_error": self.mean_std_error,
            "images_std_error": self.images_std_error,
            "effective_samples": self.effective_samples,
            "method": self.method,
            "n_images": int(self.values.numel()),
        }


def _check(x: torch.Tensor, mask: torch.Tensor, n_pixels: int) -> None:
    if x.ndim != 2 or x.shape != mask.shape or x.shape[1] != n_pixels:
        raise ConfigError(
            f"need images and a mask of shape (n, {n_pixels}), got "
            f"{tuple(x.shape)} and {tuple(mask.shape)}"
        )
    if bool(((x != 0) & (x != 1)).any()):
        raise ConfigError("the conditional log-likelihood needs binary images (binarize them)")


def _log_mean_and_error(log_w: torch.Tensor, dim: int) -> tuple[torch.Tensor, ...]:
    """``log mean w``, its delta-method standard error ``std(w) / (sqrt(R) mean(w))`` and the
    effective sample size ``(sum w)^2 / sum w^2``, along ``dim`` of the log weights (float64)."""
    count = log_w.shape[dim]
    log_mean = torch.logsumexp(log_w, dim) - math.log(count)
    ratio = torch.exp(log_w - log_mean.unsqueeze(dim))  # w / mean(w)
    spread = ratio.std(dim) if count > 1 else torch.zeros_like(log_mean)
    effective = torch.exp(2 * torch.logsumexp(log_w, dim) - torch.logsumexp(2 * log_w, dim))
    return log_mean, spread / math.sqrt(count), effective


# ------------------------------------------------------------------------------------------------
# RBM


def _clamped_parts(rbm: RBM, x: torch.Tensor, mask: torch.Tensor):
    """``(missing, hidden_bias, numerator)``: the missing-pixel indicator (n, D) as floats, the
    clamped RBM's hidden biases ``c + W' v_o`` (n, H) and ``-F(v) - b_o'v_o`` (n,), float64
    (Eq. 5.5)."""
    dtype = rbm.weight.dtype
    x = x.to(device=rbm.weight.device, dtype=dtype)
    missing = mask.to(device=x.device, dtype=dtype)
    observed = x * (1.0 - missing)
    hidden_bias = torch.addmm(rbm.hidden_bias, observed, rbm.weight)
    numerator = -rbm.free_energy(x).double() - (observed @ rbm.visible_bias).double()
    return missing, hidden_bias, numerator


@torch.inference_mode()
def rbm_conditional_exact(
    rbm: RBM, x: torch.Tensor, mask: torch.Tensor, batch_size: int = 1 << 10
) -> ConditionalEstimate:
    """Exact ``log p(v_m | v_o)`` per image by enumerating the hidden states (Eq. 5.5).

    ``log Z(v_o) = logsumexp_h [h'(c + W'v_o) + sum_(i missing) softplus(b_i + W_i h)]``, over all
    2^H hidden vectors ``batch_size`` at a time: per batch of states the softplus table (B, D) is
    computed once and summed over each image's missing pixels by one product with the masks.
    Then ``log p(v_m | v_o) = -F(v) - b_o'v_o - log Z(v_o)``. Needs H <= 25.
    """
    _check(x, mask, rbm.n_visible)
    if rbm.n_hidden > MAX_ENUMERATED_UNITS:
        raise ConfigError(
            f"exact enumeration needs at most {MAX_ENUMERATED_UNITS} hidden units, "
            f"this RBM has {rbm.n_hidden} (use rbm_conditional_ais)"
        )
    missing, hidden_bias, numerator = _clamped_parts(rbm, x, mask)
    dtype, device = rbm.weight.dtype, rbm.weight.device
    total = torch.full((x.shape[0],), -math.inf, dtype=torch.float64, device=device)
    for start in range(0, 1 << rbm.n_hidden, batch_size):
        stop = min(start + batch_size, 1 << rbm.n_hidden)
        states = binary_states(start, stop, rbm.n_hidden, dtype, device)  # (B, H)
        table = F.softplus(torch.addmm(rbm.visible_bias, states, rbm.weight.t()))  # (B, D)
        log_f = (table @ missing.t()).double() + (states @ hidden_bias.t()).double()  # (B, n)
        total = torch.logaddexp(total, torch.logsumexp(log_f, dim=0))
    values = numerator - total
    return ConditionalEstimate(
        values,
        torch.zeros_like(values),
        f"exact: enumeration of the 2^{rbm.n_hidden} hidden "
        "states with the observed pixels clamped (Eq. 5.5)",
        1.0,
    )


def rbm_conditional_exact_masks(
    rbm: RBM, x: torch.Tensor, masks: list[torch.Tensor]
) -> list[ConditionalEstimate]:
    """:func:`rbm_conditional_exact` of the same images ``x`` (n, D) under each of ``masks``
    (each (n, D)), by one enumeration of the hidden states (Eq. 5.5): the rows of every mask are
    stacked, so the softplus table of each batch of states, which depends on neither the images
    nor the masks, is computed once for all of them. Returns one estimate per mask."""
    if not masks:
        return []
    n = x.shape[0]
    stacked = rbm_conditional_exact(rbm, x.repeat(len(masks), 1), torch.cat(list(masks)))
    return [
        ConditionalEstimate(values, errors, stacked.method, stacked.effective_samples)
        for values, errors in zip(stacked.values.split(n), stacked.std_errors.split(n), strict=True)
    ]


def _clamped_ais_log_weights(rbm, base, missing, hidden_bias, betas, n_runs, generator):
    """AIS log weights (n, R) on the clamped RBMs, all images and runs at once (Eq. 5.6)."""
    n, d = missing.shape
    weight, visible_bias = rbm.weight, rbm.visible_bias
    rows_missing = missing.repeat_interleave(n_runs, 0)  # (nR, D)
    rows_bias = hidden_bias.repeat_interleave(n_runs, 0)  # (nR, H)
    noise = torch.rand(rows_missing.shape, generator=generator, device=weight.device)
    u = (noise < torch.sigmoid(base)).to(weight.dtype) * rows_missing
    log_w = torch.zeros(u.shape[0], dtype=torch.float64, device=weight.device)
    shift = visible_bias - base
    previous = 0.0
    for index, beta in enumerate(betas[1:], start=1):
        inputs = torch.addmm(rows_bias, u, weight)  # (nR, H)
        log_w += ((beta - previous) * (u @ shift)).double()
        log_w += (F.softplus(beta * inputs) - F.softplus(previous * inputs)).sum(1).double()
        previous = beta
        if index == len(betas) - 1:
            break
        # the transition T_beta of the clamped RBM: h | u, then the missing pixels | h
        hidden = (
            torch.rand(inputs.shape, generator=generator, device=weight.device)
            < torch.sigmoid(beta * inputs)
        ).to(weight.dtype)
        logits = torch.addmm(torch.lerp(base, visible_bias, beta), hidden, weight.t(), alpha=beta)
        draw = torch.rand(u.shape, generator=generator, device=weight.device)
        u = (draw < torch.sigmoid(logits)).to(weight.dtype) * rows_missing
    return log_w.view(n, n_runs)


@torch.inference_mode()
def rbm_conditional_ais(
    rbm: RBM,
    x: torch.Tensor,
    mask: torch.Tensor,
    base_visible_bias: torch.Tensor,
    n_runs: int = 16,
    n_betas: int = 1000,
    generator: torch.Generator | None = None,
    batch_size: int = 100,
) -> ConditionalEstimate:
    """``log p(v_m | v_o)`` per image by AIS on the clamped RBM (Eq. 5.6).

    Clamping ``v_o`` leaves an RBM over the missing pixels with visible biases ``b_m``, weights
    ``W_m`` and hidden biases ``c + W'v_o``; its ``log Z(v_o)`` is estimated by ``n_runs`` AIS runs
    along ``n_betas`` betas (SM08 spacing) from the base-rate model over the missing pixels
    (``base_visible_bias``, Eq. 3.6; ``log Z_0 = sum_(i missing) softplus(b0_i) + H log 2``).
    Images go ``batch_size`` at a time. The standard error is the delta method's on the runs'
    weights; like every AIS estimate, ``log Z`` is low on average, so the conditional is
    optimistic by the estimator's bias (small when the effective runs are many).
    """
    _check(x, mask, rbm.n_visible)
    if n_runs < 2:
        raise ConfigError(f"need at least 2 AIS runs for an error estimate, got {n_runs}")
    betas = ais_betas(n_betas).tolist()
    base = base_visible_bias.to(device=rbm.weight.device, dtype=rbm.weight.dtype)
    values, errors, effective = [], [], []
    for rows, rows_mask in zip(x.split(batch_size), mask.split(batch_size), strict=True):
        missing, hidden_bias, numerator = _clamped_parts(rbm, rows, rows_mask)
        log_w = _clamped_ais_log_weights(rbm, base, missing, hidden_bias, betas, n_runs, generator)
        log_mean, error, ess = _log_mean_and_error(log_w, 1)
        log_z0 = (F.softplus(base) @ missing.t()).double() + rbm.n_hidden * math.log(2.0)
        values.append(numerator - log_z0 - log_mean)
        errors.append(error)
        effective.append(ess)
    return ConditionalEstimate(
        torch.cat(values),
        torch.cat(errors),
        f"AIS on the clamped RBM, {n_runs} runs, {n_betas} betas (Eq. 5.6)",
        float(torch.cat(effective).mean()),
    )


# ------------------------------------------------------------------------------------------------
# VAE


def _masked_log_likelihood(vae, x, keep, z):
    """``sum_i keep_i log p(x_i | z)`` (Eq. 2.5) for codes ``z`` (S, n, K); shape (S, n)."""
    logits = vae.decode_logits(z)
    return ((x * logits - F.softplus(logits)) * keep).sum(-1)


def _log_marginal(vae, x, keep, means, log_vars, prior_weight, k, chunk, generator):
    """Importance-sampled ``log p(x_keep)`` (n,) with its error and ESS (Eq. 5.7): proposals from
    the equal mixture of ``q(z | fill_s)`` (means/log_vars (S, n, K)) and the prior."""
    n_fills, n, latent = means.shape
    log_w_parts = []
    for start in range(0, k, chunk):
        m = min(chunk, k - start)
        component = torch.randint(n_fills, (m, n), generator=generator, device=x.device)
        from_prior = torch.rand((m, n), generator=generator, device=x.device) < prior_weight
        eps = torch.randn((m, n, latent), generator=generator, device=x.device, dtype=x.dtype)
        mean = means.gather(0, component.unsqueeze(-1).expand(m, n, latent))
        log_var = log_vars.gather(0, component.unsqueeze(-1).expand(m, n, latent))
        z = torch.where(from_prior.unsqueeze(-1), eps, mean + torch.exp(0.5 * log_var) * eps)
        # the mixture density: (1 - a) mean_s q(z | fill_s) + a p(z)
        log_q = torch.logsumexp(
            gaussian_log_density(z.unsqueeze(1), means.unsqueeze(0), log_vars.unsqueeze(0)), 1
        ) - math.log(n_fills)
        log_prior = standard_normal_log_density(z)
        if prior_weight > 0:
            log_q = torch.logaddexp(
                log_q + math.log1p(-prior_weight), log_prior + math.log(prior_weight)
            )
        log_w_parts.append((_masked_log_likelihood(vae, x, keep, z) + log_prior - log_q).double())
    return _log_mean_and_error(torch.cat(log_w_parts), 0)


@torch.inference_mode()
def vae_conditional_is(
    vae,
    x: torch.Tensor,
    mask: torch.Tensor,
    fills: torch.Tensor,
    k: int = 1000,
    prior_weight: float = 0.1,
    generator: torch.Generator | None = None,
    chunk: int = 50,
    batch_size: int = 100,
) -> ConditionalEstimate:
    """``log p(x_m | x_o) = log p(x) - log p(x_o)`` per image by importance sampling (Eq. 5.7).

    ``log p(x)``: ``k`` draws from ``q(z | x)`` (the IWAE estimate, Eq. 3.7). ``log p(x_o)`` (the
    decoder factorizes, so the missing pixels integrate out of ``p(x | z)``): ``k`` draws from the
    defensive mixture ``(1 - a) (1/S) sum_s q(z | fill_s) + a p(z)``, ``a = prior_weight``, where
    ``fills`` (S, n, D) are completions of the images that keep the observed pixels (e.g. the
    training-mean fill and a sampler's completions; the true missing pixels never enter). Each
    log-mean has the delta-method error; the two estimates use independent draws, so their
    variances add. ``effective_samples`` is the mean ESS of the ``p(x_o)`` weights.
    """
    _check(x, mask, vae.n_visible)
    if fills.ndim == 2:
        fills = fills.unsqueeze(0)
    if fills.shape[1:] != x.shape or not 0 <= prior_weight < 1 or k < 2:
        raise ConfigError("fills must be (S, n, D) like the images, 0 <= prior_weight < 1, k >= 2")
    weight = vae.decoder_output.weight
    values, errors, effective = [], [], []
    for index in range(0, x.shape[0], batch_size):
        rows = x[index : index + batch_size].to(device=weight.device, dtype=weight.dtype)
        keep = (~mask[index : index + batch_size]).to(device=weight.device, dtype=weight.dtype)
        block = fills[:, index : index + batch_size].to(device=weight.device, dtype=weight.dtype)
        full_mean, full_log_var = vae.encode(rows)
        joint, joint_error, _ = _log_marginal(
            vae,
            rows,
            torch.ones_like(keep),
            full_mean.unsqueeze(0),
            full_log_var.unsqueeze(0),
            0.0,
            k,
            chunk,
            generator,
        )
        means, log_vars = vae.encode(block)
        observed, observed_error, ess = _log_marginal(
            vae, rows, keep, means, log_vars, prior_weight, k, chunk, generator
        )
        none_missing = keep.all(1)  # nothing to predict: log p = 0 exactly, no sampling noise
        values.append(torch.where(none_missing, 0.0, joint - observed))
        error = torch.sqrt(joint_error.pow(2) + observed_error.pow(2))
        errors.append(torch.where(none_missing, 0.0, error))
        effective.append(ess)
    return ConditionalEstimate(
        torch.cat(values),
        torch.cat(errors),
        f"importance sampling, K = {k}: log p(x) with q(z | x), log p(x_o) with a mixture of "
        f"q(z | fill) over {fills.shape[0]} fill(s) and the prior (weight {prior_weight}) (Eq. 5.7)",
        float(torch.cat(effective).mean()),
    )


# ------------------------------------------------------------------------------------------------
# k nearest neighbours


@torch.inference_mode()
def nearest_neighbours(
    x: torch.Tensor, mask: torch.Tensor, train_images: torch.Tensor, k: int, batch_size: int = 500
) -> torch.Tensor:
    """Indices (n, k) of the ``k`` training images nearest to each image on its observed pixels
    (squared distance ``sum_o (x_i - t_i)^2``, computed as two matrix products per batch)."""
    if not 0 < k <= train_images.shape[0]:
        raise ConfigError(f"k must be between 1 and {train_images.shape[0]}, got {k}")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    train = train_images.to(x.device, dtype)
    train_sq_t, train_t = train.pow(2).t(), train.t()
    parts = [x.new_empty(0, k, dtype=torch.long)]
    for rows, missing in zip(x.split(batch_size), mask.split(batch_size), strict=True):
        observed = (~missing).to(dtype)
        score = (observed @ train_sq_t).sub_(2.0 * (observed * rows.to(dtype)) @ train_t)
        parts.append(score.topk(k, dim=1, largest=False).indices)
    return torch.cat(parts)


@torch.inference_mode()
def knn_conditional(
    x: torch.Tensor,
    mask: torch.Tensor,
    train_images: torch.Tensor,
    k: int = 10,
    smoothing: float = 0.05,
) -> ConditionalEstimate:
    """``log p(x_m | x_o)`` under the k-NN baseline read as a model (Eq. 5.8), exact.

    The ``k`` training images nearest on the observed pixels, each a product of Bernoullis with
    ``p_i = smoothing + (1 - 2 smoothing) t_i`` (so that no pixel is certain), mixed equally:
    ``log (1/k) sum_j prod_(i missing) p_ji^x_i (1 - p_ji)^(1 - x_i)``. Its mean (the k-NN fill
    with the smoothing) is the fill that ``evaluation.scoring.knn_fill`` scores.
    """
    if not 0 < smoothing < 0.5:
        raise ConfigError(f"smoothing must be in (0, 0.5), got {smoothing}")
    nearest = nearest_neighbours(x, mask, train_images, k)
    train = train_images.to(x.device)
    values = []
    for rows, missing, index in zip(x.split(200), mask.split(200), nearest.split(200), strict=True):
        p = smoothing + (1 - 2 * smoothing) * train[index].double()  # (b, k, D)
        rows = rows.double().unsqueeze(1)
        log_p = rows * torch.log(p) + (1 - rows) * torch.log1p(-p)
        per_neighbour = (log_p * missing.unsqueeze(1)).sum(-1)  # (b, k)
        values.append(torch.logsumexp(per_neighbour, 1) - math.log(k))
    values = torch.cat(values)
    return ConditionalEstimate(
        values,
        torch.zeros_like(values),
        f"exact: equal mixture of the {k} nearest training images, pixels smoothed by "
        f"{smoothing} (Eq. 5.8)",
        float(k),
    )


# ------------------------------------------------------------------------------------------------
# One entry point per model


def _rbm_conditional(model, x, mask, options: dict) -> ConditionalEstimate:
    if model.n_hidden <= MAX_ENUMERATED_UNITS:
        return rbm_conditional_exact(model, x, mask)
    if options.get("base_visible_bias") is None:
        raise ConfigError("AIS on the clamped RBM needs the base-rate visible biases")
    return rbm_conditional_ais(
        model,
        x,
        mask,
        options["base_visible_bias"],
        options.get("ais_runs", 16),
        options.get("ais_betas", 1000),
        generator=options.get("generator"),
    )


def _vae_conditional(model, x, mask, options: dict) -> ConditionalEstimate:
    if options.get("fills") is None:
        raise ConfigError("importance sampling for a VAE needs fills of the missing pixels")
    return vae_conditional_is(
        model,
        x,
        mask,
        options["fills"],
        k=options.get("k", 500),
        generator=options.get("generator"),
    )


# The conditional log-likelihood estimator of each model kind.
CONDITIONALS = {"rbm": _rbm_conditional, "vae": _vae_conditional}


# Whether the estimator of each model kind is exact for a given model.
EXACT_CONDITIONALS = {
    "rbm": lambda rbm: rbm.n_hidden <= MAX_ENUMERATED_UNITS,
    "vae": lambda _: False,
}


def conditional_is_exact(model) -> bool:
    """Whether :func:`model_conditional` of ``model`` is exact and so the same whatever the
    fills and the generator: an RBM of at most 25 hidden units (Eq. 5.5), whose conditionals
    under several masks :func:`rbm_conditional_exact_masks` finds in one enumeration."""
    return EXACT_CONDITIONALS.get(getattr(model, "kind", None), lambda _: False)(model)


def model_conditional(model, x: torch.Tensor, mask: torch.Tensor, **options) -> ConditionalEstimate:
    """``log p(x_m | x_o)`` of ``model`` by the estimator of its kind (``CONDITIONALS``): an RBM
    exactly when it has at most 25 hidden units (Eq. 5.5), otherwise by AIS on the clamped RBM
    (Eq. 5.6; options ``base_visible_bias``, ``ais_runs``, ``ais_betas``); a VAE by importance
    sampling (Eq. 5.7; options ``fills`` (S, n, D), the proposal centres, and ``k``). Option
    ``generator`` for the draws."""
    kind = getattr(model, "kind", type(model).__name__)
    if kind not in CONDITIONALS:
        raise ConfigError(f"no conditional log-likelihood for model kind {kind!r}")
    return CONDITIONALS[kind](model, x, mask, options)


@torch.inference_mode()
def mean_fill_conditional(
    x: torch.Tensor, mask: torch.Tensor, train_images: torch.Tensor, pseudo_count: float = 1.0
) -> ConditionalEstimate:
    """``log p(x_m | x_o)`` of the training-mean fill read as independent Bernoulli pixels with
    the smoothed training means ``(sum + pseudo_count) / (N + 2 pseudo_count)`` (the base-rate
    model of Eq. 3.6, which ignores ``x_o``); exact."""
    n = train_images.shape[0]
    p = (train_images.double().sum(0).to(x.device) + pseudo_count) / (n + 2 * pseudo_count)
    x = x.double()
    log_p = x * torch.log(p) + (1 - x) * torch.log1p(-p)
    values = (log_p * mask).sum(1)
    return ConditionalEstimate(
        values, torch.zeros_like(values), "exact: independent pixels at the training means", 1.0
    )
