import itertools

import pytest
import torch

import rbmvae
from rbmvae.errors import ConfigError
from rbmvae.inpainting import clamped_gibbs, inpaint
from rbmvae.masks import random_mask
from rbmvae.models import RBM
from rbmvae.scoring import missing_pixel_errors

# chi-square critical value, 7 degrees of freedom, p = 0.001
CHI2_7_999 = 24.32


def test_clamped_gibbs_samples_the_exact_conditional(tiny_rbm):
    rbm = tiny_rbm(6, 4, scale=1.5, dtype=torch.float32)
    image = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    missing = torch.tensor([False, False, False, True, True, True])
    completions = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
    full = image.repeat(8, 1)
    full[:, 3:] = completions
    exact = torch.softmax(-rbm.free_energy(full), 0)  # p(v_m | v_o) by enumeration (Eq. 5.1)

    n = 20000
    result = clamped_gibbs(
        rbm,
        image.repeat(n, 1),
        missing.repeat(n, 1),
        steps=40,
        average_last=20,
        generator=torch.Generator().manual_seed(0),
    )
    codes = (result.states[:, 3:] * torch.tensor([4.0, 2.0, 1.0])).sum(1).long()
    observed = torch.bincount(codes, minlength=8).float()
    expected = exact * n
    chi2 = ((observed - expected) ** 2 / expected).sum().item()
    assert chi2 < CHI2_7_999, (chi2, observed, expected)
    # the Rao-Blackwellized estimate matches the exact marginals p(v_i = 1 | v_o)
    exact_marginals = exact @ completions
    torch.testing.assert_close(result.images[:, 3:].mean(0), exact_marginals, atol=0.01, rtol=0)


def test_observed_pixels_never_change():
    rbm = RBM(784, 30)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(10, 784, generator=g)
    mask = random_mask(10, 784, 0.6, g)
    result = clamped_gibbs(rbm, images, mask, steps=5, average_last=3, generator=g)
    assert torch.equal(result.images[~mask], images[~mask])
    assert torch.equal(result.states[~mask], images[~mask])
    assert set(result.states[mask].unique().tolist()) <= {0.0, 1.0}
    assert ((result.images[mask] >= 0) & (result.images[mask] <= 1)).all()


def test_argument_checks():
    rbm = RBM(784, 10)
    images = torch.rand(2, 784)
    with pytest.raises(ConfigError, match="mask shape"):
        clamped_gibbs(rbm, images, torch.zeros(2, 100, dtype=torch.bool))
    with pytest.raises(ConfigError, match="average_last"):
        clamped_gibbs(rbm, images, torch.zeros(2, 784, dtype=torch.bool), steps=5, average_last=9)
    with pytest.raises(
        ConfigError, match="unknown sampler 'metropolis' for RBM, 10 hidden; choose one of gibbs"
    ):
        inpaint(rbm, images, torch.zeros(2, 784, dtype=torch.bool), sampler="metropolis")


def test_trained_rbm_beats_mean_fill(trained_rbm, sample_data):
    images = sample_data.test_images[:300]
    mask = random_mask(300, 784, 0.5, torch.Generator().manual_seed(1))
    fill = sample_data.train_images.mean(0)
    filled = inpaint(
        trained_rbm, images, mask, steps=100, fill=fill, generator=torch.Generator().manual_seed(2)
    )
    assert torch.equal(filled[~mask], images[~mask])
    mean_fill = torch.where(mask, fill.expand_as(images), images)
    model_error = missing_pixel_errors(filled, images, mask)[0]  # the MSE of Eq. 4.3
    baseline = missing_pixel_errors(mean_fill, images, mask)[0]
    assert model_error < 0.8 * baseline, (model_error, baseline)


@pytest.fixture(scope="module")
def trained_rbm(sample_data):
    rbm = RBM(784, 100)
    history = rbmvae.fit(rbm, sample_data, epochs=5, progress=False)
    assert history[-1]["reconstruction_error"] < history[0]["reconstruction_error"]
    return rbm
