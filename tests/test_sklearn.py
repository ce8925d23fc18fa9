"""rbmvae.sklearn: scikit-learn's own estimator checks, the drop-in's behaviour next to
scikit-learn's BernoulliRBM, a pipeline on the 8x8 digits, and checkpoints shared with the rest of
the package."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

import scipy.sparse as sp  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import BernoulliRBM as SklearnRBM  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import rbmvae  # noqa: E402
from rbmvae.likelihood import iwae_log_likelihood, log_partition_exact  # noqa: E402
from rbmvae.sklearn import VAE, BernoulliRBM  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The models here are tiny: one thread is faster than two, and immune to a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


CHECKED = [
    BernoulliRBM(n_components=4, n_iter=2),
    VAE(n_components=2, n_hidden=8, n_iter=2, batch_size=16, iwae_k=8),
]


def expected_failures(estimator) -> dict[str, str]:
    """The checks that cannot pass, each with its reason (the estimators' own lists)."""
    return estimator._EXPECTED_FAILED_CHECKS


if "expected_failed_checks" in inspect.signature(parametrize_with_checks).parameters:
    sklearn_checks = parametrize_with_checks(CHECKED, expected_failed_checks=expected_failures)
else:  # scikit-learn < 1.6 reads the same list from the `_xfail_checks` tag
    sklearn_checks = parametrize_with_checks(CHECKED)


@sklearn_checks
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    """The 8x8 digits scaled to [0, 1] (1,797 rows, 64 features) and their labels."""
    data = load_digits()
    return data.data / 16.0, data.target


@pytest.fixture(scope="module")
def binary_digits(digits):
    return (digits[0] > 0.5).astype(np.float64)


# -- packaging ------------------------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_rbmvae_does_not_import_sklearn():
    result = _python("import sys, rbmvae; print('sklearn' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_import_without_sklearn_says_how_to_install():
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "try:\n    import rbmvae.sklearn\nexcept ImportError as e:\n    print(e)\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert "pip install 'rbmvae[sklearn]'" in result.stdout


# -- the drop-in next to scikit-learn's BernoulliRBM --------------------------------------------


def test_same_parameters_and_defaults_as_sklearn():
    ours = BernoulliRBM().get_params()
    theirs = SklearnRBM().get_params()
    assert {name: ours[name] for name in theirs} == theirs
    extras = {name: ours[name] for name in set(ours) - set(theirs)}
    assert extras["method"] == "pcd" and extras["k"] == 1
    assert extras["momentum"] == 0.0 and extras["weight_decay"] == 0.0
    assert extras["lr_schedule"] == "constant" and extras["binarize"] == "none"


def test_initial_state_is_sklearns(digits):
    X = digits[0]
    ours = BernoulliRBM(n_components=16, n_iter=0, random_state=3).fit(X)
    theirs = SklearnRBM(n_components=16, n_iter=0, random_state=3).fit(X)
    for name in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name))
    assert ours.components_.flags.f_contiguous
    np.testing.assert_allclose(ours.transform(X[:50]), theirs.transform(X[:50]), rtol=1e-12)
    np.testing.assert_array_equal(ours.get_feature_names_out(), theirs.get_feature_names_out())


def test_training_matches_sklearn_in_quality(digits, binary_digits):
    """Same settings, same data: the pseudo-likelihood after training is as good as sklearn's."""
    X = binary_digits
    ours = BernoulliRBM(n_components=32, n_iter=5, random_state=0).fit(X)
    theirs = SklearnRBM(n_components=32, n_iter=5, random_state=0).fit(X)
    untrained = BernoulliRBM(n_components=32, n_iter=0, random_state=0).fit(X)
    pll = {name: m.score_samples(X).mean() for name, m in [("ours", ours), ("theirs", theirs)]}
    assert pll["ours"] > untrained.score_samples(X).mean() + 10
    assert abs(pll["ours"] - pll["theirs"]) < 3.0, pll
    assert ours.h_samples_.shape == (10, 32)
    assert set(np.unique(ours.h_samples_)) <= {0.0, 1.0}


def test_dtypes_are_kept(digits):
    X = digits[0][:200]
    for dtype in (np.float32, np.float64):
        rbm = BernoulliRBM(n_components=8, n_iter=1, random_state=0).fit(X.astype(dtype))
        assert rbm.components_.dtype == dtype and rbm.h_samples_.dtype == dtype
        assert rbm.transform(X.astype(dtype)).dtype == dtype
        vae = VAE(n_hidden=8, n_iter=1, random_state=0).fit(X.astype(dtype))
        assert vae.transform(X.astype(dtype)).dtype == dtype
        assert vae.inverse_transform(np.zeros((2, 2), dtype)).dtype == dtype


def test_sparse_input_gives_the_dense_result(binary_digits):
    X = binary_digits[:300]
    dense = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(X)
    sparse = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse.components_, dense.components_, rtol=1e-10)
    np.testing.assert_allclose(sparse.transform(sp.csc_matrix(X)), dense.transform(X))
    np.testing.assert_allclose(sparse.score_samples(sp.csr_matrix(X)), dense.score_samples(X))


def test_random_state_int_instance_and_none(digits):
    X = digits[0][:200]
    first = BernoulliRBM(n_components=8, n_iter=1, random_state=5).fit(X)
    again = BernoulliRBM(n_components=8, n_iter=1, random_state=5).fit(X)
    np.testing.assert_array_equal(first.components_, again.components_)
    state = np.random.RandomState(5)
    a = BernoulliRBM(n_components=8, n_iter=1, random_state=state).fit(X)
    b = BernoulliRBM(n_components=8, n_iter=1, random_state=state).fit(X)
    assert not np.array_equal(a.components_, b.components_)  # the instance moved on
    BernoulliRBM(n_components=8, n_iter=1).fit(X).transform(X)


def test_partial_fit_is_one_pass_keeping_the_chains(binary_digits):
    X = binary_digits
    rbm = BernoulliRBM(n_components=16, batch_size=10, random_state=0)
    for start in range(0, 300, 100):
        before = rbm.h_samples_.copy() if start else None
        rbm.partial_fit(X[start : start + 100])
        assert rbm.h_samples_.shape == (10, 16)
        if before is not None:
            assert not np.array_equal(before, rbm.h_samples_)
    assert [record["epoch"] for record in rbm.history_] == [1, 2, 3]
    assert rbm.n_features_in_ == 64
    with pytest.raises(ValueError, match="features"):
        rbm.partial_fit(X[:10, :30])


def test_score_samples_is_the_stochastic_pseudo_likelihood(binary_digits):
    """Averaged over rows, the one-flip estimate matches the exact pseudo-likelihood
    ``sum_i log p(v_i | v_-i)`` (Eq. 4.1), computed here feature by feature."""
    X = binary_digits[:, :12]
    rbm = BernoulliRBM(n_components=6, n_iter=3, random_state=0).fit(X)
    model = rbm.to_model().double()
    v = torch.from_numpy(X)
    exact = torch.zeros(len(X), dtype=torch.float64)
    for i in range(X.shape[1]):
        flipped = v.clone()
        flipped[:, i] = 1 - flipped[:, i]
        exact += torch.nn.functional.logsigmoid(model.free_energy(flipped) - model.free_energy(v))
    estimate = np.mean([rbm.set_params(random_state=s).score_samples(X) for s in range(8)])
    assert abs(estimate - exact.mean().item()) < 0.05 * abs(exact.mean().item())
    assert np.array_equal(rbm.score_samples(X), rbm.score_samples(X))  # repeatable for an int


def test_log_likelihood_exact_and_ais(binary_digits):
    X = binary_digits
    rbm = BernoulliRBM(n_components=10, n_iter=3, learning_rate=0.05, random_state=0).fit(X)
    exact = rbm.log_likelihood(X)
    assert exact.method == "exact" and exact.low == exact.mean == exact.high
    model = rbm.to_model()
    with torch.no_grad():
        direct = -model.free_energy(torch.from_numpy(X)) - log_partition_exact(model)
    np.testing.assert_allclose(exact.per_sample, direct.numpy(), rtol=1e-10)
    assert rbm.score(X) == pytest.approx(exact.mean)
    ais = rbm.log_likelihood(X, method="ais", ais_runs=100, ais_betas=2000)
    assert ais.method == "ais" and ais.low <= ais.mean <= ais.high
    assert abs(ais.mean - exact.mean) < 0.2


def test_extras_and_their_validation(binary_digits):
    X = binary_digits[:200]
    rbm = BernoulliRBM(
        n_components=8,
        n_iter=2,
        method="cd",
        k=2,
        momentum=0.5,
        final_momentum=0.9,
        momentum_switch_iter=1,
        weight_decay=1e-4,
        lr_schedule="linear",
        binarize="stochastic",
        init="marginals",
        random_state=0,
    ).fit(X)
    assert [r["learning_rate"] for r in rbm.history_] == [0.1, 0.05]
    for bad in ({"method": "sml"}, {"momentum": 1.5}, {"k": 0}, {"init": "ones"}, {"n_iter": -1}):
        with pytest.raises(ValueError):
            BernoulliRBM(**bad).fit(X)
    with pytest.raises(ValueError):
        VAE(binarize="sometimes").fit(X)


def test_verbose_prints_sklearns_lines(binary_digits, capsys):
    BernoulliRBM(n_components=4, n_iter=2, verbose=1, random_state=0).fit(binary_digits[:100])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("[BernoulliRBM] Iteration 1, pseudo-likelihood")


def test_gibbs_returns_boolean_rows(binary_digits):
    rbm = BernoulliRBM(n_components=8, n_iter=1, random_state=0).fit(binary_digits[:100])
    step = rbm.gibbs(binary_digits[:5])
    assert step.shape == (5, 64) and step.dtype == bool
    assert not np.array_equal(step, rbm.gibbs(binary_digits[:5]))  # random_state_ moves on


def test_pipeline_on_digits(digits):
    """scikit-learn's classic pipeline: RBM features, then logistic regression."""
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    model = Pipeline(
        [
            ("rbm", BernoulliRBM(n_components=64, learning_rate=0.06, n_iter=5, random_state=0)),
            ("logistic", LogisticRegression(C=100.0, max_iter=2000)),
        ]
    )
    accuracy = model.fit(X_train, y_train).score(X_test, y_test)
    assert accuracy > 0.85, accuracy


# -- the VAE --------------------------------------------------------------------------------------


def test_vae_methods(digits):
    X = digits[0][:300]
    vae = VAE(n_components=3, n_hidden=16, n_iter=3, random_state=0, iwae_k=20).fit(X)
    Z = vae.transform(X)
    assert Z.shape == (300, 3)
    assert vae.inverse_transform(Z).shape == (300, 64)
    samples = vae.sample(7)
    assert samples.shape == (7, 64) and samples.min() >= 0 and samples.max() <= 1
    assert set(np.unique(vae.sample(3, binary=True))) <= {0.0, 1.0}
    scores = vae.score_samples(X)
    assert scores.shape == (300,) and np.isfinite(scores).all()
    assert vae.score(X) == pytest.approx(scores.mean())
    assert vae.module_.decoder_output.weight.dtype == torch.float32  # for any input dtype
    iwae = iwae_log_likelihood(vae.module_, torch.from_numpy(X).float(), k=2000, per_image=True)
    assert abs(vae.score(X) - iwae.mean().item()) < 1.0
    assert list(vae.get_feature_names_out()) == ["vae0", "vae1", "vae2"]


# -- checkpoints shared with the CLI and the Python API -------------------------------------------


def test_rbm_checkpoint_round_trip(tmp_path, digits):
    X = digits[0][:200]
    rbm = BernoulliRBM(n_components=8, n_iter=2, learning_rate=0.05, random_state=0).fit(X)
    rbm.feature_names_in_ = np.array([f"pixel{i}" for i in range(64)], dtype=object)
    rbm.save(tmp_path / "rbm")
    del rbm.feature_names_in_  # fitted on an array: the loaded one is compared on arrays
    model, meta = rbmvae.load_model(tmp_path / "rbm")
    assert model.kind == "rbm" and meta["sklearn"]["estimator"] == "BernoulliRBM"
    np.testing.assert_allclose(model.weight.detach().numpy().T, rbm.components_, rtol=1e-6)
    loaded = BernoulliRBM.from_checkpoint(tmp_path / "rbm")
    assert loaded.get_params() == rbm.get_params()
    assert list(loaded.feature_names_in_) == [f"pixel{i}" for i in range(64)]
    del loaded.feature_names_in_
    np.testing.assert_allclose(loaded.transform(X), rbm.transform(X), rtol=1e-5)
    assert loaded.log_likelihood(X > 0.5, method="ais", ais_betas=500).method == "ais"
    loaded.partial_fit(X)  # a loaded estimator trains on


def test_vae_checkpoint_round_trip(tmp_path, digits):
    X = digits[0][:200]
    vae = VAE(n_components=2, n_hidden=8, n_iter=2, random_state=0).fit(X)
    vae.save(tmp_path / "vae")
    model, _ = rbmvae.load_model(tmp_path / "vae", kind="vae")
    assert model.n_latent == 2
    loaded = VAE.from_checkpoint(tmp_path / "vae")
    assert loaded.get_params() == vae.get_params()
    np.testing.assert_allclose(loaded.transform(X), vae.transform(X), rtol=1e-5)


def test_estimators_from_models_trained_by_rbmvae_fit(tmp_path, digits):
    X = torch.from_numpy(digits[0][:300]).float()
    labels = torch.zeros(300, dtype=torch.int64)
    data = rbmvae.Dataset("digits", X, labels, X[:50], labels[:50], (8, 8))
    rbm = rbmvae.RBM(n_visible=64, n_hidden=12)
    rbmvae.fit(rbm, data, epochs=2, batch_size=20, out_dir=tmp_path / "rbm", progress=False)
    estimator = BernoulliRBM.from_checkpoint(tmp_path / "rbm")
    assert estimator.n_components == 12 and estimator.batch_size == 20
    assert estimator.n_iter == 2 and estimator.method == "cd" and estimator.init == "marginals"
    with torch.no_grad():
        np.testing.assert_allclose(estimator.transform(X.numpy()), rbm.hidden_probs(X).numpy())
    vae = rbmvae.VAE(n_visible=64, n_hidden=16, n_latent=2)
    rbmvae.fit(vae, data, epochs=1, out_dir=tmp_path / "vae", progress=False)
    with torch.no_grad():
        expected = vae.encode(X)[0].numpy()
    np.testing.assert_allclose(VAE.from_checkpoint(tmp_path / "vae").transform(X.numpy()), expected)
    np.testing.assert_allclose(VAE.from_model(vae).transform(X.numpy()), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_cpu_answer(binary_digits):
    X = binary_digits[:500]
    cpu = BernoulliRBM(n_components=16, n_iter=0, random_state=0).fit(X)
    gpu = clone(cpu).set_params(device="cuda").fit(X)
    np.testing.assert_allclose(gpu.transform(X), cpu.transform(X), rtol=1e-6)
    gpu.set_params(n_iter=2).fit(X)
    assert gpu.log_likelihood(X).mean > cpu.log_likelihood(X).mean
