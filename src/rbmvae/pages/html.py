"""Self-contained HTML pages (images embedded as data URIs) that open offline, such as a run's
report.html: the sections, tables and figures, and their writer."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..basics.atomic import write_text

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #1d232b; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #d6dbe1; padding-bottom: 0.2rem;
     margin-top: 2.2rem; }
.sub { color: #5b6672; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8rem 0 1.2rem; font-size: 0.9rem; }
th, td { border: 1px solid #d6dbe1; padding: 0.25rem 0.55rem; text-align: right; }
th { background: #f1f4f7; } td:first-child, th:first-child { text-align: left; }
tr.baseline td { color: #5b6672; font-style: italic; }
figure { margin: 1rem 0 1.6rem; } figure img { max-width: 100%; height: auto;
         border: 1px solid #e3e7eb; } figcaption { color: #3c4650; font-size: 0.9rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 1rem; }
code, pre { background: #f4f6f8; padding: 0.1rem 0.3rem; border-radius: 3px; }
pre { padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }
.note { color: #5b6672; font-size: 0.88rem; }
"""


@dataclass
class Figure:
    path: Path
    caption: str


@dataclass
class Table:
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence]
    note: str = ""
    baseline_rows: set[int] = field(default_factory=set)


@dataclass
class Section:
    title: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    grid: bool = False


def image_data_uri(path: str | os.PathLike) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return html.escape(str(value))


def render_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for index, row in enumerate(table.rows):
        cls = ' class="baseline"' if index in table.baseline_rows else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>")
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return (
        f"<h3>{html.escape(table.title)}</h3><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>{note}"
    )


def render_figure(figure: Figure) -> str:
    caption = html.escape(figure.caption)
    return (
        f'<figure><img src="{image_data_uri(figure.path)}" alt="{caption}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def render_report(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole page as a string."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(subtitle)}</p>",
    ]
    toc = "".join(
        f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections)
    )
    parts.append(f"<nav><ol>{toc}</ol></nav>")
    for index, section in enumerate(sections):
        parts.append(f'<section id="s{index}"><h2>{html.escape(section.title)}</h2>')
        if section.text:
            parts.append(section.text)
        parts.extend(render_table(t) for t in section.tables)
        figures = "".join(render_figure(f) for f in section.figures)
        parts.append(f'<div class="grid">{figures}</div>' if section.grid else figures)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    path: str | os.PathLike, title: str, subtitle: str, sections: Sequence[Section]
) -> Path:
    """Render and write the report atomically."""
    write_text(path, render_report(title, subtitle, sections))
    return Path(path)


def paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def preformatted(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"
