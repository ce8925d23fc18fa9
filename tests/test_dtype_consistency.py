"""float32 and float64 copies of the same data, fitted with the same seed, give the same model.

Both scikit-learn estimators and ``rbmvae.fit`` train in float32 whatever the input's dtype, so
the two copies draw the same random numbers and round the same way: the models agree exactly,
and what the estimators return in float64 agrees with the float32 result to float32 rounding
(scikit-learn's own ``BernoulliRBM`` agrees with itself to that rounding too).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import rbmvae
from rbmvae.models import RBM, VAE

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_digits  # noqa: E402

from rbmvae.sklearn import VAE as VAEEstimator  # noqa: E402
from rbmvae.sklearn import BernoulliRBM  # noqa: E402
from rbmvae.sklearn._common import training_data  # noqa: E402

ROUNDING = 1e-5  # float32 rounding of values in [0, 1], with room for a few operations


@pytest.fixture(scope="module")
def digits64() -> np.ndarray:
    """The 8x8 digits scaled to [0, 1] (float64), as scikit-learn's examples use them."""
    return load_digits().data[:600] / 16.0


def assert_same_rbm(a: BernoulliRBM, b: BernoulliRBM) -> None:
    """The float64 estimator ``a`` holds float64 arrays with the values of float32 ``b``'s."""
    for name in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        first, second = getattr(a, name), getattr(b, name)
        assert first.dtype == np.float64 and second.dtype == np.float32, name
        np.testing.assert_array_equal(first, second.astype(np.float64), err_msg=name)


RBM_SETTINGS = [
    {},  # scikit-learn's defaults: PCD-1, batch 10, rate 0.1
    {"init": "marginals", "method": "cd", "k": 2, "momentum": 0.5, "binarize": "stochastic"},
]


@pytest.mark.parametrize("settings", RBM_SETTINGS, ids=["sklearn-defaults", "rbmvae-extras"])
def test_bernoulli_rbm_fits_the_same_model_from_either_dtype(digits64, settings):
    X64, X32 = digits64, digits64.astype(np.float32)
    options = {"n_components": 32, "n_iter": 3, "random_state": 0, **settings}
    a, b = BernoulliRBM(**options).fit(X64), BernoulliRBM(**options).fit(X32)
    assert_same_rbm(a, b)
    hidden64, hidden32 = a.transform(X64), b.transform(X32)
    assert hidden64.dtype == np.float64 and hidden32.dtype == np.float32
    np.testing.assert_allclose(hidden64, hidden32, rtol=0, atol=ROUNDING)
    assert hidden64.std() > 0.02  # a trained model, not a constant one
    np.testing.assert_allclose(a.score_samples(X64), b.score_samples(X32), rtol=1e-4)
    np.testing.assert_array_equal(a.gibbs(X64[:50]), b.gibbs(X32[:50]))  # the same draws


def test_bernoulli_rbm_partial_fit_and_sparse_input_agree_across_dtypes(digits64):
    X64, X32 = digits64, digits64.astype(np.float32)
    a = BernoulliRBM(n_components=16, random_state=1)
    b = BernoulliRBM(n_components=16, random_state=1)
    for start in range(0, 600, 200):
        a.partial_fit(sp.csr_matrix(X64[start : start + 200]))
        b.partial_fit(X32[start : start + 200])
    assert_same_rbm(a, b)
    np.testing.assert_allclose(a.transform(X64), b.transform(X32), rtol=0, atol=ROUNDING)


def test_vae_estimator_fits_the_same_model_from_either_dtype(digits64):
    X64, X32 = digits64, digits64.astype(np.float32)
    options = {"n_components": 2, "n_hidden": 16, "n_iter": 3, "batch_size": 50, "random_state": 0}
    a, b = VAEEstimator(**options).fit(X64), VAEEstimator(**options).fit(X32)
    for (name, first), second in zip(
        a.module_.state_dict().items(), b.module_.state_dict().values(), strict=True
    ):
        assert torch.equal(first, second), name
    codes64, codes32 = a.transform(X64), b.transform(X32)
    assert codes64.dtype == np.float64 and codes32.dtype == np.float32
    np.testing.assert_allclose(codes64, codes32, rtol=0, atol=ROUNDING)
    assert codes64.std() > 0.01
    images = a.inverse_transform(codes64), b.inverse_transform(codes32)
    np.testing.assert_allclose(*images, rtol=0, atol=ROUNDING)


@pytest.mark.parametrize("kind", ["rbm", "vae"])
def test_rbmvae_fit_trains_the_same_model_on_float64_data(kind):
    images = torch.rand(120, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    trained = []
    for data in (images, images.float()):
        model = RBM(20, 6) if kind == "rbm" else VAE(20, 8, 2)
        start = model.weight.clone() if kind == "rbm" else model.decoder_output.weight.clone()
        history = rbmvae.fit(
            model, training_data(data, "x"), epochs=2, batch_size=10, seed=3, progress=False
        )
        trained.append((model.state_dict(), history[-1]["loss"]))
    (first, loss64), (second, loss32) = trained
    for (name, a), b in zip(first.items(), second.values(), strict=True):
        assert a.dtype == torch.float32 and torch.equal(a, b), name
    assert loss64 == loss32
    assert not torch.equal(model.weight if kind == "rbm" else model.decoder_output.weight, start)


def test_a_float64_model_trains_on_float32_data():
    images = torch.rand(60, 12, generator=torch.Generator().manual_seed(1))
    model = RBM(12, 4).double()
    history = rbmvae.fit(model, training_data(images, "x"), epochs=1, batch_size=10, progress=False)
    assert model.weight.dtype == torch.float64 and np.isfinite(history[0]["loss"])
