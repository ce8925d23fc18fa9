"""Argument types of the command line and its parser class (errors on one line, exit status 2)."""

from __future__ import annotations

import argparse

from ..basics.checks import fraction
from ..basics.errors import ConfigError


def _bounded_number(convert, noun: str, accept, rule: str, name: str):
    """An argparse type: ``convert`` the text, then require ``accept(value)``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{rule}, got {value}")
        return value

    parse.__name__ = name
    return parse


positive_int = _bounded_number(
    int, "an integer", lambda v: v > 0, "must be a positive integer", "positive_int"
)
nonnegative_int = _bounded_number(
    int, "an integer", lambda v: v >= 0, "must be >= 0", "nonnegative_int"
)
positive_float = _bounded_number(
    float, "a number", lambda v: v > 0, "must be positive", "positive_float"
)
nonnegative_float = _bounded_number(
    float, "a number", lambda v: v >= 0, "must be >= 0", "nonnegative_float"
)


def recipe_name_or_file(text: str) -> str:
    """A named recipe (``train_config.RECIPES``) or the path of a recipe file (``*.json``)."""
    from ..training.config import RECIPES
    from ..tuning.recipe import looks_like_file

    if text in RECIPES or looks_like_file(text):
        return text
    raise argparse.ArgumentTypeError(
        f"unknown recipe {text!r}; choose one of {', '.join(RECIPES)} or give a recipe file (.json)"
    )


def job_count(text: str) -> int | None:
    """``auto`` (None: one worker process per CPU core) or a positive number of processes."""
    if text == "auto":
        return None
    return positive_int(text)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a fraction; give e.g. 0.2,0.5,0.8 or none"
        ) from None
    try:
        return fraction("missing fraction", value)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def mask_spec(text: str) -> str:
    """A missing-pixel spec: a fraction in [0, 1), ``square:SIZE`` or ``half:SIDE``
    (``masks.make_mask`` checks the rest)."""
    if text.startswith(("square:", "half:")):
        return text
    try:
        float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a fraction, square:SIZE or half:top|bottom|left|right"
        ) from None
    _fraction(text)
    return text


def fraction_list(text: str) -> tuple[float, ...]:
    """Comma-separated missing fractions in [0, 1), or ``none`` for no inpainting."""
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(_fraction(item) for item in text.split(","))


class Parser(argparse.ArgumentParser):
    """argparse, with errors on one line and exit status 2."""

    def error(self, message: str):  # noqa: D401
        command = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        self.exit(2, f"rbmvae: error: {command}{message} (see {self.prog} --help)\n")
