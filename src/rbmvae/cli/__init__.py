"""The ``rbmvae`` command line: a thin layer over the Python API.

Every failure the user can cause prints one line, ``rbmvae: error: ...``, and exits with status 2.
"""

from __future__ import annotations

import sys

from ..basics.errors import RbmvaeError
from .parser import build_parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RbmvaeError as error:
        print(f"rbmvae: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "rbmvae: interrupted; files already written are complete "
            "(an interrupted training run continues with the same command and --resume)",
            file=sys.stderr,
        )
        return 130


__all__ = ["build_parser", "main"]
