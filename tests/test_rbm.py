import itertools

import pytest
import torch

from rbmvae.basics.errors import ConfigError
from rbmvae.models import RBM
from rbmvae.training.objectives import ContrastiveDivergence

torch.set_default_dtype(torch.float32)


def all_states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))


def test_free_energy_matches_brute_force(tiny_rbm):
    rbm = tiny_rbm()
    v = all_states(5).double()
    h = all_states(4).double()
    energies = torch.stack([rbm.energy(v, hh.expand(len(v), -1)) for hh in h], dim=1)
    brute = -torch.logsumexp(-energies, dim=1)
    torch.testing.assert_close(rbm.free_energy(v), brute)
    # and F(h), with the visible units summed out
    energies_h = torch.stack([rbm.energy(vv.expand(len(h), -1), h) for vv in v], dim=1)
    torch.testing.assert_close(rbm.free_energy_hidden(h), -torch.logsumexp(-energies_h, dim=1))


def test_conditionals_match_the_joint(tiny_rbm):
    rbm = tiny_rbm()
    v = all_states(5).double()
    h = all_states(4).double()
    log_joint = torch.stack([-rbm.energy(v, hh.expand(len(v), -1)) for hh in h], dim=1)
    p_h_given_v = torch.softmax(log_joint, dim=1)  # rows: v, cols: h states
    marginal_h1 = p_h_given_v @ h  # p(h_j = 1 | v)
    torch.testing.assert_close(rbm.hidden_probs(v), marginal_h1)
    p_v_given_h = torch.softmax(log_joint.t(), dim=1)
    torch.testing.assert_close(rbm.visible_probs(h), p_v_given_h @ v)


def test_cd_gradient_equals_autograd(tiny_rbm):
    rbm = tiny_rbm(12, 7)
    g = torch.Generator().manual_seed(3)
    v_data = (torch.rand(9, 12, generator=g) < 0.5).double()
    v_model = (torch.rand(11, 12, generator=g) < 0.5).double()
    grads = rbm.contrastive_gradients(
        v_data, rbm.hidden_probs(v_data).detach(), v_model, rbm.hidden_probs(v_model).detach()
    )
    objective = rbm.free_energy(v_data).mean() - rbm.free_energy(v_model).mean()
    auto = torch.autograd.grad(objective, [rbm.weight, rbm.visible_bias, rbm.hidden_bias])
    for mine, theirs in zip(grads, auto, strict=True):
        torch.testing.assert_close(mine, theirs)
    # the same rows stacked in one buffer each (the training step's layout): the same gradients
    visible = torch.cat([v_data, v_model])
    probs = rbm.hidden_probs(visible).detach()
    weights = torch.cat([torch.full((9,), -1 / 9), torch.full((11,), 1 / 11)]).double()
    stacked = {"visible_t": visible.t(), "data_t": visible[:9].t(), "chains_t": visible[9:].t()}
    stacked.update(probs_t=probs.t(), weights=weights)
    grads = rbm.contrastive_gradients(visible[:9], probs[:9], visible[9:], probs[9:], stacked)
    for mine, theirs in zip(grads, auto, strict=True):
        torch.testing.assert_close(mine, theirs)


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_objective_step_sets_the_gradient_of_its_loss(method):
    """A training step puts d/dtheta [mean F(data) - mean F(v_model)] into .grad, and returns it."""
    rbm = RBM(20, 6)
    objective = ContrastiveDivergence(method=method, k=2)
    batch = (torch.rand(8, 20, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    captured = {}
    original = rbm.contrastive_gradients

    def spy(v_data, h_data, v_model, h_model, **options):
        captured["v_model"] = v_model.clone()
        return original(v_data, h_data, v_model, h_model, **options)

    rbm.contrastive_gradients = spy
    loss = objective.step(rbm, batch, torch.Generator().manual_seed(5))
    v_model = captured["v_model"]
    if method == "pcd":  # persistent chains keep binary visible states
        assert set(v_model.unique().tolist()) <= {0.0, 1.0}
        assert objective.chain_hidden.shape == (8, 6)
    else:  # CD's last visible update uses probabilities
        assert ((v_model > 0) & (v_model < 1)).any()
    target = rbm.free_energy(batch).mean() - rbm.free_energy(v_model).mean()
    torch.testing.assert_close(loss, target.detach())
    auto = torch.autograd.grad(target, [rbm.weight, rbm.visible_bias, rbm.hidden_bias])
    for param, expected in zip([rbm.weight, rbm.visible_bias, rbm.hidden_bias], auto, strict=True):
        torch.testing.assert_close(param.grad, expected)


def test_gibbs_sampler_reaches_the_model_distribution(tiny_rbm):
    """Long Gibbs chains on a tiny RBM visit visible states with the exact p(v) (Eq. 1.4)."""
    rbm = tiny_rbm(4, 3, scale=1.0, seed=2).float()
    v_states = all_states(4)
    exact = torch.softmax(-rbm.free_energy(v_states), 0)
    g = torch.Generator().manual_seed(0)
    start = (torch.rand(100000, 4, generator=g) < 0.5).float()
    with torch.no_grad():
        final, _ = rbm.gibbs_chain(start, 30, g)
    assert torch.equal(final, final.round())  # binary states
    codes = (final * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    empirical = torch.bincount(codes, minlength=16).float() / len(codes)
    assert (empirical - exact).abs().max() < 0.015
    # chi-square, 15 degrees of freedom, p = 0.001: a chain feeding p(h | v) for h fails this
    chi2 = (((empirical - exact) * len(codes)) ** 2 / (exact * len(codes))).sum().item()
    assert chi2 < 37.70, chi2


def test_initialization_follows_the_guide():
    rbm = RBM(784, 100)
    mean = torch.linspace(0.0, 1.0, 784)
    rbm.reset_parameters(visible_mean=mean, generator=torch.Generator().manual_seed(0))
    assert abs(rbm.weight.std().item() - 0.01) < 0.001
    assert torch.equal(rbm.hidden_bias, torch.zeros(100))
    p = mean.clamp(1e-3, 1 - 1e-3)
    torch.testing.assert_close(torch.sigmoid(rbm.visible_bias), p)


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_invalid_sizes(bad):
    with pytest.raises(ConfigError, match="positive integer"):
        RBM(784, bad)


# ------------------------------------------------------------------------------------------------
# 16-bit Bernoulli draws (Eq. 1.20)


def test_16bit_draws_give_one_for_round_2_16_p_of_the_2_16_lanes():
    # every 16-bit lane once: the count of ones is exactly round(2^16 p), for probabilities off
    # the half-way points (and 0 and 1 exactly)
    from rbmvae.models.rbm import bernoulli_from_lanes

    lanes = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    ticks = torch.tensor([0.0, 0.3, 0.7, 1.2, 2.9, 1000.4, 32767.8, 65535.2, 65535.7, 65536.0])
    for tick in ticks.tolist():
        p = torch.full((65536,), tick / 65536)
        ones = int(bernoulli_from_lanes(p, lanes).sum())
        assert ones == round(tick), (tick, ones)
    out = torch.empty(65536)
    assert bernoulli_from_lanes(torch.full((65536,), 0.25), lanes, out=out) is out
    assert set(out.unique().tolist()) == {0.0, 1.0} and out.sum() == 16384


def test_16bit_draws_are_uniform_and_independent():
    from rbmvae.models.rbm import bernoulli_16bit, random_lanes

    g = torch.Generator().manual_seed(0)
    lanes = random_lanes(1_000_003, g).to(torch.int32) + 32768  # an odd count: a partial word
    assert lanes.shape == (1_000_003,) and lanes.min() >= 0 and lanes.max() <= 65535
    # each of the 16 bits is a fair coin, and so is each of the four lanes of a word
    bits = (lanes[:, None] >> torch.arange(16)) & 1
    assert (bits.float().mean(0) - 0.5).abs().max() < 0.003  # 6 standard errors
    quarters = lanes[: 4 * 250_000].view(-1, 4).float().mean(0) / 65535
    assert (quarters - 0.5).abs().max() < 0.004
    # draws at several probabilities: frequencies within 5 standard errors, neighbours uncorrelated
    probs = torch.tensor([0.01, 0.2, 0.5, 0.9]).repeat(250_000, 1)
    draws = bernoulli_16bit(probs, g)
    assert draws.dtype == probs.dtype and set(draws.unique().tolist()) == {0.0, 1.0}
    error = (draws.mean(0) - probs[0]) / (probs[0] * (1 - probs[0]) / 250_000) ** 0.5
    assert error.abs().max() < 5, error
    centred = draws[:, 2] - 0.5
    assert abs(float((centred[1:] * centred[:-1]).mean())) < 0.003


def test_training_with_16bit_draws_draws_through_them(sample_data, monkeypatch):
    from rbmvae import TrainConfig, fit
    from rbmvae.models import rbm as rbm_module

    config = TrainConfig.defaults_for("rbm", epochs=1, bernoulli_bits=16, monitor_size=100)
    data = sample_data.subset(500, 200)
    calls = []
    original = rbm_module.BERNOULLI_DRAWS[16]
    monkeypatch.setitem(
        rbm_module.BERNOULLI_DRAWS, 16, lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    sixteen = RBM(784, 16)
    fit(sixteen, data, config, progress=False)
    assert len(calls) == 5  # CD-1 draws once per batch: the hidden units the data drive
    monkeypatch.undo()
    plain = RBM(784, 16)
    fit(plain, data, config.replace(bernoulli_bits=24), progress=False)
    assert not torch.equal(sixteen.weight, plain.weight)
    with pytest.raises(ConfigError, match="bernoulli bits must be 24 or 16, got 8"):
        config.replace(bernoulli_bits=8)
