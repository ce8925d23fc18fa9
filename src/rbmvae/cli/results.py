"""The ``results`` command's arguments (its tables come from :mod:`rbmvae.study.tables`)."""

from __future__ import annotations

from . import commands


def add_results(commands_) -> None:
    """``results``: the tables of runs' metrics.json, printed or written between markers."""
    from ..study.tables import TABLES  # light: the table writers only

    results = commands_.add_parser(
        "results",
        help="the results tables of runs (from their metrics.json), printed or written into "
        "Markdown files between <!-- rbmvae:results TABLE RUN --> markers",
    )
    results.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="a run directory of `rbmvae reproduce` or its metrics.json, named by its profile; "
        "NAME=PATH names it",
    )
    results.add_argument(
        "--table", choices=tuple(TABLES), help="print only this table (default: all of them)"
    )
    results.add_argument(
        "--write",
        action="append",
        default=[],
        metavar="FILE.md",
        help="rewrite the blocks between the markers of FILE.md whose run is given (repeatable)",
    )
    results.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="FILE.md",
        help="fail if FILE.md's blocks differ from what --write would write (repeatable)",
    )
    results.add_argument(
        "--copy",
        metavar="FILE.json",
        help="also write a copy of the (one) run's metrics.json, home-directory paths as ~/...",
    )
    results.set_defaults(func=commands.cmd_results)
