"""Each conditional log-likelihood estimator against enumeration on a tiny model (Eqs. 5.5-5.8)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rbmvae.basics.errors import ConfigError
from rbmvae.likelihood.conditional import (
    knn_conditional,
    rbm_conditional_ais,
    rbm_conditional_exact,
    rbm_conditional_exact_masks,
    vae_conditional_is,
)
from rbmvae.models.rbm import RBM
from rbmvae.models.vae import VAE


def _tiny_rbm(n_visible: int, n_hidden: int, seed: int = 0) -> RBM:
    generator = torch.Generator().manual_seed(seed)
    rbm = RBM(n_visible, n_hidden)
    with torch.no_grad():
        rbm.weight.copy_(torch.randn(n_visible, n_hidden, generator=generator))
        rbm.visible_bias.copy_(torch.randn(n_visible, generator=generator) * 0.5)
        rbm.hidden_bias.copy_(torch.randn(n_hidden, generator=generator) * 0.5)
    return rbm


def _data(n: int, d: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, d, generator=generator) < 0.5).float()
    mask = torch.rand(n, d, generator=generator) < 0.5
    mask[0] = False  # nothing missing: log p = 0
    mask[1] = True  # everything missing: log p(v)
    return x, mask


def _rbm_brute_force(rbm: RBM, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log p(v_m | v_o) = -F(v) - logsumexp over every completion of -F (Eq. 5.1)."""
    values = []
    for row, missing in zip(x, mask, strict=True):
        index = missing.nonzero().flatten()
        completions = row.repeat(2 ** len(index), 1)
        for c, bits in enumerate(itertools.product((0.0, 1.0), repeat=len(index))):
            completions[c, index] = torch.tensor(bits)
        minus_free = -rbm.free_energy(completions.double()).double()
        values.append(-rbm.free_energy(row.double().unsqueeze(0))[0] - minus_free.logsumexp(0))
    return torch.stack(values).double()


def test_rbm_exact_matches_enumerating_the_missing_pixels():
    rbm = _tiny_rbm(7, 4).double()
    x, mask = _data(12, 7)
    result = rbm_conditional_exact(rbm, x.double(), mask, batch_size=4)
    expected = _rbm_brute_force(rbm, x, mask)
    torch.testing.assert_close(result.values, expected, atol=1e-9, rtol=0)
    assert result.values[0] == pytest.approx(0.0, abs=1e-9)


def test_rbm_exact_under_several_masks_is_one_enumeration_per_mask():
    rbm = _tiny_rbm(7, 4).double()
    x, first = _data(6, 7, seed=2)
    masks = [first, ~first, torch.rand(6, 7, generator=torch.Generator().manual_seed(3)) < 0.3]
    together = rbm_conditional_exact_masks(rbm, x.double(), masks)
    assert len(together) == len(masks)
    for mask, estimate in zip(masks, together, strict=True):
        torch.testing.assert_close(
            estimate.values, _rbm_brute_force(rbm, x, mask), atol=1e-9, rtol=0
        )
        assert bool((estimate.std_errors == 0).all()) and estimate.method.startswith("exact")
    assert rbm_conditional_exact_masks(rbm, x.double(), []) == []


def test_rbm_ais_agrees_with_enumeration_within_its_error():
    torch.manual_seed(0)
    rbm = _tiny_rbm(9, 5, seed=3)
    x, mask = _data(10, 9, seed=4)
    base = torch.zeros(9)
    generator = torch.Generator().manual_seed(5)
    result = rbm_conditional_ais(rbm, x, mask, base, n_runs=200, n_betas=300, generator=generator)
    expected = _rbm_brute_force(rbm.double(), x, mask)
    difference = (result.values - expected).abs()
    assert bool((difference < 0.02 + 4 * result.std_errors).all()), difference
    assert result.effective_samples > 50


def _tiny_vae(seed: int = 0) -> VAE:
    vae = VAE(n_visible=8, n_hidden=16, n_latent=2)
    generator = torch.Generator().manual_seed(seed)
    vae.reset_parameters(generator=generator)
    with torch.no_grad():
        vae.decoder_output.weight.mul_(3.0)  # a decoder that depends clearly on z
    return vae


def _vae_quadrature(vae: VAE, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """log p(x_keep) per image on a 2-D grid over [-6, 6]^2 (Eq. 3.8 with a masked decoder)."""
    axis = torch.linspace(-6, 6, 241, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    vae = vae.double()
    logits = vae.decode_logits(grid)  # (G, D)
    log_px = x.double().unsqueeze(1) * logits - torch.nn.functional.softplus(logits)
    log_px = (log_px * keep.double().unsqueeze(1)).sum(-1)  # (n, G)
    prior = -0.5 * (grid.pow(2).sum(-1) + 2 * math.log(2 * math.pi))
    return torch.logsumexp(log_px + prior, 1) + 2 * math.log(float(axis[1] - axis[0]))


def test_vae_importance_sampling_agrees_with_quadrature():
    vae = _tiny_vae()
    x, mask = _data(8, 8, seed=6)
    expected = _vae_quadrature(vae, x, torch.ones_like(mask)) - _vae_quadrature(vae, x, ~mask)
    mean_fill = torch.where(mask, torch.full_like(x, 0.5), x)
    generator = torch.Generator().manual_seed(7)
    result = vae_conditional_is(vae.float(), x, mask, mean_fill, k=4000, generator=generator)
    difference = (result.values - expected).abs()
    assert bool((difference < 0.03 + 4 * result.std_errors).all()), (difference, result.std_errors)
    assert float(result.values[0]) == pytest.approx(0.0, abs=1e-9)


def test_knn_mixture_matches_its_formula():
    generator = torch.Generator().manual_seed(8)
    train = torch.rand(30, 6, generator=generator)
    x, mask = _data(5, 6, seed=9)
    mask[1, :2] = False  # every distance would tie with all pixels missing
    result = knn_conditional(x, mask, train, k=3, smoothing=0.1)
    for row, missing, value in zip(x, mask, result.values, strict=True):
        distance = ((train - row).pow(2) * (~missing)).sum(1)
        nearest = distance.argsort()[:3]
        p = 0.1 + 0.8 * train[nearest].double()
        likelihood = torch.where(row.bool(), p, 1 - p)[:, missing].prod(1).mean()
        assert float(value) == pytest.approx(math.log(float(likelihood)), abs=1e-9)


def test_grey_images_are_refused():
    rbm = _tiny_rbm(4, 2)
    with pytest.raises(ConfigError, match="binary"):
        rbm_conditional_exact(rbm, torch.full((1, 4), 0.3), torch.ones(1, 4, dtype=torch.bool))


def test_inpainting_table_has_the_conditional_column_acceptance_and_halves(sample_data, tmp_path):
    from rbmvae.evaluation import scoring

    data = sample_data.subset(500, 30)
    rbm = RBM(784, 12)
    rbm.reset_parameters(data.train_images.mean(0), torch.Generator().manual_seed(0))
    vae = VAE(784, 16, 2)
    vae.reset_parameters(torch.Generator().manual_seed(0))
    classifier = scoring.evaluation_classifier(data, cache_dir=tmp_path)
    table = scoring.inpainting_table(
        {"rbm": rbm, "vae": vae},
        data,
        fractions=(0.5,),
        n=30,
        steps=4,
        classifier=classifier,
        halves=("top",),
        conditional_images=10,
        conditional={"k": 20},
        stability=True,
    )
    rows = {(r["method"], r["mask"]): r for r in table.rows}
    assert {mask for _, mask in rows} == {"50%", "top half"}
    assert rows[("zero fill", "50%")]["conditional"] is None
    for method in ("training-mean fill", "10-NN fill", "rbm", "vae (metropolis)"):
        assert math.isfinite(rows[(method, "top half")]["conditional"]), method
    assert 0 <= rows[("vae (metropolis)", "50%")]["acceptance"] <= 1
    assert "mse_doubled" in rows[("rbm", "50%")]
    # the k-NN mixture beats the independent pixel means on digits
    knn, mean = rows[("10-NN fill", "50%")], rows[("training-mean fill", "50%")]
    assert knn["conditional"] > mean["conditional"]
    assert "log p(x_m|x_o)" in table.format()
