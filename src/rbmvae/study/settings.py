"""The study's settings: one typed object built from the library's own settings types.

:class:`StudySettings` holds the data set, the seed, the grid of model sizes, one
:class:`~rbmvae.training.TrainConfig` per model kind and one
:class:`~rbmvae.evaluation.EvaluationSettings`. The profiles ``quick`` and ``full`` are two
values of it; ``--set KEY=VALUE`` changes one field by its dotted name (``rbm.epochs=10``,
``evaluation.ais_betas=30000``, ``rbm_hidden=[20,50]``), the value read as JSON; ``rbm=FILE``
replaces a kind's training settings by a recipe file's (``rbmvae tune``'s ``best-recipe.json``)
or by a JSON object of settings over the kind's defaults.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..basics.checks import positive_int
from ..basics.errors import ConfigError
from ..evaluation import EvaluationSettings
from ..training import TrainConfig
from ..tuning.recipe import recipe_config


@dataclass(frozen=True)
class ModelSpec:
    """One model of the study: its directory name (``rbm-h20``), kind and constructor arguments
    (all but ``n_visible``, which the data set gives)."""

    name: str
    kind: str
    config: dict


def _rbm_specs(settings: StudySettings) -> list[ModelSpec]:
    return [ModelSpec(f"rbm-h{h}", "rbm", {"n_hidden": h}) for h in settings.rbm_hidden]


def _vae_specs(settings: StudySettings) -> list[ModelSpec]:
    return [
        ModelSpec(f"vae-z{z}", "vae", {"n_latent": z, "n_hidden": settings.vae_hidden})
        for z in settings.vae_latent
    ]


# The models of each kind that a study trains, from its size fields; the study's model kinds.
MODEL_GRIDS: dict[str, Callable[[StudySettings], list[ModelSpec]]] = {
    "rbm": _rbm_specs,
    "vae": _vae_specs,
}

_SIZES = ("rbm_hidden", "vae_latent")
_TOP_LEVEL = ("dataset", "seed", *_SIZES, "vae_hidden", "figure_digits")


def _sizes(name: str, values: object) -> tuple[int, ...]:
    ok = isinstance(values, list | tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
    )
    if not ok:
        raise ConfigError(f"{name} must be a list of positive integers, got {values!r}")
    return tuple(values)


@dataclass(frozen=True)
class StudySettings:
    """Every setting of ``rbmvae reproduce``.

    ``rbm_hidden`` and ``vae_latent`` list the models (RBMs by hidden units, VAEs by code size,
    each VAE with ``vae_hidden`` hidden units; either list may be empty); ``training`` maps each
    model kind to its :class:`TrainConfig`, whose ``seed`` is always the study's ``seed`` (it
    also seeds the figures); ``evaluation`` scores every model; ``figure_digits`` test digits
    appear in the inpainting and reconstruction figures.
    """

    profile: str
    dataset: str
    seed: int
    rbm_hidden: tuple[int, ...]
    vae_latent: tuple[int, ...]
    vae_hidden: int
    figure_digits: int
    training: Mapping[str, TrainConfig]
    evaluation: EvaluationSettings

    def __post_init__(self) -> None:
        for name in ("profile", "dataset"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        for name in _SIZES:
            object.__setattr__(self, name, _sizes(name, getattr(self, name)))
        positive_int("vae_hidden", self.vae_hidden)
        positive_int("figure_digits", self.figure_digits)
        if not isinstance(self.evaluation, EvaluationSettings):
            raise ConfigError("evaluation must be an EvaluationSettings")
        kinds_ok = isinstance(self.training, Mapping) and set(self.training) == set(MODEL_GRIDS)
        if not kinds_ok or not all(isinstance(c, TrainConfig) for c in self.training.values()):
            raise ConfigError(f"training needs a TrainConfig for each of {', '.join(MODEL_GRIDS)}")
        configs = {kind: config.replace(seed=self.seed) for kind, config in self.training.items()}
        object.__setattr__(self, "training", MappingProxyType(configs))

    def replace(self, **changes) -> StudySettings:
        """A validated copy with ``changes`` (field names as keys; an unknown name is refused)."""
        known = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ConfigError(f"unknown study setting {unknown[0]!r}; known: {', '.join(known)}")
        return dataclasses.replace(self, **changes)

    def train_config(self, kind: str) -> TrainConfig:
        """A copy of the training settings of ``kind`` models."""
        return self.training[kind].replace()

    def model_specs(self) -> list[ModelSpec]:
        """Every model of the study, kind by kind in ``MODEL_GRIDS`` order."""
        return [spec for grid in MODEL_GRIDS.values() for spec in grid(self)]

    def to_dict(self) -> dict:
        """JSON-ready: the fields, with each kind's training settings under the kind's name."""
        out = {"profile": self.profile}
        out.update({name: getattr(self, name) for name in _TOP_LEVEL})
        out.update({name: list(getattr(self, name)) for name in _SIZES})
        out.update({kind: config.to_dict() for kind, config in self.training.items()})
        out["evaluation"] = self.evaluation.to_dict()
        return out


QUICK = StudySettings(
    profile="quick",
    dataset="mnist-sample",
    seed=0,
    rbm_hidden=(20, 100, 500),
    vae_latent=(2, 8, 16),
    vae_hidden=256,
    figure_digits=6,
    training={
        "rbm": TrainConfig.defaults_for("rbm", epochs=5, method="cd", k=1),
        "vae": TrainConfig.defaults_for("vae", epochs=5),
    },
    # A demo: every section of the report, each scored on few digits with short chains (the
    # full and literature profiles keep their own settings, spelled out below).
    evaluation=EvaluationSettings(
        seed=0,
        likelihood_images=500,
        iwae_images=200,
        ais_runs=32,
        ais_betas=1000,
        iwae_k=100,
        fractions=(0.2, 0.5, 0.8),
        inpaint_images=50,
        inpaint_steps=60,
        # the conditional log-likelihoods of the missing pixels on 5 digits per mask, by AIS
        # with 8 runs of 200 betas where the RBM is too large to enumerate, by 100 samples for
        # a VAE
        conditional_images=5,
        conditional_k=100,
        conditional_ais_runs=8,
        conditional_ais_betas=200,
        raise_images=10,
        quadrature_grid=201,
        quadrature_check_images=0,
    ),
)

# The best quality the whole study reaches in about 15 minutes on a 2-core CPU, on full MNIST
# (benchmarks/RESULTS.md, "RBM recipes" and "VAE training recipes"): PCD-1 over 75 epochs for the
# RBMs, one persistent chain per batch row, the rate decaying linearly from 0.02, momentum 0.5
# (measured at 500 hidden: -88.81 nats, against -94.56 for CD with k rising from 1 to 25 over 12
# epochs, the previous choice, and -89.20 at rate 0.04); 30 epochs of Adam with a cosine-decaying
# rate on dynamically binarized digits for the VAEs; every model scored on all 10,000 binarized
# test digits, two worker processes side by side.
FULL = QUICK.replace(
    profile="full",
    dataset="mnist",
    figure_digits=8,
    training={
        "rbm": TrainConfig.defaults_for("rbm", recipe="pcd", epochs=75, learning_rate=0.02),
        "vae": TrainConfig.defaults_for(
            "vae",
            epochs=30,
            binarize="stochastic",
            lr_schedule="cosine",
            learning_rate=1e-3,
            final_lr_fraction=0.1,
        ),
    },
    # Spelled out, not derived from QUICK's: a faster quick profile must not change the full one.
    evaluation=EvaluationSettings(
        seed=0,
        likelihood_images=None,
        iwae_images=None,
        ais_runs=100,
        ais_betas=14500,
        iwae_k=500,
        fractions=(0.2, 0.5, 0.8),
        inpaint_images=500,
        inpaint_steps=100,
        inpaint_chains=10,
        inpaint_start="neighbours",
        halves=("top", "bottom"),
        conditional_images=100,
        conditional_ais_runs=16,
        conditional_ais_betas=300,
        raise_images=100,
        quadrature_check_images=1000,
    ),
)

# The literature's quality, for as long as it takes: PCD-1 (Tieleman 2008) with one persistent
# chain per batch row over 300 epochs, the rate decaying linearly from 0.01 and the momentum held
# at 0.5 (recipe "pcd"): at 500 hidden units -85.57 nats after 20 minutes on one thread, beside
# -91.76 for CD with k rising from 1 to 100 over 36 epochs after 55 (benchmarks/RESULTS.md, "PCD
# over many epochs"). VAEs: the importance-weighted bound (k = 5) in minibatches of 128 for 200
# epochs, Adam's rate decaying by a cosine from 3e-3 to 3e-4; chosen on a validation split (the
# last 10,000 training digits; benchmarks/RESULTS.md, "VAE recipes on a validation split"), where
# at 30 epochs the rate 3e-3 gained 2.2 nats over 1e-3, batches of 64 one nat over 128 (at 1e-3),
# and a KL warm-up nothing. Each model is scored on all 10,000 test digits: AIS for the RBMs, IWAE with K = 5,000
# for the VAEs, and quadrature for z = 2.
LITERATURE = FULL.replace(
    profile="literature",
    training={
        "rbm": TrainConfig.defaults_for("rbm", recipe="pcd", epochs=300),
        "vae": TrainConfig.defaults_for(
            "vae",
            epochs=200,
            batch_size=128,
            binarize="stochastic",
            lr_schedule="cosine",
            learning_rate=3e-3,
            final_lr_fraction=0.1,
            iwae_k=5,
        ),
    },
    # Spelled out, not derived from FULL's: a change to the full profile must not invalidate the
    # literature run's cached evaluations.
    evaluation=EvaluationSettings(
        seed=0,
        likelihood_images=None,
        iwae_images=None,
        ais_runs=100,
        ais_betas=14500,
        iwae_k=5000,
        fractions=(0.2, 0.5, 0.8),
        inpaint_images=1000,
        inpaint_steps=100,
        inpaint_chains=10,
        inpaint_start="neighbours",
        halves=("top", "bottom"),
        conditional_images=200,
        conditional_ais_betas=500,
        raise_images=100,
        inpaint_stability=True,
    ),
)

PROFILES: dict[str, StudySettings] = {"quick": QUICK, "full": FULL, "literature": LITERATURE}

# Keys of earlier versions, refused with the name that replaced them.
RENAMED = {
    "evaluation.loglik_images": "evaluation.likelihood_images",
    "evaluation.binarize_seed": "evaluation.seed",
    "evaluation.figure_digits": "figure_digits",
}


def _unknown(key: str) -> ConfigError:
    return ConfigError(f"unknown setting {key!r}; see `rbmvae reproduce --show-settings`")


def _field_names(settings_type) -> set[str]:
    return {f.name for f in dataclasses.fields(settings_type)}


def _with_field(settings: StudySettings, key: str, value: object) -> StudySettings:
    """``settings`` with the field at the dotted ``key`` set to ``value``."""
    section, _, name = key.partition(".")
    if not name and key in settings.training:  # a whole recipe: a recipe file or {settings}
        return settings.replace(training={**settings.training, key: recipe_config(key, value)})
    if not name:
        if key == "profile":
            raise ConfigError("choose the profile with --profile, not --set profile=...")
        if key not in _TOP_LEVEL:
            raise _unknown(key)
        return settings.replace(**{key: value})
    if "." in name:
        raise _unknown(key)
    if section == "evaluation" and name in _field_names(EvaluationSettings):
        return settings.replace(evaluation=settings.evaluation.replace(**{name: value}))
    if section in settings.training and name in _field_names(TrainConfig):
        if name == "seed":
            raise ConfigError("every model trains with the study's seed: use --set seed=N")
        changed = {
            **settings.training,
            section: settings.training[section].replace(**{name: value}),
        }
        return settings.replace(training=changed)
    raise _unknown(key)


def apply_override(settings: StudySettings, assignment: str) -> StudySettings:
    """``settings`` with ``KEY=VALUE`` applied (dotted keys, JSON values: ``rbm.epochs=10``,
    ``rbm_hidden=[20,50]``; a value that is not JSON is a string)."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} is not KEY=VALUE (e.g. rbm.epochs=10)")
    key, text = assignment.split("=", 1)
    key = key.strip()
    if key in RENAMED:
        raise ConfigError(f"setting {key!r} is now called {RENAMED[key]!r}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    try:
        return _with_field(settings, key, value)
    except (TypeError, ValueError) as error:  # ConfigError is a ValueError: keep its message
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"setting {key!r}: {value!r} is not a valid value ({error})") from None


def resolve_settings(profile: str, overrides: list[str] | None = None, **direct) -> StudySettings:
    """The profile's settings with ``overrides`` (``KEY=VALUE``) and the non-None ``direct``
    top-level fields (``dataset="mnist"``) applied, in that order."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    settings = PROFILES[profile]
    for assignment in overrides or []:
        settings = apply_override(settings, assignment)
    changes = {key: value for key, value in direct.items() if value is not None}
    return settings.replace(**changes) if changes else settings
