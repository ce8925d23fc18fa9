import pytest
import torch

from rbmvae.basics.errors import ConfigError
from rbmvae.data.masks import half_mask, make_mask, random_mask, square_mask


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.5, 0.8, 0.999])
def test_random_mask_removes_exact_count(fraction):
    mask = random_mask(50, 784, fraction, torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.shape == (50, 784)
    assert (mask.sum(1) == round(fraction * 784)).all()


def test_random_mask_differs_between_images_and_covers_all_pixels():
    mask = random_mask(200, 784, 0.5, torch.Generator().manual_seed(0))
    assert len({tuple(row.nonzero().flatten().tolist()) for row in mask}) == 200
    # not restricted to a corner (the original assignment only removed pixels among the first 64)
    per_pixel = mask.float().mean(0)
    assert per_pixel[64:].mean() > 0.4 and per_pixel.min() > 0.2


def test_random_mask_is_reproducible():
    a = random_mask(10, 784, 0.3, torch.Generator().manual_seed(7))
    b = random_mask(10, 784, 0.3, torch.Generator().manual_seed(7))
    c = random_mask(10, 784, 0.3, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_random_mask_refuses_bad_fraction(fraction):
    with pytest.raises(ConfigError, match="outside \\[0, 1\\)"):
        random_mask(1, 784, fraction)


def test_square_mask():
    mask = square_mask(30, (28, 28), 10, torch.Generator().manual_seed(0))
    assert (mask.sum(1) == 100).all()
    grid = mask.view(30, 28, 28)
    for image in grid:
        rows = image.any(1).nonzero().flatten()
        cols = image.any(0).nonzero().flatten()
        assert rows.max() - rows.min() == 9 and cols.max() - cols.min() == 9
    assert len({tuple(m.nonzero().flatten().tolist()) for m in mask}) > 1
    with pytest.raises(ConfigError):
        square_mask(1, (28, 28), 29)


@pytest.mark.parametrize(
    ("side", "region"),
    [
        ("top", (slice(0, 14), slice(None))),
        ("bottom", (slice(14, 28), slice(None))),
        ("left", (slice(None), slice(0, 14))),
        ("right", (slice(None), slice(14, 28))),
    ],
)
def test_half_mask(side, region):
    mask = half_mask(3, (28, 28), side).view(3, 28, 28)
    expected = torch.zeros(28, 28, dtype=torch.bool)
    expected[region] = True
    assert all(torch.equal(m, expected) for m in mask)


def test_make_mask_specs():
    g = torch.Generator().manual_seed(0)
    assert make_mask("0.5", 4, (28, 28), g).sum().item() == 4 * 392
    assert make_mask("square:5", 4, (28, 28), g).sum().item() == 4 * 25
    assert make_mask("half:left", 4, (28, 28)).sum().item() == 4 * 392
    with pytest.raises(ConfigError):
        make_mask("most", 4, (28, 28))
