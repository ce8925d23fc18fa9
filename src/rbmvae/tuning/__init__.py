"""``rbmvae tune``: recipe search on Optuna, one study shared by workers on any number of
machines through its storage (an SQLite file in the run directory, or a PostgreSQL URL).

Each trial trains with ``fit`` on the training digits less a validation split and is scored on
that split (an RBM by the RAISE end of the AIS bracket, a VAE by IWAE), reporting to a pruner while
it trains. Optuna is imported only when a study runs: ``pip install 'rbmvae[tune]'``.
See docs/tuning.md.
"""

from .recipe import read_recipe, recipe_config, write_recipe
from .run import open_study, tune
from .settings import TuneSettings
from .space import Space, default_space, load_space, parse_space
from .storage import INSTALL_HINT, require_optuna

__all__ = [
    "INSTALL_HINT",
    "Space",
    "TuneSettings",
    "default_space",
    "load_space",
    "open_study",
    "parse_space",
    "read_recipe",
    "recipe_config",
    "require_optuna",
    "tune",
    "write_recipe",
]
