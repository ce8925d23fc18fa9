"""Missing-pixel masks. A mask is a bool tensor shaped like the images; True marks a missing pixel."""

from __future__ import annotations

import torch

from ..basics.errors import ConfigError

HALVES = ("top", "bottom", "left", "right")


def random_mask(
    n_images: int,
    n_pixels: int,
    fraction: float,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Each image loses exactly ``round(fraction * n_pixels)`` pixels, chosen uniformly at random.

    The choice is independent per image and reproducible from ``generator``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"missing fraction {fraction} is outside [0, 1)")
    n_missing = int(round(fraction * n_pixels))
    keys = torch.rand((n_images, n_pixels), generator=generator, device=device)
    chosen = keys.argsort(dim=1)[:, :n_missing]
    mask = torch.zeros((n_images, n_pixels), dtype=torch.bool, device=device)
    return mask.scatter_(1, chosen, True)


def square_mask(
    n_images: int,
    image_shape: tuple[int, int],
    size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """A ``size`` x ``size`` hole at a uniformly random position in each image."""
    height, width = image_shape
    if not 0 < size <= min(height, width):
        raise ConfigError(f"square hole size {size} must be between 1 and {min(height, width)}")
    top = torch.randint(0, height - size + 1, (n_images, 1, 1), generator=generator, device=device)
    left = torch.randint(0, width - size + 1, (n_images, 1, 1), generator=generator, device=device)
    rows = torch.arange(height, device=device).view(1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, width)
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return inside.reshape(n_images, height * width)


def half_mask(
    n_images: int,
    image_shape: tuple[int, int],
    side: str,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The ``side`` half (top, bottom, left or right) of every image is missing."""
    height, width = image_shape
    rows = torch.arange(height, device=device).view(height, 1).expand(height, width)
    cols = torch.arange(width, device=device).view(1, width).expand(height, width)
    if side == "top":
        missing = rows < height // 2
    elif side == "bottom":
        missing = rows >= height - height // 2
    elif side == "left":
        missing = cols < width // 2
    elif side == "right":
        missing = cols >= width - width // 2
    else:
        raise ConfigError(f"unknown half {side!r}; choose one of {', '.join(HALVES)}")
    return missing.reshape(1, -1).expand(n_images, -1).clone()


def make_mask(
    spec: str | float,
    n_images: int,
    image_shape: tuple[int, int],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """A mask from a short spec: a fraction (``0.5``), ``square:12``, or ``half:top``."""
    text = str(spec)
    if text.startswith("square:"):
        return square_mask(n_images, image_shape, int(text.split(":", 1)[1]), generator, device)
    if text.startswith("half:"):
        return half_mask(n_images, image_shape, text.split(":", 1)[1], device)
    try:
        fraction = float(text)
    except ValueError:
        raise ConfigError(
            f"unknown mask {text!r}; give a fraction in [0, 1), square:SIZE or half:SIDE"
        ) from None
    n_pixels = image_shape[0] * image_shape[1]
    return random_mask(n_images, n_pixels, fraction, generator, device)
