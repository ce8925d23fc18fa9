"""An interactive explorer: one offline HTML page that runs the trained models in the browser.

The page holds the models' weights (float32, base64; float16 for the largest matrices when the
page would otherwise pass the size budget) and plain JavaScript (``explore.js``, no framework, no
network) that runs them:

- the latent space of a VAE with a 2-D code as a pad over [-3, 3]^2, the decoded manifold drawn
  faintly beneath the test set's posterior means (coloured by label); the pointer's position is
  decoded live. VAEs with larger codes get one slider per code unit.
- an inpainting canvas: a test digit (or one drawn by hand), pixels hidden with the mouse or by a
  random or half mask, filled step by step by clamped Gibbs sampling in an RBM (Eq. 5.2) or
  pseudo-Gibbs sampling in a VAE (Eq. 5.3); observed pixels never change.

:func:`explorer_fragment` returns an HTML fragment that can sit in any page, several times over:
its elements are found by classes carrying ``id_prefix`` inside the fragment's own root, its CSS
is scoped to that root, and its only global is ``window.rbmvaeExplorer``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from .atomic import write_text
from .errors import ConfigError

MAX_PAGE_BYTES = 5_000_000
PRECISIONS = ("auto", "float32", "float16")
LATENT_RANGE = 3.0
MANIFOLD_GRID = 16
_PREFIX_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_MODEL_ORDER = {"rbm": 0, "vae": 1}


@dataclass
class ExplorerInfo:
    """What went into a page: its size, the models, and what was shrunk or left out to fit."""

    n_bytes: int
    models: list[str]
    float16: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# weights


def _tensor_spec(tensor: torch.Tensor, dtype: str) -> dict:
    """Shape, dtype and little-endian base64 bytes of ``tensor``."""
    array = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
    array = array.astype("<f2" if dtype == "float16" else "<f4")
    return {
        "shape": list(array.shape),
        "dtype": dtype,
        "data": base64.b64encode(array.tobytes()).decode("ascii"),
    }


def _model_label(name: str, model: nn.Module) -> str:
    if model.kind == "rbm":
        return f"{name}: RBM, {model.n_hidden} hidden units (clamped Gibbs)"
    return f"{name}: VAE, {model.n_latent}-D code, {model.n_hidden} hidden units (pseudo-Gibbs)"


def _check_models(models: dict[str, nn.Module]) -> int:
    """The common number of pixels of ``models`` (RBMs and VAEs only)."""
    if not models:
        raise ConfigError("the explorer needs at least one model; train one or run reproduce")
    sizes = set()
    for name, model in models.items():
        kind = getattr(model, "kind", None)
        if kind not in _MODEL_ORDER:
            raise ConfigError(
                f"{name}: the explorer runs RBMs and VAEs, not {type(model).__name__}"
            )
        sizes.add(model.n_visible)
    if len(sizes) != 1:
        raise ConfigError(
            f"the models have different numbers of pixels ({sorted(sizes)}); "
            "explore models of one data set at a time"
        )
    return sizes.pop()


def _image_shape(n_visible: int, data) -> tuple[int, int]:
    if data is not None:
        shape = tuple(int(s) for s in data.image_shape)
        if shape[0] * shape[1] != n_visible:
            raise ConfigError(
                f"the data set's images are {shape[0]}x{shape[1]}, the models have "
                f"{n_visible} pixels; use the data set the models were trained on"
            )
        return shape
    side = math.isqrt(n_visible)
    if side * side != n_visible:
        raise ConfigError(
            f"cannot tell the image shape of {n_visible} pixels; pass the data set as well"
        )
    return side, side


# ------------------------------------------------------------------------------------------------
# data: test digits, latent points, the manifold image


def _pick_digits(data, n_digits: int) -> dict | None:
    """``n_digits`` test digits taking the labels in turn (0, 1, ..., 9, 0, ...), as uint8."""
    if data is None or n_digits <= 0:
        return None
    labels = data.test_labels.to("cpu")
    pools = {int(v): (labels == v).nonzero().flatten().tolist() for v in labels.unique()}
    picked: list[int] = []
    depth = 0
    while len(picked) < n_digits and any(depth < len(p) for p in pools.values()):
        for value in sorted(pools):
            if depth < len(pools[value]) and len(picked) < n_digits:
                picked.append(pools[value][depth])
        depth += 1
    images = data.test_images[picked].to("cpu", torch.float32)
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return {
        "indices": picked,
        "labels": [int(labels[i]) for i in picked],
        "data": base64.b64encode(pixels.tobytes()).decode("ascii"),
    }


def _latent_panel(
    name: str, vae: nn.Module, data, image_shape: tuple[int, int], n_points: int
) -> dict:
    """The pad's data: the manifold as a PNG data URI and test posterior means with labels."""
    from .figures import manifold_array, png_bytes

    grid = MANIFOLD_GRID
    with torch.no_grad():
        manifold = manifold_array(
            vae, n=grid, value_range=(-LATENT_RANGE, LATENT_RANGE), image_shape=image_shape
        )
    # Tile c is centred on z1 = values[c], values evenly spaced from -3 to 3: the image reaches
    # half a tile beyond the range on each side.
    half_tile = LATENT_RANGE / (grid - 1)
    panel = {
        "model": name,
        "range": LATENT_RANGE,
        "manifold": "data:image/png;base64,"
        + base64.b64encode(png_bytes(manifold, scale=1)).decode("ascii"),
        "manifoldExtent": [-LATENT_RANGE - half_tile, LATENT_RANGE + half_tile],
        "points": {"z": [], "labels": []},
    }
    if data is not None and n_points > 0:
        n_test = data.test_images.shape[0]
        generator = torch.Generator().manual_seed(0)
        chosen = torch.randperm(n_test, generator=generator)[: min(n_points, n_test)]
        weight = vae.decoder_output.weight
        images = data.test_images[chosen].to(weight.device, weight.dtype)
        with torch.no_grad():
            means, _ = vae.encode(images)
        panel["points"] = {
            "z": [round(v, 3) for v in means.to("cpu").flatten().tolist()],
            "labels": [int(v) for v in data.test_labels[chosen]],
        }
    return panel


# ------------------------------------------------------------------------------------------------
# markup


def _style(p: str) -> str:
    return f"""
.{p} {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232b;
  line-height: 1.4; font-size: 0.92rem; }}
.{p} .{p}-section {{ border: 1px solid #d6dbe1; border-radius: 6px; padding: 0.8rem 1rem;
  margin: 0.8rem 0; background: #fbfcfd; }}
.{p} .{p}-h {{ margin: 0 0 0.5rem; font-size: 1.05rem; }}
.{p} .{p}-row {{ display: flex; flex-wrap: wrap; gap: 1.2rem; align-items: flex-start; }}
.{p} .{p}-col {{ display: flex; flex-direction: column; gap: 0.4rem; }}
.{p} .{p}-caption, .{p} .{p}-readout, .{p} .{p}-info {{ color: #4a5561; font-size: 0.85rem;
  font-variant-numeric: tabular-nums; }}
.{p} canvas {{ image-rendering: pixelated; image-rendering: crisp-edges; }}
.{p} .{p}-pad {{ width: 360px; height: 360px; max-width: 90vw; max-height: 90vw;
  cursor: crosshair; touch-action: none; border: 1px solid #98a2ad; }}
.{p} .{p}-pad-col {{ max-width: 364px; }}
.{p} .{p}-big {{ width: 196px; height: 196px; border: 1px solid #98a2ad; background: #000; }}
.{p} .{p}-edit {{ width: 252px; height: 252px; cursor: crosshair; touch-action: none; }}
.{p} .{p}-small {{ width: 84px; height: 84px; border: 1px solid #98a2ad; }}
.{p} .{p}-legend {{ display: flex; flex-wrap: wrap; gap: 0.5rem; font-size: 0.8rem; }}
.{p} .{p}-swatch {{ display: inline-block; width: 0.7rem; height: 0.7rem; margin-right: 0.2rem;
  border-radius: 50%; vertical-align: -0.05rem; }}
.{p} .{p}-sliders {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr));
  gap: 0.1rem 1rem; min-width: 260px; flex: 1; }}
.{p} .{p}-slider-row {{ display: flex; align-items: center; gap: 0.4rem; }}
.{p} .{p}-slider-name {{ width: 2.2rem; text-align: right; font-size: 0.8rem; }}
.{p} .{p}-slider {{ flex: 1; }}
.{p} .{p}-slider-value {{ width: 3.2rem; font-size: 0.8rem; font-variant-numeric: tabular-nums; }}
.{p} .{p}-thumbs {{ display: flex; flex-wrap: wrap; gap: 3px; margin-bottom: 0.6rem; }}
.{p} .{p}-thumb {{ padding: 0; border: 2px solid transparent; background: none; cursor: pointer;
  line-height: 0; }}
.{p} .{p}-thumb canvas {{ width: 36px; height: 36px; }}
.{p} .{p}-thumb[aria-pressed="true"] {{ border-color: #e8590c; }}
.{p} button, .{p} select, .{p} input[type="number"] {{ font: inherit; font-size: 0.85rem; }}
.{p} .{p}-tools {{ display: flex; flex-wrap: wrap; gap: 0.3rem; max-width: 300px; }}
.{p} .{p}-tool[aria-pressed="true"], .{p} .{p}-run[aria-pressed="true"] {{ background: #1c7ed6;
  color: #fff; border-color: #1c7ed6; }}
.{p} .{p}-controls {{ min-width: 240px; max-width: 330px; }}
.{p} .{p}-controls label {{ display: flex; justify-content: space-between; gap: 0.5rem;
  align-items: center; }}
.{p} .{p}-controls input[type="number"] {{ width: 5rem; }}
.{p} .{p}-counter {{ font-size: 1.1rem; font-weight: 600; font-variant-numeric: tabular-nums; }}
.{p} .{p}-notes {{ border-left: 3px solid #e8590c; padding: 0.1rem 0.7rem; color: #4a5561;
  font-size: 0.85rem; }}
.{p} .{p}-error {{ color: #c92a2a; font-weight: 600; }}
"""


def _markup(p: str) -> str:
    """The static elements; the script fills in options, sliders and thumbnails."""

    def c(name: str) -> str:
        return f"{p}-{name}"

    tools = "".join(
        f'<button type="button" class="{c("tool")}" data-tool="{tool}" aria-pressed="false">'
        f"{label}</button>"
        for tool, label in (
            ("hide", "hide pixels"),
            ("reveal", "show pixels"),
            ("pen", "pen (ink)"),
            ("paper", "pen (background)"),
        )
    )
    random_masks = "".join(
        f'<button type="button" class="{c("random-mask")}" data-fraction="{f}">'
        f"random {round(100 * f)}%</button>"
        for f in (0.2, 0.5, 0.8)
    )
    return f"""
<div class="{c("notes")}" hidden></div>
<p class="{c("error")}" data-rbmvae-error hidden></p>
<noscript><p class="{c("error")}">The explorer runs the models in JavaScript; enable it to use this
section.</p></noscript>
<div class="{c("section")}">
  <h3 class="{c("h")}">Latent space of the VAEs</h3>
  <div class="{c("row")} {c("pad-block")}">
    <div class="{c("col")} {c("pad-col")}">
      <div class="{c("caption")}"><span class="{c("pad-title")}"></span>: move the pointer over
      the code space z in [-3, 3]&sup2; (arrow keys work too). Beneath: the decoded manifold and
      the posterior means of test digits.</div>
      <canvas class="{c("pad")}" width="360" height="360" tabindex="0"
        aria-label="two-dimensional code space; the pointer position is decoded"></canvas>
      <div class="{c("legend")}"></div>
    </div>
    <div class="{c("col")}">
      <div class="{c("caption")}">p(x = 1 | z)</div>
      <canvas class="{c("big")} {c("pad-out")}" width="28" height="28"></canvas>
      <div class="{c("readout")} {c("pad-readout")}"></div>
    </div>
  </div>
  <div class="{c("row")} {c("slider-block")}">
    <div class="{c("col")}" style="flex: 1">
      <div class="{c("caption")}">Larger codes: one slider per code unit.
        <select class="{c("slider-model")}" aria-label="VAE"></select>
        <button type="button" class="{c("slider-zero")}">all 0</button>
        <button type="button" class="{c("slider-random")}">random z ~ N(0, I)</button>
        <button type="button" class="{c("slider-encode")}">code of the digit below</button>
      </div>
      <div class="{c("sliders")}"></div>
    </div>
    <div class="{c("col")}">
      <div class="{c("caption")}">p(x = 1 | z)</div>
      <canvas class="{c("big")} {c("slider-out")}" width="28" height="28"></canvas>
      <div class="{c("readout")} {c("slider-readout")}"></div>
    </div>
  </div>
</div>
<div class="{c("section")}">
  <h3 class="{c("h")}">Inpainting</h3>
  <div class="{c("caption")}">Pick a test digit (or start blank and draw one), hide pixels with
  the mouse or a mask, choose a model and run its chain: clamped Gibbs sampling for an RBM,
  pseudo-Gibbs sampling for a VAE. Observed pixels never change.
  <button type="button" class="{c("blank")}">blank canvas</button></div>
  <div class="{c("thumbs")}"></div>
  <div class="{c("row")}">
    <div class="{c("col")}">
      <div class="{c("caption")}">input (blue: missing)</div>
      <canvas class="{c("big")} {c("edit")}" width="28" height="28"
        aria-label="the input image; drag to edit"></canvas>
      <div class="{c("tools")}">{tools}
        <select class="{c("brush")}" aria-label="brush size">
          <option value="0.6">thin</option><option value="1.1" selected>medium</option>
          <option value="1.8">thick</option></select></div>
      <div class="{c("tools")}">{random_masks}
        <select class="{c("half")}" aria-label="hide a half">
          <option value="">hide a half&hellip;</option><option value="top">top half</option>
          <option value="bottom">bottom half</option><option value="left">left half</option>
          <option value="right">right half</option></select>
        <button type="button" class="{c("clear")}">no mask</button></div>
    </div>
    <div class="{c("col")}">
      <div class="{c("caption")}">filled in</div>
      <canvas class="{c("big")} {c("fill")}" width="28" height="28"></canvas>
      <div class="{c("caption")}">chain state</div>
      <canvas class="{c("small")} {c("state")}" width="28" height="28"></canvas>
    </div>
    <div class="{c("col")} {c("controls")}">
      <label>model <select class="{c("model")}"></select></label>
      <div><button type="button" class="{c("run")}" aria-pressed="false">Run</button>
        <button type="button" class="{c("step")}">one step</button>
        <button type="button" class="{c("restart")}">restart</button></div>
      <div class="{c("counter")}">step 0</div>
      <label>sweeps per frame <select class="{c("speed")}"><option>1</option>
        <option selected>2</option><option>5</option><option>20</option></select></label>
      <label>stop after step <input type="number" class="{c("steps")}" value="200" min="1"></label>
      <label>burn-in sweeps <input type="number" class="{c("burn")}" value="100" min="0"></label>
      <label>seed <input type="number" class="{c("seed")}" value="0" min="0"></label>
      <label>show <select class="{c("show")}">
        <option value="mean">mean of p after burn-in</option>
        <option value="current">current p</option></select></label>
      <div class="{c("info")}"></div>
      <div class="{c("caption")}">As in <code>rbmvae inpaint</code>: missing pixels start at the
      model's default fill; the image shows p(x<sub>i</sub> = 1 | &middot;) averaged over the
      sweeps after burn-in.</div>
    </div>
  </div>
</div>
"""


def _script_text() -> str:
    text = resources.files("rbmvae").joinpath("explore.js").read_text(encoding="utf-8")
    return text.replace("</", "<\\/")


def _json_for_html(payload: dict) -> str:
    """JSON safe inside a ``<script>`` element (no ``<``, ``>`` or ``&`` characters)."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _render(prefix: str, payload: dict) -> str:
    return (
        f'<div class="{prefix}" data-rbmvae-explorer="{prefix}">'
        f"<style>{_style(prefix)}</style>"
        f"{_markup(prefix)}"
        f'<script type="application/json" class="{prefix}-data">{_json_for_html(payload)}</script>'
        f"<script>{_script_text()}</script></div>"
    )


# ------------------------------------------------------------------------------------------------
# the fragment and the page


def _ordered(models: dict[str, nn.Module]) -> list[tuple[str, nn.Module]]:
    """RBMs by hidden units, then VAEs by code size (stable for equal sizes)."""

    def key(item):
        model = item[1]
        size = model.n_hidden if model.kind == "rbm" else model.n_latent
        return _MODEL_ORDER[model.kind], size

    return sorted(models.items(), key=key)


def build_explorer(
    models: dict[str, nn.Module],
    data=None,
    n_digits: int = 30,
    id_prefix: str = "rbmvae-explorer",
    *,
    n_points: int = 2000,
    precision: str = "auto",
    max_bytes: int = MAX_PAGE_BYTES,
    reserve_bytes: int = 0,
) -> tuple[str, ExplorerInfo]:
    """The explorer fragment and what went into it (see :func:`explorer_fragment`).

    ``reserve_bytes``: room kept for the page around the fragment (the budget is ``max_bytes``
    for fragment and page together).
    """
    if not isinstance(id_prefix, str) or not _PREFIX_PATTERN.match(id_prefix):
        raise ConfigError(
            f"id prefix {id_prefix!r} must start with a letter and hold only letters, digits, "
            "'-' and '_'"
        )
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    n_visible = _check_models(models)
    image_shape = _image_shape(n_visible, data)
    ordered = _ordered(models)

    digits = _pick_digits(data, n_digits)
    latent = None
    for name, model in ordered:
        if model.kind == "vae" and model.n_latent == 2:
            latent = _latent_panel(name, model, data, image_shape, n_points)
            break

    tensors = {name: dict(model.state_dict()) for name, model in ordered}
    cache: dict[tuple[str, str, str], dict] = {}

    def spec(name: str, tensor_name: str, dtype: str) -> dict:
        key = (name, tensor_name, dtype)
        if key not in cache:
            cache[key] = _tensor_spec(tensors[name][tensor_name], dtype)
        return cache[key]

    half: set[tuple[str, str]] = set()
    if precision == "float16":
        half = {(n, t) for n, ts in tensors.items() for t, v in ts.items() if v.dim() == 2}
    dropped: list[str] = []

    def render() -> tuple[str, list[str]]:
        notes = []
        shrunk = sorted({n for n, _ in half if n not in dropped})
        if shrunk and precision == "auto":
            notes.append(
                f"To keep this page under {max_bytes / 1e6:g} MB, the largest weight matrices of "
                f"{', '.join(shrunk)} are stored as float16 (relative rounding error at most "
                "2^-11, about 0.05%); the rest is float32."
            )
        if dropped:
            notes.append(
                f"Left out to keep this page under {max_bytes / 1e6:g} MB: {', '.join(dropped)}."
            )
        payload = {
            "version": 1,
            "imageShape": list(image_shape),
            "models": [
                {
                    "name": name,
                    "kind": model.kind,
                    "label": _model_label(name, model),
                    "config": model.config(),
                    "tensors": {
                        t: spec(name, t, "float16" if (name, t) in half else "float32")
                        for t in tensors[name]
                    },
                }
                for name, model in ordered
                if name not in dropped
            ],
            "digits": digits,
            "latent": latent if latent is not None and latent["model"] not in dropped else None,
            "notes": notes,
        }
        return _render(id_prefix, payload), notes

    text, notes = render()
    budget = max_bytes - reserve_bytes
    if precision == "auto":
        # Largest matrices to float16 first, then (only if that is not enough) whole models out,
        # largest first.
        matrices = sorted(
            ((n, t) for n, ts in tensors.items() for t, v in ts.items() if v.dim() == 2),
            key=lambda item: -tensors[item[0]][item[1]].numel(),
        )
        while len(text.encode("utf-8")) > budget and matrices:
            half.add(matrices.pop(0))
            text, notes = render()
        by_size = sorted(
            (name for name, _ in ordered),
            key=lambda n: -sum(v.numel() for v in tensors[n].values()),
        )
        while len(text.encode("utf-8")) > budget and len(by_size) > 1:
            dropped.append(by_size.pop(0))
            text, notes = render()
    info = ExplorerInfo(
        n_bytes=len(text.encode("utf-8")),
        models=[name for name, _ in ordered if name not in dropped],
        float16=sorted({n for n, _ in half if n not in dropped}),
        dropped=dropped,
        notes=notes,
    )
    return text, info


def explorer_fragment(
    models: dict[str, nn.Module],
    data=None,
    n_digits: int = 30,
    id_prefix: str = "rbmvae-explorer",
    **options,
) -> str:
    """A self-contained HTML fragment (markup, ``<style>``, ``<script>``) exploring ``models``.

    ``models`` maps names to RBMs and VAEs of one image size; ``data`` (a Dataset, optional)
    provides ``n_digits`` test digits to inpaint and the test points of the latent pad. Options:
    ``n_points`` (test codes on the pad, default 2000), ``precision`` (``auto``: float32 unless
    the fragment would pass ``max_bytes``, then float16 for the largest matrices; or ``float32``,
    ``float16``) and ``max_bytes`` (default 5 MB). Several fragments can share a page.
    """
    return build_explorer(models, data, n_digits, id_prefix, **options)[0]


_PAGE_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ margin: 1.5rem auto; max-width: 1150px; padding: 0 1rem;
  font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232b; }}
h1 {{ margin-bottom: 0.2rem; }} .sub {{ color: #5b6672; margin-top: 0; }}</style>
</head><body><h1>{title}</h1><p class="sub">{subtitle}</p>
"""
_PAGE_TAIL = "\n</body></html>\n"


def _page(title: str, subtitle: str, fragment: str) -> str:
    head = _PAGE_HEAD.format(title=html.escape(title), subtitle=html.escape(subtitle))
    return head + fragment + _PAGE_TAIL


def build_page(
    models: dict[str, nn.Module],
    data=None,
    n_digits: int = 30,
    *,
    title: str = "rbmvae explorer",
    subtitle: str = "",
    max_bytes: int = MAX_PAGE_BYTES,
    **options,
) -> tuple[str, ExplorerInfo]:
    """The full page and what went into it (see :func:`explorer_page`)."""
    if not subtitle:
        trained = f"; data set {data.name}" if data is not None and data.name else ""
        subtitle = f"The models run in this page, offline{trained}."
    overhead = len(_page(title, subtitle, "").encode("utf-8"))
    fragment, info = build_explorer(
        models, data, n_digits, max_bytes=max_bytes, reserve_bytes=overhead, **options
    )
    page = _page(title, subtitle, fragment)
    info.n_bytes = len(page.encode("utf-8"))
    return page, info


def explorer_page(
    models: dict[str, nn.Module],
    data=None,
    n_digits: int = 30,
    *,
    title: str = "rbmvae explorer",
    **options,
) -> str:
    """A complete HTML document holding :func:`explorer_fragment`; it opens offline."""
    return build_page(models, data, n_digits, title=title, **options)[0]


# ------------------------------------------------------------------------------------------------
# from a run directory


def find_run_models(run_dir: str | os.PathLike) -> dict[str, Path]:
    """Model directories of a run: ``RUN/models/NAME`` (or ``RUN/NAME``) holding a checkpoint."""
    from .checkpoint import META_FILE

    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"{run}: run directory not found; give the output of rbmvae reproduce")
    base = run / "models" if (run / "models").is_dir() else run
    found = {
        child.name: child
        for child in sorted(base.iterdir())
        if child.is_dir() and (child / META_FILE).is_file()
    }
    if not found:
        raise ConfigError(
            f"{run}: no trained models (looked for models/NAME/{META_FILE}); "
            "run rbmvae reproduce first or point --run at its output directory"
        )
    return found


def _run_data(metas: list[dict]):
    """The test set the run's models were trained on, or None where it cannot be loaded."""
    from .data import DATASET_NAMES, load_dataset
    from .errors import DataError

    for meta in metas:
        described = meta.get("dataset") or {}
        name = described.get("name")
        source = described.get("source")
        try:
            if name in DATASET_NAMES:
                return load_dataset(name), None
            if source and Path(source).is_dir():
                return load_dataset(None, source), None
        except DataError as error:
            return None, f"The test digits could not be loaded ({error}); draw your own."
    return None, "The models' data set is unknown, so there are no test digits; draw your own."


def write_explorer(
    run_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    n_digits: int = 30,
    max_bytes: int = MAX_PAGE_BYTES,
) -> ExplorerInfo:
    """Load every model of ``run_dir`` and write the explorer page to ``out_path`` atomically."""
    from .checkpoint import load_model

    directories = find_run_models(run_dir)
    models, metas = {}, []
    for name, directory in directories.items():
        model, meta = load_model(directory, device="cpu")
        models[name] = model
        metas.append(meta)
    data, problem = _run_data(metas)
    if data is not None:
        n_pixels = next(iter(models.values())).n_visible
        if data.n_pixels != n_pixels:
            data = None
            problem = "The data set does not match the models' image size; draw your own digits."
    page, info = build_page(
        models,
        data,
        n_digits,
        subtitle=f"Run {Path(run_dir).name}: the models run in this page, offline."
        + (f" {problem}" if problem else ""),
        max_bytes=max_bytes,
    )
    write_text(out_path, page)
    if problem:
        info.notes.append(problem)
    return info


def describe(info: ExplorerInfo) -> str:
    """One line for the command line: models, size, what was shrunk or dropped."""
    parts = [f"{len(info.models)} models ({', '.join(info.models)}), {info.n_bytes / 1e6:.2f} MB"]
    if info.float16:
        parts.append(f"float16 matrices in {', '.join(info.float16)}")
    if info.dropped:
        parts.append(f"left out: {', '.join(info.dropped)}")
    return "; ".join(parts)


__all__ = [
    "MAX_PAGE_BYTES",
    "ExplorerInfo",
    "build_explorer",
    "build_page",
    "describe",
    "explorer_fragment",
    "explorer_page",
    "find_run_models",
    "write_explorer",
]
