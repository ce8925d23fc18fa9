"""Runs' ``metrics.json`` read back, and their tables (:mod:`.tables`) written into Markdown files
(``rbmvae results``).

A Markdown file marks each generated block::

    <!-- rbmvae:results headline literature -->
    ... written by the command, replaced every time ...
    <!-- /rbmvae:results -->

naming the table (``headline``, ``training``, ``inpainting``) and the run (a run given on the
command line, named by its profile or as ``NAME=PATH``). Only the text between the two markers
changes; a block whose run was not given is left as it is. Writing the same runs twice gives the
same file, and the file is replaced atomically.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..basics.atomic import write_text
from ..basics.errors import ConfigError, DataError, RbmvaeError
from .tables import TABLES

METRICS_FILE = "metrics.json"
METRICS_FORMAT = "rbmvae-study"
OPEN = re.compile(r"<!-- rbmvae:results (?P<table>\S+) (?P<run>\S+) -->")
CLOSE = "<!-- /rbmvae:results -->"
RUN_NAME = re.compile(r"[A-Za-z0-9][\w.-]*")


class StaleError(RbmvaeError):
    """A checked file's generated blocks differ from what the runs' metrics give."""


def load_metrics(path: str | os.PathLike) -> dict:
    """A run's metrics: ``path`` is its ``metrics.json`` or the run directory holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such file; give a run directory of `rbmvae reproduce` or its "
            f"{METRICS_FILE}"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot be read ({error})") from None
    try:
        metrics = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(metrics, dict) or metrics.get("format") != METRICS_FORMAT:
        raise DataError(f'{path}: not the metrics of a study run (no "format": "{METRICS_FORMAT}")')
    if not isinstance(metrics.get("models"), dict):
        raise DataError(f'{path}: the metrics hold no "models"')
    return metrics


def load_runs(specs: list[str]) -> dict[str, dict]:
    """Runs by name, from ``PATH`` (named by its profile) or ``NAME=PATH`` arguments."""
    runs: dict[str, dict] = {}
    for spec in specs:
        name, equals, path = spec.partition("=")
        if not equals:
            name, path = "", spec
        metrics = load_metrics(path)
        name = name or str(metrics.get("settings", {}).get("profile") or "run")
        if not RUN_NAME.fullmatch(name):
            raise ConfigError(f"run name {name!r}: use letters, digits, '.', '-' and '_'")
        if name in runs:
            raise ConfigError(f"two runs are named {name!r}: name them apart with NAME=PATH")
        runs[name] = metrics
    return runs


def portable_metrics(metrics: dict, home: str | None = None) -> dict:
    """A copy of ``metrics`` fit to commit: every path under the home directory written as
    ``~/...`` (the classifier's cache, a model's directory), nothing else changed."""
    home = (home or os.path.expanduser("~")).rstrip("/")

    def clean(value):
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        if isinstance(value, str) and home and (value == home or value.startswith(home + "/")):
            return "~" + value[len(home) :]
        return value

    return clean(metrics)


def save_metrics_copy(metrics: dict, path: str | os.PathLike) -> Path:
    """Write :func:`portable_metrics` of ``metrics`` to ``path`` (atomically)."""
    path = Path(path)
    write_text(path, json.dumps(portable_metrics(metrics), indent=2) + "\n")
    return path


@dataclass
class Update:
    """What :func:`update_markdown` did: the new text, the blocks written, those of them whose
    text changed, and those left alone (each as ``"TABLE RUN"``)."""

    text: str
    written: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


def _blocks(text: str, source: str) -> list[tuple[re.Match, int, int]]:
    """Each opening marker with the start and end of the text it governs."""
    blocks = []
    for opening in OPEN.finditer(text):
        line = text.count("\n", 0, opening.start()) + 1
        close = text.find(CLOSE, opening.end())
        following = OPEN.search(text, opening.end())
        if close < 0 or (following and following.start() < close):
            raise DataError(f"{source}: line {line}: the marker has no {CLOSE} after it")
        if opening.group("table") not in TABLES:
            raise ConfigError(
                f"{source}: line {line}: unknown table {opening.group('table')!r}; "
                f"known: {', '.join(TABLES)}"
            )
        blocks.append((opening, opening.end(), close))
    if not blocks and CLOSE not in text:
        raise DataError(
            f"{source}: no <!-- rbmvae:results TABLE RUN --> markers; add one where a table "
            "belongs (TABLE: " + ", ".join(TABLES) + ")"
        )
    closes = text.count(CLOSE)
    if closes != len(blocks):
        raise DataError(f"{source}: {closes} closing markers for {len(blocks)} opening ones")
    return blocks


def update_markdown(text: str, runs: dict[str, dict], source: str = "the file") -> Update:
    """``text`` with every marked block whose run is in ``runs`` rewritten from its metrics."""
    update = Update(text="")
    pieces, position = [], 0
    for opening, start, end in _blocks(text, source):
        table, run = opening.group("table"), opening.group("run")
        pieces.append(text[position:start])
        if run in runs:
            block = "\n" + TABLES[table](runs[run]).rstrip("\n") + "\n"
            pieces.append(block)
            update.written.append(f"{table} {run}")
            if block != text[start:end]:
                update.changed.append(f"{table} {run}")
        else:
            pieces.append(text[start:end])
            update.left.append(f"{table} {run}")
        position = end
    pieces.append(text[position:])
    update.text = "".join(pieces)
    return update


def _read_markdown(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such file; the tables are written between markers in an existing file"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot be read ({error})") from None


def write_tables(path: str | os.PathLike, runs: dict[str, dict]) -> Update:
    """Rewrite the marked blocks of the Markdown file ``path`` from ``runs`` (atomically; the
    file is not touched when nothing in it changes)."""
    path = Path(path)
    text = _read_markdown(path)
    update = update_markdown(text, runs, str(path))
    if update.text != text:
        write_text(path, update.text)
    return update


def check_tables(path: str | os.PathLike, runs: dict[str, dict]) -> Update:
    """Raise :class:`StaleError` if writing ``runs`` would change the file ``path``."""
    path = Path(path)
    text = _read_markdown(path)
    update = update_markdown(text, runs, str(path))
    if update.changed:
        raise StaleError(
            f"{path}: the block(s) {', '.join(update.changed)} differ from the runs' "
            f"metrics.json; rewrite them with `rbmvae results ... --write {path}`"
        )
    return update
