"""Parts of ``benchmarks/RESULTS.md`` that each benchmark script owns.

``run.py`` writes the top of the file; every other script (the equal-budget comparison, the
scaling sweep) replaces only its own part, between ``<!-- begin NAME -->`` and
``<!-- end NAME -->``, and keeps everything else, including the parts measured by hand.
"""

from __future__ import annotations

from pathlib import Path

HAND_MARKER = "<!-- measured by the study scripts and by hand: kept as they are by run.py -->"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- begin {name} -->", f"<!-- end {name} -->"


def replace_section(path: str | Path, name: str, text: str) -> None:
    """Put ``text`` between the markers of ``name`` in ``path`` (appended where they are not yet
    there), through a temporary file and a rename."""
    path = Path(path)
    begin, end = _markers(name)
    block = f"{begin}\n{text.strip()}\n{end}"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + block + "\n"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(new, encoding="utf-8")
    partial.replace(path)


def publish(path: str | Path | None, name: str, text: str) -> None:
    """Print a script's section, and put it into ``path`` (None: print only)."""
    print(text)
    if path:
        replace_section(path, name, text)


def kept_tail(path: str | Path) -> str:
    """What ``run.py`` keeps when it rewrites ``path``: everything from ``HAND_MARKER`` on."""
    path = Path(path)
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    return text[text.index(HAND_MARKER) :] if HAND_MARKER in text else ""
