"""Recipe files: a tuned training recipe as JSON, which ``rbmvae train --recipe FILE`` and
``rbmvae reproduce --set KIND=FILE`` read.

A recipe file holds the model kind, the model's size and the ``TrainConfig`` settings that differ
from that kind's defaults (``TrainConfig.defaults_for(kind)``; the seed is left out: whoever
trains the recipe chooses it), with where it came from::

    {"format": "rbmvae-recipe", "format_version": 1, "kind": "rbm",
     "model": {"n_hidden": 500},
     "settings": {"method": "pcd", "learning_rate": 0.021, "epochs": 74},
     "source": {"study": "rbm500", "trial": 17, "score": -90.1, ...}}
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import TrainConfig
from ..basics.atomic import write_text
from ..basics.errors import ConfigError

RECIPE_FORMAT = "rbmvae-recipe"
RECIPE_VERSION = 1


def recipe_settings(kind: str, config: TrainConfig) -> dict:
    """The settings of ``config`` that differ from ``kind``'s defaults, the seed left out."""
    defaults = TrainConfig.defaults_for(kind).to_dict()
    return {
        name: value
        for name, value in config.to_dict().items()
        if name != "seed" and value != defaults[name]
    }


def write_recipe(path, kind: str, model: dict, config: TrainConfig, source: dict) -> dict:
    """Write the recipe file of ``config`` for a ``kind`` model of size ``model`` atomically."""
    recipe = {
        "format": RECIPE_FORMAT,
        "format_version": RECIPE_VERSION,
        "kind": kind,
        "model": dict(model),
        "settings": recipe_settings(kind, config),
        "source": source,
    }
    write_text(path, json.dumps(recipe, indent=2) + "\n")
    return recipe


def looks_like_file(name: str) -> bool:
    """Whether a ``--recipe`` value names a file (a path or ``*.json``) rather than a recipe."""
    return name.endswith(".json") or "/" in name or Path(name).is_file()


def read_recipe(path, kind: str | None = None) -> dict:
    """The recipe in ``path``, checked: its format, its kind (``kind``, when given) and that its
    settings are valid ``TrainConfig`` settings of that kind. Returns the whole recipe dict."""
    path = Path(path)
    try:
        recipe = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"recipe file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"recipe file {path}: cannot read it ({error})") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"recipe file {path}: not JSON ({error})") from None
    if not isinstance(recipe, dict) or recipe.get("format") != RECIPE_FORMAT:
        raise ConfigError(f"recipe file {path}: not an rbmvae recipe (format {RECIPE_FORMAT!r})")
    if recipe.get("format_version") != RECIPE_VERSION:
        raise ConfigError(
            f"recipe file {path}: format version {recipe.get('format_version')!r}, "
            f"this rbmvae reads version {RECIPE_VERSION}"
        )
    if kind is not None and recipe.get("kind") != kind:
        raise ConfigError(
            f"recipe file {path} holds a recipe for {recipe.get('kind')!r} models, not {kind!r}"
        )
    settings = recipe.get("settings")
    if not isinstance(settings, dict) or "seed" in settings:
        raise ConfigError(f"recipe file {path}: 'settings' must be an object of settings, no seed")
    try:
        TrainConfig.defaults_for(recipe["kind"], **settings)
    except (ConfigError, TypeError) as error:
        raise ConfigError(f"recipe file {path}: {error}") from None
    return recipe


def recipe_config(kind: str, value) -> TrainConfig:
    """The ``TrainConfig`` of a recipe given as a file path or as a dict of settings."""
    if not isinstance(value, dict | str | Path):
        raise ConfigError(
            f"a recipe for {kind!r} is a recipe file or an object of settings, got {value!r}"
        )
    settings = value if isinstance(value, dict) else read_recipe(value, kind)["settings"]
    if "seed" in settings:
        raise ConfigError("a recipe leaves the seed out; set it separately")
    return TrainConfig.defaults_for(kind, **settings)
