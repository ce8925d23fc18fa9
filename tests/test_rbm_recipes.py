"""The RBM training recipes against independent computations on tiny models (Eqs. 1.13-1.17):
CD-k with a rising k, PCD with any number of chains, parallel tempering, the assignment's recipe.
Exact expectations come from enumerating every state of a 5-visible, 4-hidden RBM."""

import itertools
import math

import torch

from rbmvae.models import RBM
from rbmvae.training import make_objective
from rbmvae.training.config import RECIPES, TrainConfig
from rbmvae.training.objectives import ContrastiveDivergence, ParallelTempering
from rbmvae.training.objectives.rbm import k_at
from rbmvae.training.objectives.tempering import swap_log_ratio, swap_neighbours, tempered_sweeps

# chi-square critical value at p = 0.001, 31 degrees of freedom
CHI2_31_999 = 61.10


def states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def rbm_5x4(scale=1.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(5, 4).double()
    with torch.no_grad():
        rbm.weight.copy_(torch.randn(5, 4, generator=g, dtype=torch.float64) * scale)
        rbm.visible_bias.copy_(torch.randn(5, generator=g, dtype=torch.float64) * 0.5)
        rbm.hidden_bias.copy_(torch.randn(4, generator=g, dtype=torch.float64) * 0.5)
    return rbm


def factorized(probs, table):
    """P(rows of the binary ``table`` | independent units with ``probs``): (N, S)."""
    on = table.bool().unsqueeze(0)
    return torch.where(on, probs.unsqueeze(1), 1 - probs.unsqueeze(1)).prod(-1)


def exact_cd_model_term(rbm, v0, k):
    """E[mu m'], E[mu], E[m] of our CD-k's last step for data ``v0`` (D,), by enumeration: h_0 ~
    p(h | v0), k - 1 sweeps h -> v -> h, then mu = p(v | h), m = sigm(c + mu W) (Eq. 1.13)."""
    v, h = states(5), states(4)
    with torch.no_grad():
        p_h_given_v = factorized(rbm.hidden_probs(v), h)  # (V, H)
        p_v_given_h = factorized(rbm.visible_probs(h), v)  # (H, V)
        q = factorized(rbm.hidden_probs(v0.unsqueeze(0)), h)[0]
        for _ in range(k - 1):
            q = q @ p_v_given_h @ p_h_given_v
        mu = rbm.visible_probs(h)  # (H, D)
        m = rbm.hidden_probs(mu)  # (H, H units)
    return torch.einsum("s,si,sj->ij", q, mu, m), q @ mu, q @ m


def exact_model_term(rbm):
    """E_p[v p(h | v)'], E_p[v], E_p[p(h | v)] under the RBM itself (Eq. 1.9), by enumeration."""
    v = states(5)
    with torch.no_grad():
        p = torch.softmax(-rbm.free_energy(v), 0)
        ph = rbm.hidden_probs(v)
    return torch.einsum("s,si,sj->ij", p, v, ph), p @ v, p @ ph


def split_gradient(rbm, batch, grads):
    """The model terms (W, b, c) of the gradients: grad = model - data (Eqs. 1.11, 1.12)."""
    with torch.no_grad():
        ph = rbm.hidden_probs(batch)
    data = (batch.t() @ ph / batch.shape[0], batch.mean(0), ph.mean(0))
    return [g + d for g, d in zip(grads, data, strict=True)]


def test_k_rises_linearly_over_the_epochs():
    assert [k_at(1, 25, e, 5) for e in range(5)] == [1, 7, 13, 19, 25]
    assert [k_at(3, 0, e, 4) for e in range(4)] == [3, 3, 3, 3]
    assert k_at(1, 10, 0, 1) == 10


def test_cd_k_gradient_matches_enumeration_at_the_scheduled_k():
    # A batch of 60,000 copies of one image: the model term of CD-k's gradient is a Monte Carlo
    # average that must match its exact expectation for the epoch's k (3, not the starting 1).
    rbm = rbm_5x4()
    v0 = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    batch = v0.expand(60000, -1).contiguous()
    objective = ContrastiveDivergence("cd", k=1, k_final=3)
    objective.start_epoch(1, 2)
    assert objective.k == 3
    objective.step(rbm, batch, torch.Generator().manual_seed(0))
    grads = [p.grad for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]
    model_w, model_b, model_c = split_gradient(rbm, batch, grads)
    exact_w, exact_b, exact_c = exact_cd_model_term(rbm, v0, 3)
    other_w, _, _ = exact_cd_model_term(rbm, v0, 1)
    assert (exact_w - other_w).abs().max() > 0.03  # the k's are told apart
    for got, want in ((model_w, exact_w), (model_b, exact_b), (model_c, exact_c)):
        assert (got - want).abs().max() < 0.01, (got, want)


def test_pcd_with_many_chains_samples_the_model_term():
    # 4,000 persistent chains for a batch of 7 rows; the model is not updated, so the chains are
    # a Markov chain of the RBM; after burn-in their statistics average to E_p (Eq. 1.14).
    rbm = rbm_5x4(seed=1)
    batch = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0]] * 7, dtype=torch.float64)
    objective = ContrastiveDivergence("pcd", k=1, chains=4000)
    g = torch.Generator().manual_seed(0)
    sums = None
    for step in range(80):
        objective.step(rbm, batch, g)
        if step >= 30:
            grads = [p.grad for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]
            terms = split_gradient(rbm, batch, grads)
            sums = terms if sums is None else [s + t for s, t in zip(sums, terms, strict=True)]
    assert objective.chain_hidden.shape == (4000, 4)
    exact = exact_model_term(rbm)
    cd1 = exact_cd_model_term(rbm, batch[0], 1)
    assert (exact[0] - cd1[0]).abs().max() > 0.05  # chains stuck at the data would fail
    for got, want in zip(sums, exact, strict=True):
        assert (got / 50 - want).abs().max() < 0.01, (got / 50, want)


def tempered_probs(rbm, beta):
    v = states(5)
    with torch.no_grad():
        x = rbm.hidden_logits(v)
        log_f = beta * (v @ rbm.visible_bias) + torch.nn.functional.softplus(beta * x).sum(-1)
    return torch.softmax(log_f, 0)


def test_a_tempering_swap_leaves_the_joint_over_temperatures_invariant():
    # Every pair of states (v_1, v_2) at betas (1, 0.4): the swap move's transition matrix, built
    # from the code's acceptance ratios, keeps p_1(v_1) p_0.4(v_2) invariant (Eq. 1.17).
    rbm = rbm_5x4(scale=2.0, seed=2)
    betas = torch.tensor([1.0, 0.4], dtype=torch.float64)
    v = states(5)
    pairs = torch.stack(
        [v.repeat_interleave(32, 0), v.repeat(32, 1)], dim=0
    )  # (2, 1024, 5): pair s = (a, b) with a = s // 32, b = s % 32
    with torch.no_grad():
        inputs = pairs @ rbm.weight + rbm.hidden_bias
        _, ratio = swap_log_ratio(rbm, pairs, inputs, betas, 0)
    accept = ratio[0].exp().clamp(max=1.0)
    index = torch.arange(1024)
    swapped = (index % 32) * 32 + index // 32
    matrix = torch.zeros(1024, 1024, dtype=torch.float64)
    matrix[index, swapped] += accept
    matrix[index, index] += 1 - accept
    joint = torch.outer(tempered_probs(rbm, 1.0), tempered_probs(rbm, 0.4)).flatten()
    torch.testing.assert_close(joint @ matrix, joint)
    assert accept.min() < 0.5  # not a trivial move
    # and swap_neighbours exchanges a pair with that probability
    s = 3 * 32 + 20
    copies = pairs[:, s : s + 1].expand(2, 40000, 5).clone()
    with torch.no_grad():
        copies_inputs = copies @ rbm.weight + rbm.hidden_bias
        swap_neighbours(rbm, copies, copies_inputs, betas, 0, torch.Generator().manual_seed(0))
    rate = (copies[0] == pairs[1, s]).all(-1).double().mean()
    se = math.sqrt(accept[s] * (1 - accept[s]) / 40000) + 1e-9
    assert abs(rate - accept[s]) < 5 * se


def test_parallel_tempering_chains_sample_each_temperature():
    rbm = rbm_5x4(scale=2.0, seed=3)
    betas = torch.tensor([1.0, 0.75, 0.5, 0.25], dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    visible = (torch.rand(4, 6000, 5, generator=g, dtype=torch.float64) < 0.5).double()
    with torch.no_grad():
        visible, _ = tempered_sweeps(rbm, visible, betas, 60, g)
    codes = (visible * torch.tensor([16.0, 8.0, 4.0, 2.0, 1.0], dtype=torch.float64)).sum(-1)
    for m, beta in enumerate(betas.tolist()):
        assert torch.equal(visible[m], visible[m].round())
        counts = torch.bincount(codes[m].long(), minlength=32).double()
        expected = tempered_probs(rbm, beta) * 6000
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < CHI2_31_999, (beta, chi2)


def test_pt_objective_resumes_its_chains_exactly():
    rbm = rbm_5x4()
    batch = (torch.rand(10, 5, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    first = ParallelTempering(temperatures=3, min_beta=0.5, chains=6)
    g = torch.Generator().manual_seed(0)
    first.step(rbm, batch, g)
    saved, state = first.state_tensors(), g.get_state()
    first.step(rbm, batch, g)
    second = ParallelTempering(temperatures=3, min_beta=0.5, chains=6)
    second.load_state_tensors({k: v.clone() for k, v in saved.items()})
    g.set_state(state)
    second.step(rbm, batch, g)
    assert saved["chain_visible"].shape == (3, 6, 5)
    assert torch.equal(first.chain_visible, second.chain_visible)


def test_the_assignment_recipe_is_the_original_one():
    config = TrainConfig.defaults_for("rbm", recipe="assignment")
    assert (config.method, config.k, config.learning_rate, config.batch_size, config.epochs) == (
        "cd",
        30,
        0.1,
        64,
        3,
    )
    assert (config.momentum, config.weight_decay, config.binarize) == (0.0, 0.0, "none")
    rbm = RBM(784, 500)
    objective = make_objective(rbm, config)
    objective.setup(rbm, torch.rand(20, 784), torch.Generator().manual_seed(0))
    assert rbm.weight.abs().max() <= 0.2 and abs(rbm.weight.std().item() - 0.088) < 0.005
    assert torch.all(rbm.visible_bias == 0.1) and torch.all(rbm.hidden_bias == 0.1)
    assert set(RECIPES) >= {"assignment", "cd-rising", "pcd-chains", "pcd", "pt"}


def test_the_pcd_recipe_keeps_one_persistent_chain_per_batch_row_and_its_momentum():
    config = TrainConfig.defaults_for("rbm", recipe="pcd", batch_size=7)
    assert (config.method, config.k, config.k_final, config.learning_rate) == ("pcd", 1, 0, 0.01)
    # momentum 0.5 at every epoch: the switch to the guide's 0.9 is what the recipe leaves out
    assert {config.momentum_at(epoch) for epoch in range(20)} == {0.5}
    assert [config.learning_rate_at(e) for e in (0, 5)] == [0.01, 0.01 * (1 - 5 / 20)]
    rbm = rbm_5x4(seed=2)
    objective = make_objective(rbm, config)
    batch = torch.ones(7, 5, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    objective.step(rbm, batch, g)
    assert objective.chain_hidden.shape == (7, 4)  # the chains: as many as the batch's rows
    assert make_objective(rbm, config.replace(chains=3)).chains == 3
