"""Search spaces as data: ``TrainConfig`` field names mapped to a range, a list of choices or a
fixed value, read from JSON (a default per model kind in ``spaces/KIND.json``) and checked
before any trial runs.

A space file is one JSON object::

    {"learning_rate": {"low": 0.002, "high": 0.1, "log": true},   # a float range, log-uniform
     "k": {"low": 1, "high": 5},                                   # an integer range
     "batch_size": {"low": 50, "high": 200, "step": 50},           # a range on a grid
     "method": {"choices": ["cd", "pcd"]},                         # a categorical choice
     "epochs": 30}                                                 # fixed for every trial

A range takes the type of the field's default (integer fields need integer bounds); every bound
and choice must itself be a valid setting (``TrainConfig.replace`` checks it).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .. import TrainConfig
from ..basics.errors import ConfigError

RANGE_KEYS = {"low", "high", "log", "step"}
FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


@dataclass(frozen=True)
class Dimension:
    """One searched field: a range ``[low, high]`` (``log``-uniform, or on a grid of ``step``)
    or a list of ``choices``."""

    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple | None = None

    def suggest(self, trial):
        """The value an Optuna ``trial`` proposes for this field."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if isinstance(self.low, int):
            return trial.suggest_int(
                self.name, self.low, self.high, log=self.log, step=self.step or 1
            )
        return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)

    def to_dict(self) -> dict:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        out = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class Space:
    """The fields fixed for every trial (``fixed``) and the searched ones (``dimensions``)."""

    fixed: dict
    dimensions: tuple[Dimension, ...]

    def suggest(self, trial) -> dict:
        """The settings of one trial: the fixed fields and a value of each searched one."""
        return {**self.fixed, **{d.name: d.suggest(trial) for d in self.dimensions}}

    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def to_dict(self) -> dict:
        """The space as it would be written to a file (fixed fields first)."""
        return {**self.fixed, **{d.name: d.to_dict() for d in self.dimensions}}


def default_space(kind: str) -> dict:
    """The default space of ``kind`` (``spaces/KIND.json``), as raw JSON."""
    source = resources.files(__package__).joinpath("spaces", f"{kind}.json")
    if not source.is_file():
        raise ConfigError(f"no default search space for model kind {kind!r}")
    return json.loads(source.read_text(encoding="utf-8"))


def read_space_file(path: str | Path) -> dict:
    """The raw JSON object of a space file; a missing or malformed file is a ConfigError."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"search space {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"search space {path}: cannot read it ({error})") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"search space {path}: not JSON ({error})") from None
    return raw


def _checked_value(base: TrainConfig, name: str, value, what: str):
    """``value`` as a setting of ``name`` (refused if the field would refuse it)."""
    kind = type(getattr(base, name))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise ConfigError(
            f"search space: {name}: {what} {value!r} is not a {kind.__name__} "
            f"(the field is a {kind.__name__})"
        )
    try:
        base.replace(**{name: value})
    except ConfigError as error:
        raise ConfigError(f"search space: {name}: {what} {value!r} refused: {error}") from None
    return value


def _dimension(base: TrainConfig, name: str, spec: dict) -> Dimension:
    if "choices" in spec:
        if set(spec) != {"choices"}:
            raise ConfigError(f"search space: {name}: give either choices or low/high, not both")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"search space: {name}: choices must be a non-empty list")
        checked = tuple(_checked_value(base, name, c, "choice") for c in choices)
        return Dimension(name, choices=checked)
    unknown = sorted(set(spec) - RANGE_KEYS)
    if unknown or not {"low", "high"} <= set(spec):
        raise ConfigError(
            f'search space: {name}: a range is {{"low": L, "high": H}} with optional '
            f'"log" and "step", got keys {", ".join(sorted(spec)) or "none"}'
        )
    if type(getattr(base, name)) not in (int, float):
        raise ConfigError(f"search space: {name} is not a number: give choices, not a range")
    low = _checked_value(base, name, spec["low"], "low")
    high = _checked_value(base, name, spec["high"], "high")
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ConfigError(f"search space: {name}: empty range, low {low!r} > high {high!r}")
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool):
        raise ConfigError(f"search space: {name}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"search space: {name}: a log range needs low > 0, got {low!r}")
    if step is not None:
        step = _step(name, step, low, high, log)
    return Dimension(name, low=low, high=high, log=log, step=step)


def _step(name: str, step, low, high, log: bool):
    if log:
        raise ConfigError(f"search space: {name}: give log or step, not both")
    if isinstance(step, bool) or not isinstance(step, type(low)) or not step > 0:
        raise ConfigError(
            f"search space: {name}: step must be a positive {type(low).__name__}, got {step!r}"
        )
    return step


def parse_space(raw, base: TrainConfig) -> Space:
    """``raw`` (a JSON object) checked against ``base``'s fields: each a range, choices or a fixed
    value. An unknown field, an empty range or a value of the wrong type is a ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError(f"search space must be a JSON object of fields, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise ConfigError(
            f"search space: unknown TrainConfig field {unknown[0]!r}; known: {', '.join(FIELDS)}"
        )
    fixed, dimensions = {}, []
    for name, spec in raw.items():
        if isinstance(spec, dict):
            dimensions.append(_dimension(base, name, spec))
        else:
            fixed[name] = _checked_value(base, name, spec, "fixed value")
    if fixed:
        base.replace(**fixed)
    return Space(fixed, tuple(dimensions))


def load_space(source, kind: str, base: TrainConfig) -> Space:
    """The space of a study: ``source`` a dict, a path to a JSON file, or None (the default of
    ``kind``), checked against ``base``."""
    if source is None:
        raw = default_space(kind)
    elif isinstance(source, str | Path):
        raw = read_space_file(source)
    else:
        raw = source
    return parse_space(raw, base)
