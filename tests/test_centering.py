"""The centered gradient (docs/derivation.md, s. 1.13, Eqs. 1.18-1.19) against autograd through
the centered parameterization of a tiny RBM, whose log-likelihood is exact by enumeration."""

import itertools
import json

import pytest
import torch

import rbmvae
from rbmvae.basics.errors import ConfigError
from rbmvae.data import Dataset
from rbmvae.models import RBM
from rbmvae.study.cache import train_or_reuse
from rbmvae.study.settings import ModelSpec
from rbmvae.training import fit, make_objective
from rbmvae.training.checkpoint import META_FILE, load_training_state, save_training_state
from rbmvae.training.config import TrainConfig
from rbmvae.training.objectives import ContrastiveDivergence, ParallelTempering
from rbmvae.training.objectives.rbm import CENTERING_RATE, centered_gradients


def states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def exact_log_likelihood(weight, visible_bias, hidden_bias, data):
    """Mean log p(v) of ``data`` (N, D) under the RBM (W, b, c), Z by enumerating v (Eq. 3.1)."""

    def log_f(v):
        return v @ visible_bias + torch.nn.functional.softplus(v @ weight + hidden_bias).sum(-1)

    return log_f(data).mean() - torch.logsumexp(log_f(states(weight.shape[0])), 0)


def test_the_centered_update_is_the_gradient_in_the_centered_parameters():
    g = torch.Generator().manual_seed(3)
    n_visible, n_hidden = 5, 3
    weight = torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64)
    visible_bias = torch.randn(n_visible, generator=g, dtype=torch.float64) * 0.5
    hidden_bias = torch.randn(n_hidden, generator=g, dtype=torch.float64) * 0.5
    mu = torch.rand(n_visible, generator=g, dtype=torch.float64)
    lam = torch.rand(n_hidden, generator=g, dtype=torch.float64)
    data = (torch.rand(40, n_visible, generator=g) < 0.6).double()

    # the ordinary gradient of the objective (minus the log-likelihood), Eqs. 1.11-1.12
    plain = [t.clone().requires_grad_() for t in (weight, visible_bias, hidden_bias)]
    ordinary = torch.autograd.grad(-exact_log_likelihood(*plain, data), plain)

    # the same model in centered parameters: E = -(v - mu)' W (h - lam) - (v - mu)' b~ - (h - lam)' c~
    centered = [
        weight.clone().requires_grad_(),
        (visible_bias + weight @ lam).requires_grad_(),
        (hidden_bias + weight.t() @ mu).requires_grad_(),
    ]
    w_c, b_c, c_c = centered
    as_ordinary = (w_c, b_c - w_c @ lam, c_c - w_c.t() @ mu)
    assert torch.allclose(as_ordinary[1], visible_bias) and torch.allclose(
        as_ordinary[2], hidden_bias
    )
    d_w, d_b, d_c = torch.autograd.grad(-exact_log_likelihood(*as_ordinary, data), centered)
    # a gradient step on the centered parameters, written as the change of W, b and c
    expected = (d_w, d_b - d_w @ lam, d_c - d_w.t() @ mu)

    got = centered_gradients(*ordinary, mu, lam)
    for g_got, g_want in zip(got, expected, strict=True):
        assert torch.allclose(g_got, g_want, atol=1e-10), (g_got, g_want)
    # and it is not the ordinary gradient (the test would pass for an identity otherwise)
    assert (got[1] - ordinary[1]).abs().max() > 0.05
    assert (got[2] - ordinary[2]).abs().max() > 0.05
    # with zero offsets it is
    zero = centered_gradients(*ordinary, torch.zeros_like(mu), torch.zeros_like(lam))
    for g_got, g_want in zip(zero, ordinary, strict=True):
        assert torch.allclose(g_got, g_want)


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_the_objective_applies_the_centered_gradient_with_a_moving_hidden_offset(method):
    torch.manual_seed(0)
    images = torch.rand(30, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    batch = (images[:10] > 0.5).double()

    def run(centering):
        rbm = RBM(6, 4).double()
        objective = ContrastiveDivergence(method, k=2, centering=centering)
        g = torch.Generator().manual_seed(0)
        objective.setup(rbm, images, g)
        g = torch.Generator().manual_seed(5)
        loss = objective.step(rbm, batch, g)
        grads = [p.grad.clone() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]
        return rbm, objective, loss, grads

    rbm, plain_objective, plain_loss, plain = run(False)
    _, objective, loss, centered = run(True)
    assert set(plain_objective.state_tensors()) <= {"chain_hidden"}
    offsets = objective.offsets
    assert torch.allclose(offsets["visible_offset"], images.mean(0))
    data_means = rbm.hidden_probs(batch).mean(0)
    want_lam = 0.5 + CENTERING_RATE * (data_means - 0.5)
    assert torch.allclose(offsets["hidden_offset"], want_lam)
    want = centered_gradients(*plain, offsets["visible_offset"], offsets["hidden_offset"])
    for got, expected in zip(centered, want, strict=True):
        assert torch.allclose(got, expected)
    assert torch.allclose(loss, plain_loss)  # the objective itself (Eq. 1.10) is unchanged
    assert set(objective.state_tensors()) >= {"visible_offset", "hidden_offset"}


def tiny_data():
    train = torch.rand(200, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(200, dtype=torch.long)
    return Dataset("tiny", train, labels, train[:50], labels[:50], (4, 4))


def test_centered_training_resumes_bit_identically(tmp_path):
    data = tiny_data()
    config = TrainConfig.defaults_for(
        "rbm", epochs=3, batch_size=20, centering=True, monitor_size=50, lr_schedule="constant"
    )
    whole = RBM(16, 5)
    fit(whole, data, config, progress=False)
    part = RBM(16, 5)
    fit(part, data, config.replace(epochs=2), out_dir=tmp_path, progress=False)
    resumed = RBM(16, 5)
    fit(resumed, data, config, out_dir=tmp_path, resume=True, progress=False)
    assert torch.equal(whole.weight, resumed.weight)
    assert torch.equal(whole.hidden_bias, resumed.hidden_bias)
    plain = RBM(16, 5)
    fit(plain, data, config.replace(centering=False), progress=False)
    assert not torch.allclose(plain.weight, whole.weight)


def test_centering_is_a_setting_of_every_rbm_method():
    for method in ("cd", "pcd", "pt"):
        config = TrainConfig.defaults_for("rbm", method=method, centering=True)
        objective = make_objective(RBM(6, 3), config)
        assert objective.centering
    assert isinstance(make_objective(RBM(6, 3), config), ParallelTempering)
    with pytest.raises(ConfigError, match="centering must be true or false"):
        TrainConfig.defaults_for("rbm", centering="yes")
    # a stored config written before the setting existed means the same training
    stored = TrainConfig.defaults_for("rbm").to_dict()
    del stored["centering"]
    assert TrainConfig.completed(stored) == TrainConfig.defaults_for("rbm").to_dict()


def _forget_centering(stored: dict) -> None:
    del stored["centering"]  # as written before the setting existed


def test_a_model_trained_before_the_setting_existed_is_reused_and_resumed(tmp_path):
    data, spec = tiny_data(), ModelSpec("rbm-h5", "rbm", {"n_hidden": 5})
    config = TrainConfig.defaults_for("rbm", epochs=1, batch_size=20, monitor_size=50)
    directory = tmp_path / spec.name
    assert train_or_reuse(spec, config, data, directory, "cpu", progress=False)[2] == "trained"
    meta = json.loads((directory / META_FILE).read_text())
    _forget_centering(meta["train_config"])
    (directory / META_FILE).write_text(json.dumps(meta))
    assert train_or_reuse(spec, config, data, directory, "cpu", progress=False)[2] == "reused"
    centered = config.replace(centering=True)  # a setting that differs is still told apart
    assert train_or_reuse(spec, centered, data, directory, "cpu", progress=False)[2] == "trained"
    # an older training state resumes under today's settings with the new one at its default
    fit(RBM(16, 5), data, config, out_dir=tmp_path / "run", progress=False)
    tensors, info = load_training_state(tmp_path / "run")
    _forget_centering(info["train_config"])
    save_training_state(tmp_path / "run", tensors, info)
    fit(
        RBM(16, 5),
        data,
        config.replace(epochs=2),
        out_dir=tmp_path / "run",
        resume=True,
        progress=False,
    )
    with pytest.raises(rbmvae.CheckpointError, match="other settings"):
        fit(
            RBM(16, 5),
            data,
            centered.replace(epochs=3),
            out_dir=tmp_path / "run",
            resume=True,
            progress=False,
        )
