"""The explorer's HTML: the fragment (markup, scoped CSS, payload, script) from the package's data
files, and the page around it.

The data files: ``explore.html`` (the markup, with ``$p``, ``$style``, ``$payload`` and
``$script`` placeholders), ``explore.css`` (every rule under ``.$p``) and the JavaScript parts in
:data:`SCRIPT_PARTS` order, joined into one strict-mode function so that the page's only global
is ``window.rbmvaeExplorer``.
"""

from __future__ import annotations

import functools
import html
import json
import re
from importlib import resources
from string import Template

from torch import nn

from ...basics.errors import ConfigError
from .payload import (
    MAX_PAGE_BYTES,
    PRECISIONS,
    ExplorerInfo,
    Payload,
    check_models,
    first_latent_panel,
    fit_budget,
    image_shape,
    ordered,
    pick_digits,
)

# The JavaScript, in the order it runs: maths and sampling, drawing helpers, the three parts of
# an explorer, the test hooks, and the start-up that creates one instance per fragment.
SCRIPT_PARTS = (
    "maths.js",
    "sampling.js",
    "drawing.js",
    "pad.js",
    "sliders.js",
    "canvas.js",
    "editing.js",
    "hooks.js",
    "main.js",
)
_PREFIX_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_COMMENT = {"css": re.compile(r"/\*.*?\*/\s*", re.S), "html": re.compile(r"<!--.*?-->\s*", re.S)}


def _data_file(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@functools.cache
def _templates() -> tuple[Template, Template, str]:
    """The markup and CSS templates (comments removed) and the script, read once."""
    markup = Template(_COMMENT["html"].sub("", _data_file("explore.html")))
    style = Template(_COMMENT["css"].sub("", _data_file("explore.css")))
    parts = [f"// {name}\n{_data_file(name)}" for name in SCRIPT_PARTS]
    script = '(function () {\n"use strict";\n' + "\n".join(parts) + "})();\n"
    return markup, style, script.replace("</", "<\\/")


def _json_for_html(payload: dict) -> str:
    """JSON safe inside a ``<script>`` element (no ``<``, ``>`` or ``&`` characters)."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_fragment(prefix: str, payload: dict) -> str:
    """The fragment for ``payload`` (see :mod:`.payload`), its classes carrying ``prefix``."""
    markup, style, script = _templates()
    return markup.substitute(
        p=prefix,
        style=style.substitute(p=prefix),
        payload=_json_for_html(payload),
        script=script,
    ).strip()


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
    shape = image_shape(check_models(models), data)
    models_in_order = ordered(models)
    payload = Payload(
        models_in_order,
        shape,
        pick_digits(data, n_digits),
        first_latent_panel(models_in_order, data, shape, n_points),
        max_bytes=max_bytes,
        precision=precision,
    )
    text = fit_budget(
        payload, lambda content: render_fragment(id_prefix, content), max_bytes - reserve_bytes
    )
    return text, payload.info(len(text.encode("utf-8")))


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
