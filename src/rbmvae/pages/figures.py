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

from ..basics.atomic import write_bytes

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


def save_figure(figure, path: str | os.PathLike, dpi: int = 100) -> None:
    """Render a matplotlib figure to PNG and write it atomically; closes the figure."""
    plt = _matplotlib()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    write_bytes(path, buffer.getvalue())


def _imshow_figure(
    array: np.ndarray,
    path: str | os.PathLike,
    figsize: tuple[float, float],
    title: str = "",
    xticks: tuple[list, list] | None = None,
    yticks: tuple[list, list] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    tick_size: float | None = None,
) -> np.ndarray:
    """The one plotting helper: ``array`` (H, W) grey in [0, 1] or (H, W, 3) RGB, shown with
    optional ``(positions, labels)`` ticks (no ticks when None, no axes when neither is given),
    labels and title, written as PNG to ``path``. Returns ``array``."""
    plt = _matplotlib()
    figure, axis = plt.subplots(figsize=figsize)
    grey = {"cmap": "gray", "vmin": 0, "vmax": 1} if array.ndim == 2 else {}
    axis.imshow(array, interpolation="nearest", **grey)
    if xticks is None and yticks is None:
        axis.axis("off")
    for ticks, set_ticks, set_labels in (
        (xticks, axis.set_xticks, axis.set_xticklabels),
        (yticks, axis.set_yticks, axis.set_yticklabels),
    ):
        set_ticks([] if ticks is None else ticks[0])
        if ticks is not None:
            set_labels(ticks[1], fontsize=tick_size)
    if xlabel:
        axis.set_xlabel(xlabel)
    if ylabel:
        axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title, fontsize=10)
    save_figure(figure, path)
    return array


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
    panel = inpainting_panel(original, mask, filled, image_shape)
    height = image_shape[0] + 1
    rows = ([1 + height * (i + 0.5) for i in range(3)], ["original", "masked", "inpainted"])
    size = (max(4.0, 0.6 * original.shape[0] + 1.2), 2.6)
    return _imshow_figure(panel, path, size, title, xticks=([], []), yticks=rows)


def save_image_grid(
    images: torch.Tensor,
    path: str | os.PathLike,
    image_shape: tuple[int, int] = (28, 28),
    n_cols: int | None = None,
    title: str = "",
) -> np.ndarray:
    """Write a grid of images (with an optional title); returns the tiled array."""
    tiled = tile_images(images, image_shape, n_cols)
    size = (max(3.0, tiled.shape[1] / 40), max(3.0, tiled.shape[0] / 40))
    return _imshow_figure(tiled, path, size, title)


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


# ------------------------------------------------------------------------------------------------
# VAE figures: the latent manifold, traversals of each code unit, and the scatter of codes


def latent_values(value_range: tuple[float, float] = (-3.0, 3.0), n: int = 20) -> torch.Tensor:
    """``n`` evenly spaced code values from ``value_range[0]`` to ``value_range[1]``."""
    from ..basics.errors import ConfigError

    low, high = (float(v) for v in value_range)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ConfigError(
            f"code value range must be two finite numbers LOW < HIGH, got {low} {high}"
        )
    if not isinstance(n, int) or n < 2:
        raise ConfigError(f"need at least 2 values per code unit, got {n}")
    return torch.linspace(low, high, n)


def _decode_grid(vae, codes: torch.Tensor, image_shape: tuple[int, int]) -> torch.Tensor:
    from ..basics.errors import ConfigError

    if image_shape[0] * image_shape[1] != vae.n_visible:
        raise ConfigError(
            f"image shape {tuple(image_shape)} does not match the model's {vae.n_visible} pixels"
        )
    device = vae.decoder_output.weight.device
    with torch.no_grad():
        return vae.decode(codes.to(device=device, dtype=vae.decoder_output.weight.dtype))


def manifold_array(
    vae,
    n: int = 20,
    value_range: tuple[float, float] = (-3.0, 3.0),
    image_shape: tuple[int, int] = (28, 28),
) -> np.ndarray:
    """The decoded n x n grid of a 2-D code as one (n*H, n*W) array with values in [0, 1].

    Column c shows ``z1 = values[c]`` (left to right, increasing); row r shows
    ``z2 = values[n - 1 - r]`` (increasing upwards), ``values = latent_values(value_range, n)``.
    """
    from ..basics.errors import ConfigError

    if vae.n_latent != 2:
        raise ConfigError(
            f"the manifold needs a VAE with 2 code units, this one has {vae.n_latent}; "
            "use the traversal instead"
        )
    values = latent_values(value_range, n)
    z1 = values.repeat(n)
    z2 = values.flip(0).repeat_interleave(n)
    images = _decode_grid(vae, torch.stack([z1, z2], dim=1), image_shape)
    return tile_images(images, image_shape, n_cols=n, pad=0)


def _value_ticks(values: torch.Tensor, size: int, max_ticks: int = 7) -> tuple[list, list]:
    """Ticks at the round code values (integers, or halves when fewer than three integers fall
    in the range) that lie within the grid, placed by linear interpolation between the centres
    of the grid's cells of ``size`` pixels; labels such as ``-3``, ``0``, ``2``."""
    grid = values.double().numpy()
    ascending = grid[0] <= grid[-1]
    low, high = (grid[0], grid[-1]) if ascending else (grid[-1], grid[0])
    step = 1.0 if np.floor(high) - np.ceil(low) >= 2 else 0.5
    while (np.floor(high / step) - np.ceil(low / step)) + 1 > max_ticks:
        step *= 2
    rounds = np.arange(np.ceil(low / step), np.floor(high / step) + 1) * step
    index = np.arange(len(grid), dtype=float)
    where = np.interp(
        rounds, grid if ascending else grid[::-1], index if ascending else index[::-1]
    )
    labels = [f"{value + 0.0:g}" for value in rounds]
    return [float(size * (i + 0.5) - 0.5) for i in where], labels


def save_manifold(
    vae,
    path: str | os.PathLike,
    n: int = 20,
    value_range: tuple[float, float] = (-3.0, 3.0),
    image_shape: tuple[int, int] = (28, 28),
    title: str = "",
) -> np.ndarray:
    """Write the latent manifold (:func:`manifold_array`) with axes labelled by the code values."""
    array = manifold_array(vae, n, value_range, image_shape)
    values = latent_values(value_range, n)
    xticks = _value_ticks(values, image_shape[1])
    yticks = _value_ticks(values.flip(0), image_shape[0])
    return _imshow_figure(array, path, (8, 8), title, xticks, yticks, "z1", "z2")


def traversal_array(
    vae,
    steps: int = 13,
    value_range: tuple[float, float] = (-3.0, 3.0),
    image_shape: tuple[int, int] = (28, 28),
) -> np.ndarray:
    """One row per code unit k, that unit going through ``steps`` values while the others stay 0.

    Returns a (K*H, steps*W) array with values in [0, 1]; the image in row k, column c decodes
    ``z = values[c] * e_k``, ``values = latent_values(value_range, steps)``.
    """
    values = latent_values(value_range, steps)
    k = vae.n_latent
    codes = torch.zeros(k, steps, k)
    codes[torch.arange(k), :, torch.arange(k)] = values
    images = _decode_grid(vae, codes.reshape(k * steps, k), image_shape)
    return tile_images(images, image_shape, n_cols=steps, pad=0)


def save_traversal(
    vae,
    path: str | os.PathLike,
    steps: int = 13,
    value_range: tuple[float, float] = (-3.0, 3.0),
    image_shape: tuple[int, int] = (28, 28),
    title: str = "",
) -> np.ndarray:
    """Write the traversal (:func:`traversal_array`): rows labelled z1..zK, columns by value."""
    array = traversal_array(vae, steps, value_range, image_shape)
    values = latent_values(value_range, steps)
    k = vae.n_latent
    xticks = _value_ticks(values, image_shape[1], max_ticks=steps)
    yticks = ([image_shape[0] * (i + 0.5) - 0.5 for i in range(k)], [f"z{i + 1}" for i in range(k)])
    size = (0.5 * steps + 1.0, 0.5 * k + 0.9)
    xlabel = "value of the varied code unit (the others are 0)"
    return _imshow_figure(array, path, size, title, xticks, yticks, xlabel, tick_size=8)


def latent_coordinates(
    vae, images: torch.Tensor, batch_size: int = 2000
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Posterior means of ``images`` in at most two dimensions, with the axis names.

    K <= 2: the means themselves (``z1``, ``z2``). K > 2: their projections on the first two
    principal components (centred, by SVD; each component's sign fixed so that its largest
    loading is positive), named with the fraction of variance each explains.
    """
    device = vae.decoder_output.weight.device
    dtype = vae.decoder_output.weight.dtype
    with torch.no_grad():
        means = torch.cat(
            [vae.encode(b.to(device=device, dtype=dtype))[0] for b in images.split(batch_size)]
        )
    means = means.to("cpu", torch.float64)
    if vae.n_latent <= 2:
        return means.numpy(), tuple(f"z{i + 1}" for i in range(vae.n_latent))
    centred = means - means.mean(0)
    _, singular, right = torch.linalg.svd(centred, full_matrices=False)
    components = right[:2]
    signs = torch.sign(components.gather(1, components.abs().argmax(1, keepdim=True)))
    components = components * signs
    explained = singular.pow(2) / singular.pow(2).sum()
    names = tuple(f"PC{i + 1} ({100 * float(explained[i]):.0f}% of variance)" for i in range(2))
    return (centred @ components.t()).numpy(), names


def latent_scatter(
    vae,
    images: torch.Tensor,
    labels: torch.Tensor,
    path: str | os.PathLike,
    title: str = "",
) -> np.ndarray:
    """Scatter of the posterior means of ``images`` coloured by label; returns the coordinates.

    For a code of more than two units the axes are the first two principal components
    (:func:`latent_coordinates`); for one unit the label is on the vertical axis.
    """
    plt = _matplotlib()
    coords, names = latent_coordinates(vae, images)
    labels = to_numpy(labels).astype(int)
    if coords.shape[1] == 1:
        coords = np.concatenate([coords, labels[:, None].astype(np.float64)], axis=1)
        names = (names[0], "label")
    figure, axis = plt.subplots(figsize=(6.5, 5.5))
    cmap = plt.get_cmap("tab10")
    for value in np.unique(labels):
        chosen = labels == value
        axis.scatter(
            coords[chosen, 0],
            coords[chosen, 1],
            s=3,
            alpha=0.6,
            color=cmap(int(value) % 10),
            label=str(value),
            rasterized=True,
        )
    axis.set_xlabel(names[0])
    axis.set_ylabel(names[1])
    axis.legend(
        title="label", markerscale=4, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5)
    )
    axis.set_title(title or "posterior means of q(z | x)", fontsize=10)
    save_figure(figure, path)
    return coords


def filters_array(rbm, n: int = 100, image_shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """The first ``n`` hidden units' weight vectors as tiles, each scaled to [0, 1] on its own."""
    weights = rbm.weight.detach().to("cpu", torch.float32).t()[:n]
    low = weights.min(1, keepdim=True).values
    high = weights.max(1, keepdim=True).values
    scaled = (weights - low) / (high - low).clamp_min(1e-12)
    return tile_images(scaled, image_shape)


def save_filters(
    rbm,
    path: str | os.PathLike,
    n: int = 100,
    image_shape: tuple[int, int] = (28, 28),
    title: str = "",
) -> np.ndarray:
    """Write the learned filters (weights as image tiles) of an RBM."""
    return _imshow_figure(filters_array(rbm, n, image_shape), path, (5, 5), title)


def save_inpainting_comparison(
    panels: dict[tuple[str, str], np.ndarray],
    path: str | os.PathLike,
    title: str = "",
) -> None:
    """A grid of inpainting panels (:func:`inpainting_panel`): one row per model, one column per
    mask, keyed by ``(row_label, column_label)``; each panel labelled original / masked / inpainted."""
    plt = _matplotlib()
    rows = list(dict.fromkeys(key[0] for key in panels))
    cols = list(dict.fromkeys(key[1] for key in panels))
    sample = next(iter(panels.values()))
    aspect = sample.shape[1] / sample.shape[0]
    figure, axes = plt.subplots(
        len(rows),
        len(cols),
        figsize=(2.3 * aspect * len(cols) + 1, 2.4 * len(rows) + 0.6),
        squeeze=False,
    )
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            axis = axes[i][j]
            panel = panels.get((row, col))
            axis.set_xticks([])
            axis.set_yticks([])
            if panel is None:
                axis.axis("off")
                continue
            axis.imshow(panel, interpolation="nearest")
            height = panel.shape[0] / 3
            if j == 0:
                axis.set_yticks([height * (k + 0.5) for k in range(3)])
                axis.set_yticklabels(["original", "masked", "inpainted"], fontsize=8)
                axis.set_ylabel(row, fontsize=10)
            if i == 0:
                axis.set_title(col, fontsize=10)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    save_figure(figure, path)
