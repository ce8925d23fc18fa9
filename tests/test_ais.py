"""AIS, RAISE and their diagnostics, checked against enumeration on tiny RBMs (Eqs. 3.2-3.5,
3.9-3.11). These tests are built to fail for the classic AIS bugs (math-audit R1): a weight
taken after the transition instead of before, a transition that does not leave its
intermediate distribution invariant, increments that lose precision in float32."""

import itertools
import math

import pytest
import torch

from rbmvae.evaluation.text import _ais_line
from rbmvae.likelihood import (
    ais_betas,
    ais_log_partition,
    log_partition_exact,
    raise_log_likelihood,
)
from rbmvae.likelihood.rbm import _annealed_log_weights
from rbmvae.models import RBM

# chi-square critical values at p = 0.001 by degrees of freedom
CHI2_999 = {31: 61.10, 63: 103.44}


def all_states(n, dtype=torch.float64):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=dtype)


def strong_rbm(n_visible, n_hidden, scale, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(n_visible, n_hidden).to(dtype)
    with torch.no_grad():
        rbm.weight.copy_(torch.randn(n_visible, n_hidden, generator=g, dtype=dtype) * scale)
        rbm.visible_bias.copy_(torch.randn(n_visible, generator=g, dtype=dtype))
        rbm.hidden_bias.copy_(torch.randn(n_hidden, generator=g, dtype=dtype))
    return rbm


def tempered_log_f(rbm, base, beta, v):
    """log f_beta(v) of Eq. 3.2, in float64, for rows v."""
    x = rbm.hidden_logits(v)
    return (
        (1 - beta) * (v @ base)
        + beta * (v @ rbm.visible_bias)
        + (torch.nn.functional.softplus(beta * x).sum(-1))
    )


def transition_matrix(rbm, base, beta):
    """T_beta(v' | v) of Eq. 3.3 over all visible states, by enumeration (2^D, 2^D)."""
    v, h = all_states(rbm.n_visible), all_states(rbm.n_hidden)
    ph1 = torch.sigmoid(beta * rbm.hidden_logits(v))  # (V, H)
    p_h = torch.prod(torch.where(h.bool().unsqueeze(0), ph1.unsqueeze(1), 1 - ph1.unsqueeze(1)), -1)
    logits = (1 - beta) * base + beta * rbm.visible_logits(h)  # (Hs, D)
    pv1 = torch.sigmoid(logits)
    p_v = torch.prod(torch.where(v.bool().unsqueeze(0), pv1.unsqueeze(1), 1 - pv1.unsqueeze(1)), -1)
    return p_h @ p_v  # (V, H) @ (H, V)


def codes_of(v):
    n = v.shape[1]
    return (v * (2.0 ** torch.arange(n - 1, -1, -1, dtype=v.dtype))).sum(1).long()


def chi_square(states, probs):
    assert torch.equal(states, states.round()), "states must be binary"
    states = states.detach()
    counts = torch.bincount(codes_of(states), minlength=probs.numel()).double()
    expected = probs.detach() * states.shape[0]
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("n_betas", [10, 100])
def test_ais_from_a_far_base_with_few_betas_matches_exact_log_z(n_betas):
    # Base model zeros (far from the RBM), few betas, many runs: the estimator is unbiased for
    # any schedule, so exact log Z must fall inside the +-3 standard error interval. A weight
    # taken after the transition (or the increments of the wrong betas) is biased by far more.
    rbm = strong_rbm(12, 8, 1.0, seed=3)
    exact = log_partition_exact(rbm)
    g = torch.Generator().manual_seed(0)
    result = ais_log_partition(rbm, torch.zeros(12), n_runs=20000, n_betas=n_betas, generator=g)
    assert result.log_z_low < exact < result.log_z_high, (result, exact)
    assert result.log_z_high - result.log_z_low < 0.2
    assert result.effective_runs > 1000


def test_a_poor_ais_run_still_obeys_the_markov_bound_on_log_z():
    # The equal-budget comparison bounds an unreliable figure by Markov's inequality on the
    # unbiased Z estimate: P(log Z_hat >= log Z + log 100) <= 1% (s. 3.3), however poor the run.
    # Groups of 3 runs from a far base with 4 betas: their log Z_hat errs low often and by nats
    # (the AIS figure of the log-likelihood is then too high), yet rarely errs high by log 100.
    rbm = strong_rbm(12, 8, 1.0, seed=3)
    exact = log_partition_exact(rbm)
    g = torch.Generator().manual_seed(4)
    groups, size = 2000, 3
    log_w, _, _ = _annealed_log_weights(
        rbm, torch.zeros(12, dtype=torch.float64), ais_betas(4).tolist(), groups * size, g
    )
    # the base has zero biases: log Z_0 = sum_i softplus(0) + H log 2 = (12 + 8) log 2
    log_z_base = 20 * math.log(2.0)
    log_z = log_z_base + torch.logsumexp(log_w.view(groups, size), 1) - math.log(size)
    errs_low = float((log_z < exact - 1.0).double().mean())
    breaks = float((log_z >= exact + math.log(100.0)).double().mean())
    assert errs_low > 0.3, errs_low  # the run is poor: its figure alone would overstate
    assert breaks <= 0.01 + 3 * math.sqrt(0.01 * 0.99 / groups), breaks


def test_one_ais_transition_leaves_its_distribution_invariant():
    # v ~ p_beta exactly (enumeration), one transition T_beta of the AIS kernel, chi-square of
    # the result against p_beta. A transition at the wrong beta, the base and model biases
    # interpolated the wrong way, or probabilities fed instead of samples all fail.
    rbm = strong_rbm(6, 4, 1.5, seed=1)
    base = torch.randn(6, generator=torch.Generator().manual_seed(9), dtype=torch.float64) * 2
    states = all_states(6)
    for beta in (0.3, 1.0):
        probs = torch.softmax(tempered_log_f(rbm, base, beta, states), 0)
        # the kernel's transition matrix by enumeration has p_beta as its fixed point
        torch.testing.assert_close(probs @ transition_matrix(rbm, base, beta), probs)
        g = torch.Generator().manual_seed(5)
        start = states[torch.multinomial(probs, 60000, replacement=True, generator=g)]
        log_w, _, final = _annealed_log_weights(rbm, base, [beta, beta], 60000, g, start)
        assert torch.equal(log_w, torch.zeros_like(log_w))
        assert chi_square(final, probs) < CHI2_999[63]


def test_raise_is_an_unbiased_estimate_of_the_annealing_model():
    # q(v): base model, then T_beta for each beta > 0 (Eq. 3.9), computed by enumeration. The
    # mean of exp(RAISE) over many reverse chains from v must be q(v) (Eq. 3.10), for each v.
    rbm = strong_rbm(5, 3, 1.5, seed=4)
    base = torch.zeros(5, dtype=torch.float64)
    betas = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    states = all_states(5)
    q = torch.softmax(tempered_log_f(rbm, base, 0.0, states), 0)
    for beta in betas[1:].tolist():
        q = q @ transition_matrix(rbm, base, beta)
    p = torch.softmax(-rbm.free_energy(states), 0)
    assert (q - p).abs().max() > 0.01  # q is not the RBM itself: the test tells them apart
    reps = 4000
    visible = states.repeat_interleave(reps, 0)
    g = torch.Generator().manual_seed(2)
    values = raise_log_likelihood(rbm, visible, base, betas=betas, generator=g, batch_size=10**6)
    estimates = values.exp().view(32, reps)
    mean, se = estimates.mean(1), estimates.std(1) / math.sqrt(reps)
    assert ((mean - q).abs() < 4.5 * se + 1e-12).all(), (mean, q, se)
    # Jensen: the mean of log q-hat lies below log q (the conservative side)
    assert (values.view(32, reps).mean(1) <= q.log() + 1e-9).all()


def test_raise_approaches_the_exact_log_likelihood_from_below():
    rbm = strong_rbm(12, 8, 1.0, seed=3)
    exact_log_z = log_partition_exact(rbm)
    g = torch.Generator().manual_seed(1)
    v = (torch.rand(200, 12, generator=g, dtype=torch.float64) < 0.5).double()
    exact = (-rbm.free_energy(v) - exact_log_z).mean().item()
    short = raise_log_likelihood(rbm, v, torch.zeros(12), n_betas=10, generator=g).mean().item()
    long = raise_log_likelihood(rbm, v, torch.zeros(12), n_betas=500, generator=g).mean().item()
    assert short < long - 0.1
    assert exact - 0.15 < long < exact + 0.05, (long, exact)


def test_ais_increments_are_accumulated_in_float64():
    # A float32 model whose states never move (biases of +-40 fix every visible unit) and whose
    # hidden inputs are large (sum of softplus about 5,000): the increments telescope to
    # log f_1(v) - log f_0(v) exactly. Float32 differences of the two softplus sums drift by
    # up to 0.17 nats over 5,000 betas (checked with the former float32 code); float64
    # increments stay within the float32 rounding of the inputs c + vW (about 0.002).
    n_visible, n_hidden = 20, 500
    rbm = RBM(n_visible, n_hidden)
    with torch.no_grad():
        rbm.weight.fill_(0.001)
        pattern = torch.arange(n_visible) % 2 == 0
        rbm.visible_bias.copy_(torch.where(pattern, 40.0, -40.0))
        rbm.hidden_bias.fill_(10.0)
    base = rbm.visible_bias.detach().clone()
    g = torch.Generator().manual_seed(0)
    log_w, _, final = _annealed_log_weights(rbm, base, ais_betas(5000).tolist(), 8, g)
    v = pattern.double().unsqueeze(0)
    with torch.no_grad():
        x = rbm.hidden_logits(v.float()).double()
    expected = torch.nn.functional.softplus(x).sum() - n_hidden * math.log(2.0)
    assert torch.equal(final[0].double(), v[0])
    assert log_w.dtype == torch.float64
    assert (log_w - expected).abs().max() < 1e-2, (log_w, expected)


def test_float32_softplus_differences_match_float64_softplus_sums(monkeypatch):
    # The log1p/expm1 form of the increments (derivation s. 3.2) against the two float64
    # softplus sums it replaces, on the same draws (the states do not depend on how the
    # increments are formed): an MNIST-sized float32 RBM, hidden
    # inputs up to about 70, 2,000 betas. The float32 form must agree within 1e-4 nats per run
    # (it does within about 4e-6); a sigmoid taken at the previous beta instead of the current
    # one is off by about a nat.
    import rbmvae.likelihood.rbm as module

    g = torch.Generator().manual_seed(3)
    rbm = RBM(784, 100)
    with torch.no_grad():
        rbm.weight.copy_(torch.randn(784, 100, generator=g) * 0.1)
        rbm.hidden_bias.copy_(torch.randn(100, generator=g) * 2)
        rbm.visible_bias.copy_(torch.randn(784, generator=g))
    base = torch.zeros(784)
    steps = ais_betas(2000).tolist()
    assert max(b - a for a, b in itertools.pairwise(steps)) * module._hidden_input_bound(rbm) <= 1

    class NoSoftplus:  # the float32 path must not need the float64 softplus sums
        def softplus(self, *args, **kwargs):
            raise AssertionError("float64 softplus used on a small step")

    with monkeypatch.context() as patch:
        patch.setattr(module, "F", NoSoftplus())
        fast, _, fast_end = _annealed_log_weights(
            rbm, base, steps, 20, torch.Generator().manual_seed(0)
        )
    monkeypatch.setattr(module, "SMALL_STEP", -1.0)  # every step by the float64 sums
    wide, _, wide_end = _annealed_log_weights(
        rbm, base, steps, 20, torch.Generator().manual_seed(0)
    )
    assert torch.equal(fast_end, wide_end)
    assert (fast - wide).abs().max() < 1e-4, (fast - wide).abs().max()


def test_large_steps_take_the_float64_softplus_sums():
    # One step from beta = 0 to 1 with hidden inputs of 50: expm1 of the log1p/expm1 form would overflow in
    # float32. The float64 path gives the exact telescoped value sum_j softplus(x_j) - H log 2.
    rbm = RBM(4, 3)
    with torch.no_grad():
        rbm.weight.zero_()
        rbm.hidden_bias.fill_(50.0)
        rbm.visible_bias.zero_()
    base = torch.zeros(4)
    log_w, _, _ = _annealed_log_weights(rbm, base, [0.0, 1.0], 5, torch.Generator().manual_seed(0))
    expected = 3 * (50.0 + math.log1p(math.exp(-50.0)) - math.log(2.0))
    assert torch.allclose(log_w, torch.full_like(log_w, expected), atol=1e-5), log_w


def test_an_ais_figure_that_fails_its_checks_is_printed_as_unreliable():
    part = {
        "n_runs": 100,
        "n_betas": 100,
        "effective_runs": {"value": 40.0},
        "seconds": {"value": 1.0},
        "mean_log_likelihood": {"value": -74.6},
        "mean_log_likelihood_low": {"value": -75.0},
        "mean_log_likelihood_high": {"value": -74.0},
        "log_z": {"value": 300.0},
        "bracket": {"low": {"value": -90.0}, "high": {"value": -74.6}},
        "raise": {"n_images": 100},
        "doubled_betas": {"delta": {"value": -3.0}},
        "reliable": False,
        "problems": ["the RAISE-AIS bracket is 15.40 nats wide (> 2)"],
    }
    line = _ais_line(part, {})
    assert "unreliable" in line and "15.40 nats wide" in line
    assert "-74.6" not in line.split("RAISE bracket")[0]
