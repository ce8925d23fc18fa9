"""The one vocabulary of argument checks: each raises :class:`ConfigError` with a one-line message
that names the argument, the rule and the value given."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ConfigError


def positive_int(name: str, value: object) -> int:
    """``value`` if it is an integer > 0 (``bool`` is not), else a ConfigError."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def positive_number(name: str, value: object) -> float:
    """``value`` as a float if it is a finite number > 0, else a ConfigError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value < float("inf")
    ):
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return float(value)


def one_of(name: str, value: object, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``, else a ConfigError listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value  # type: ignore[return-value]


def fraction(name: str, value: object, *, closed_right: bool = False) -> float:
    """``value`` as a float in [0, 1) (or [0, 1] with ``closed_right``), else a ConfigError."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    inside = 0.0 <= number <= 1.0 if closed_right else 0.0 <= number < 1.0
    if not inside:
        interval = "[0, 1]" if closed_right else "[0, 1)"
        raise ConfigError(f"{name} {value!r} is outside {interval}")
    return number
