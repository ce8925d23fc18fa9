"""Figures: image grids and labelled plots, written atomically as PNG.

Array builders (``tile_images``, ``inpainting_panel``) return NumPy arrays so tests can check
shapes and values; ``save_*`` functions write them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
import torch

from .atomic import write_bytes

MISSING_RGB = (0.25, 0.45, 0.85)  # how a missing pixel is drawn in masked images


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_numpy(images: torch.Tensor | np.ndarray) -> np.ndarray:
    if torch.is_tensor(images):
        images = images.detach().to("cpu", torch.float32).numpy()
    return np.asarray(images, dtype=np.float32)


def tile_images(
    images: torch.Tensor | np.ndarray,
    image_shape: tuple[int, int] = (28, 28),
    n_cols: int | None = None,
    pad: int = 1,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Tile rows of flattened images into one (H, W) or (H, W, 3) array with values in [0, 1]."""
    array = to_numpy(images)
    n = array.shape[0]
    height, width = image_shape
    channels = array.shape[-1] if array.ndim == 3 else None
    array = array.reshape(n, height, width, *(() if channels is None else (channels,)))
    n_cols = n_cols or int(np.ceil(np.sqrt(n)))
    n_rows = int(np.ceil(n / n_cols))
    shape = (n_rows * (height + pad) + pad, n_cols * (width + pad) + pad)
    if channels is not None:
        shape = (*shape, channels)
    canvas = np.full(shape, pad_value, dtype=np.float32)
    for index in range(n):
        r, c = divmod(index, n_cols)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        canvas[top : top + height, left : left + width] = array[index]
    return np.clip(canvas, 0.0, 1.0)


def masked_rgb(images: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray) -> np.ndarray:
    """Grey images as RGB with missing pixels painted in ``MISSING_RGB``: shape (n, D, 3)."""
    grey = to_numpy(images)
    missing = to_numpy(mask).astype(bool)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    rgb[missing] = MISSING_RGB
    return rgb


def grey_rgb(images: torch.Tensor | np.ndarray) -> np.ndarray:
    return np.repeat(to_numpy(images)[..., None], 3, axis=-1)


def png_bytes(array: np.ndarray, scale: int = 3) -> bytes:
    """Encode an array in [0, 1] ((H, W) grey or (H, W, 3) RGB) as PNG, enlarged ``scale`` times."""
    from PIL import Image

    pixels = (np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)
    image = Image.fromarray(pixels)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_array_png(array: np.ndarray, path: str | os.PathLike, scale: int = 3) -> None:
    write_bytes(path, png_bytes(array, scale))


def save_figure(figure, path: str | os.PathLike, dpi: int = 100) -> None:
    """Render a matplotlib figure to PNG and write it atomically; closes the figure."""
    plt = _matplotlib()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    write_bytes(path, buffer.getvalue())


def inpainting_panel(
    original: torch.Tensor,
    mask: torch.Tensor,
    filled: torch.Tensor,
    image_shape: tuple[int, int] = (28, 28),
) -> np.ndarray:
    """Three rows (original, masked, inpainted) of the same digits as one RGB array."""
    n = original.shape[0]
    rows = np.concatenate([grey_rgb(original), masked_rgb(original, mask), grey_rgb(filled)])
    return tile_images(rows, image_shape, n_cols=n)


def save_inpainting_grid(
    original: torch.Tensor,
    mask: torch.Tensor,
    filled: torch.Tensor,
    path: str | os.PathLike,
    image_shape: tuple[int, int] = (28, 28),
    title: str = "",
) -> np.ndarray:
    """Write the labelled original / masked / inpainted grid; returns the image array."""
    plt = _matplotlib()
    panel = inpainting_panel(original, mask, filled, image_shape)
    n = original.shape[0]
    figure, axis = plt.subplots(figsize=(max(4.0, 0.6 * n + 1.2), 2.6))
    axis.imshow(panel, interpolation="nearest")
    height = image_shape[0] + 1
    axis.set_yticks([1 + height * (i + 0.5) for i in range(3)])
    axis.set_yticklabels(["original", "masked", "inpainted"])
    axis.set_xticks([])
    if title:
        axis.set_title(title, fontsize=10)
    save_figure(figure, path)
    return panel


def save_image_grid(
    images: torch.Tensor,
    path: str | os.PathLike,
    image_shape: tuple[int, int] = (28, 28),
    n_cols: int | None = None,
    title: str = "",
) -> np.ndarray:
    """Write a grid of images (with an optional title); returns the tiled array."""
    plt = _matplotlib()
    tiled = tile_images(images, image_shape, n_cols)
    figure, axis = plt.subplots(
        figsize=(max(3.0, tiled.shape[1] / 40), max(3.0, tiled.shape[0] / 40))
    )
    axis.imshow(tiled, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axis.axis("off")
    if title:
        axis.set_title(title, fontsize=10)
    save_figure(figure, path)
    return tiled


def save_training_curves(
    histories: dict[str, Sequence[dict]], metric: str, path: str | os.PathLike, ylabel: str = ""
) -> None:
    """One line per model of ``metric`` against the epoch."""
    plt = _matplotlib()
    figure, axis = plt.subplots(figsize=(5, 3.2))
    for label, history in histories.items():
        epochs = [record["epoch"] for record in history if metric in record]
        values = [record[metric] for record in history if metric in record]
        axis.plot(epochs, values, marker="o", markersize=3, label=label)
    axis.set_xlabel("epoch")
    axis.set_ylabel(ylabel or metric.replace("_", " "))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    save_figure(figure, path)
