"""Every setting of ``rbmvae tune`` (:class:`TuneSettings`) and what a trial trains from it."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .. import TrainConfig
from ..basics.checks import positive_int, positive_number
from ..basics.errors import ConfigError
from .recipe import looks_like_file, recipe_config

KINDS = ("rbm", "vae")
PRUNERS = ("median", "none")
# What a trial reports to the pruner every `report_every` epochs, per model kind (the first is
# the default): the validation digits' pseudo-log-likelihood or a short forward AIS for an RBM,
# the validation ELBO that fit monitors for a VAE.
INTERMEDIATES = {"rbm": ("pll", "ais"), "vae": ("elbo",)}
MODEL_DEFAULTS = {"rbm": {"n_hidden": 500}, "vae": {"n_hidden": 256, "n_latent": 16}}


@dataclass(frozen=True)
class TuneSettings:
    """One study of ``rbmvae tune``.

    ``trials`` trials (counted as those that end complete or pruned) of a ``kind`` model of size
    ``model`` (``n_hidden``; a VAE also ``n_latent``), each trained by ``fit`` from ``base``
    (``TrainConfig`` settings: the kind's defaults, the named RBM ``recipe``, then these) with the
    values of the search ``space`` (a dict or a JSON file; None: the kind's default). With
    ``minutes`` each trial's epochs are set from a timed pilot to train for about that many CPU
    minutes. The training digits are the first ``train_images`` (None: all) less the last
    ``validation`` (None: a sixth, the last 10,000 of MNIST's 60,000), on which a trial is scored:
    the RAISE end of the AIS bracket (``ais_runs`` x ``ais_betas``, RAISE from ``raise_images``,
    the doubled-betas check when ``ais_doubled_check``) for an RBM, IWAE with ``iwae_k`` samples
    for a VAE, on the first ``score_images`` validation digits (None: all). ``storage`` is an
    SQLAlchemy URL (None: ``sqlite:///OUT/study.db``); workers keep a heartbeat every
    ``heartbeat`` s and a trial without one for ``grace`` s is failed, and retried ``retries``
    times.
    """

    kind: str
    study: str
    trials: int
    storage: str | None = None
    out: str | None = None
    space: object = None
    minutes: float | None = None
    jobs: int = 1
    dataset: str | None = None
    data_dir: str | None = None
    train_images: int | None = None
    validation: int | None = None
    model: dict = field(default_factory=dict)
    recipe: str | None = None
    base: dict = field(default_factory=dict)
    seed: int = 0
    score_images: int | None = None
    ais_runs: int = 100
    ais_betas: int = 14500
    raise_images: int = 100
    ais_doubled_check: bool = True
    iwae_k: int = 500
    pruner: str = "median"
    report_every: int = 5
    intermediate: str | None = None
    prune_ais_runs: int = 16
    prune_ais_betas: int = 1000
    threads: int = 1
    device: str = "cpu"
    heartbeat: int = 60
    grace: int = 180
    retries: int = 1
    max_failures: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown model kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if not isinstance(self.study, str) or not self.study.strip():
            raise ConfigError("the study needs a name (--study NAME)")
        for name in ("trials", "jobs", "threads", "heartbeat", "grace", "report_every"):
            positive_int(name, getattr(self, name))
        for name in ("train_images", "validation", "score_images", "max_failures"):
            if getattr(self, name) is not None:
                positive_int(name.replace("_", " "), getattr(self, name))
        if self.minutes is not None:
            positive_number("minutes", self.minutes)
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"retries must be an integer >= 0, got {self.retries!r}")
        if self.grace <= self.heartbeat:
            raise ConfigError(
                f"the grace period ({self.grace} s) must be longer than the heartbeat "
                f"interval ({self.heartbeat} s)"
            )
        if self.pruner not in PRUNERS and not hasattr(self.pruner, "prune"):
            raise ConfigError(f"unknown pruner {self.pruner!r}; choose one of {', '.join(PRUNERS)}")
        intermediate = self.intermediate or INTERMEDIATES[self.kind][0]
        if intermediate not in INTERMEDIATES[self.kind]:
            raise ConfigError(
                f"a {self.kind} reports {' or '.join(INTERMEDIATES[self.kind])} to the pruner, "
                f"not {intermediate!r}"
            )
        object.__setattr__(self, "intermediate", intermediate)
        model = {**MODEL_DEFAULTS[self.kind], **{k: v for k, v in self.model.items() if v}}
        unknown = sorted(set(model) - set(MODEL_DEFAULTS[self.kind]))
        if unknown:
            raise ConfigError(f"unknown {self.kind} size {unknown[0]!r}")
        for name, value in model.items():
            positive_int(name.replace("_", " "), value)
        object.__setattr__(self, "model", model)
        if not isinstance(self.raise_images, int) or self.raise_images < 1:
            raise ConfigError(
                f"raise images must be >= 1 (an RBM trial scores the RAISE end), got "
                f"{self.raise_images!r}"
            )
        self.base_config()

    def base_config(self) -> TrainConfig:
        """The settings every trial starts from: the kind's defaults, ``recipe``, ``base``, and
        the study's ``seed``."""
        if self.recipe is not None and looks_like_file(self.recipe):
            config = recipe_config(self.kind, self.recipe)
        else:
            config = TrainConfig.defaults_for(self.kind, recipe=self.recipe)
        return config.replace(**{**self.base, "seed": self.seed})

    def replace(self, **changes) -> TuneSettings:
        return dataclasses.replace(self, **changes)

    def identity(self, space: dict, data: dict) -> dict:
        """What every worker of one study must share: the model, the trials' settings and space,
        the data (by name and counts, not by path) and the scoring; JSON-ready."""
        shared = (
            "kind",
            "minutes",
            "seed",
            "score_images",
            "ais_runs",
            "ais_betas",
            "raise_images",
            "ais_doubled_check",
            "iwae_k",
            "report_every",
            "intermediate",
            "prune_ais_runs",
            "prune_ais_betas",
        )
        out = {name: getattr(self, name) for name in shared}
        return {
            **out,
            "model": self.model,
            "base": self.base_config().to_dict(),
            "space": space,
            "data": data,
        }


def validation_count(n_train: int, asked: int | None) -> int:
    """The validation digits: ``asked``, or a sixth of the training digits (10,000 of 60,000)."""
    return asked if asked is not None else max(1, math.floor(n_train / 6))
