import itertools

import pytest
import torch

import rbmvae
from rbmvae.basics.errors import ConfigError
from rbmvae.data.masks import random_mask
from rbmvae.evaluation.scoring import missing_pixel_errors
from rbmvae.models import RBM
from rbmvae.samplers.inpainting import clamped_gibbs, inpaint

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


def _copying_rbm(n: int = 4, strength: float = 20.0) -> RBM:
    """An RBM whose sweep copies its state: h_j = v_j and v_i = h_i with certainty (to ~e^-10)."""
    rbm = RBM(n, n)
    with torch.no_grad():
        rbm.weight.copy_(torch.eye(n) * strength)
        rbm.hidden_bias.fill_(-strength / 2)
        rbm.visible_bias.fill_(-strength / 2)
    return rbm


def test_each_image_averages_its_own_chains_from_their_own_starts():
    # one sweep of the copying RBM returns its start, so the estimate of each missing pixel is the
    # mean of that image's per-chain starts: a mix-up of images and chains changes it
    rbm = _copying_rbm()
    images = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    mask = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 1, 1]], dtype=torch.bool)
    starts = torch.tensor(  # (N = 3, chains = 4, D = 4)
        [
            [[0, 1, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]],
            [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
            [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 0], [0, 0, 0, 1]],
        ],
        dtype=torch.float32,
    )
    g = torch.Generator().manual_seed(0)
    result = inpaint(
        rbm,
        images,
        mask,
        steps=1,
        average_last=1,
        fill=starts,
        chains=4,
        generator=g,
        full_result=True,
    )
    expected = torch.where(mask, starts.mean(1), images)
    torch.testing.assert_close(result.images, expected, atol=1e-3, rtol=0)
    assert result.states.shape == (3, 4, 4)
    observed = ~mask.unsqueeze(1).expand(3, 4, 4)  # every chain keeps its image's observed pixels
    assert torch.equal(result.states[observed], images.unsqueeze(1).expand(3, 4, 4)[observed])
    # a per-image fill is shared by that image's chains
    shared = inpaint(rbm, images, mask, steps=1, average_last=1, fill=starts[:, 0], chains=4)
    torch.testing.assert_close(shared, torch.where(mask, starts[:, 0], images), atol=1e-3, rtol=0)


def test_many_chains_find_the_conditional_one_chain_misses():
    # one hidden unit couples the five missing pixels: "all on" and "all off" are about equally
    # likely and a sweep leaves either with probability ~e^-20, so one chain reports the mode it
    # fell into; the mean of many chains reaches the exact p(v_i = 1 | v_o) (enumeration, Eq. 5.1)
    rbm = RBM(6, 1)
    with torch.no_grad():
        rbm.weight.copy_(torch.tensor([[0.0], [8.0], [8.0], [8.0], [8.0], [8.0]]))
        rbm.visible_bias.fill_(-4.0)
        rbm.hidden_bias.fill_(-20.0)
    image = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    missing = torch.tensor([[False, True, True, True, True, True]])
    completions = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)))
    full = torch.cat([torch.ones(32, 1), completions], 1)
    with torch.no_grad():
        exact = torch.softmax(-rbm.free_energy(full), 0) @ completions
    assert ((exact > 0.3) & (exact < 0.7)).all(), exact  # the two modes share the mass
    g = torch.Generator().manual_seed(1)
    many = inpaint(rbm, image, missing, steps=20, fill=0.5, chains=2000, generator=g)
    torch.testing.assert_close(many[0, 1:], exact, atol=0.04, rtol=0)
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        one = inpaint(rbm, image, missing, steps=20, fill=0.5, generator=g)
        assert (one[0, 1:] - exact).abs().min() > 0.4, (one, exact)


def test_chain_argument_checks():
    rbm = _copying_rbm()
    images, mask = torch.zeros(2, 4), torch.ones(2, 4, dtype=torch.bool)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="chains must be a positive integer"):
            inpaint(rbm, images, mask, chains=bad)
    with pytest.raises(ConfigError, match=r"per-chain fill must have shape \(2, 3, 4\)"):
        inpaint(rbm, images, mask, chains=3, fill=torch.zeros(2, 2, 4))
