"""The settings of one training run (:class:`TrainConfig`), the choices of its enumerated
fields, each model kind's defaults (``KIND_DEFAULTS``) and the named recipes (``RECIPES``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..basics.checks import one_of, positive_int
from ..basics.errors import ConfigError
from ..data import BINARIZATIONS
from ..models.rbm import BERNOULLI_DRAWS
from .objectives import RBM_INITS, RBM_METHODS

OPTIMIZERS = ("sgd", "adam")
BERNOULLI_BITS = tuple(BERNOULLI_DRAWS)  # 24, 16
LR_SCHEDULES = ("constant", "linear", "cosine", "exponential")


@dataclass
class TrainConfig:
    """Settings of one training run. ``TrainConfig.defaults_for(kind)`` gives each model's defaults.

    ``binarize``: ``none`` trains on grey values used as Bernoulli probabilities; ``stochastic``
    draws a fresh binary image from each grey image every epoch (dynamic binarization, needed for
    honest likelihoods); ``threshold`` uses pixels > 0.5.
    """

    epochs: int = 20
    batch_size: int = 100
    learning_rate: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.5
    final_momentum: float = 0.9
    momentum_switch_epoch: int = 5
    weight_decay: float = 1e-4
    lr_schedule: str = "linear"
    binarize: str = "stochastic"
    method: str = "cd"
    k: int = 1
    seed: int = 0
    monitor_size: int = 1000
    # RBM recipes (docs/derivation.md, s. 1.11-1.12): k rising to k_final (0: fixed k), the
    # number of persistent chains (0: the batch size), parallel tempering's temperatures, the
    # initialization ("assignment": the original assignment's), and the centered gradient
    # (s. 1.13: Melchior, Fischer and Wiskott 2016).
    k_final: int = 0
    chains: int = 0
    pt_temperatures: int = 10
    pt_min_beta: float = 0.5
    init: str = "hinton"
    centering: bool = False
    # the random bits of each Bernoulli draw of the RBM's chains: 24 (torch.rand's float32
    # uniforms) or 16 (Eq. 1.20: P(1) within 2^-17 of p, at less than half the cost per draw)
    bernoulli_bits: int = 24
    # VAE: bound trained (1: ELBO, k > 1: L_k of Eq. 2.7), KL warm-up epochs (0: none, Eq. 2.8);
    # the cosine and exponential schedules end at final_lr_fraction * learning_rate
    iwae_k: int = 1
    kl_warmup_epochs: float = 0.0
    final_lr_fraction: float = 0.1

    @classmethod
    def defaults_for(cls, kind: str, recipe: str | None = None, **overrides) -> TrainConfig:
        """Defaults per model kind (``KIND_DEFAULTS``; the README explains them), then the named
        ``recipe`` (``RECIPES``, RBM only), then ``overrides``."""
        if kind not in KIND_DEFAULTS:
            raise ConfigError(f"no training defaults for model kind {kind!r}")
        if recipe is not None and recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
        settings = {**KIND_DEFAULTS[kind], **(RECIPES[recipe] if recipe else {})}
        return cls(**settings).replace(**overrides)

    @classmethod
    def completed(cls, stored: dict | None) -> dict | None:
        """A stored settings dict with every setting added since it was written at its default
        (a new setting's default reproduces the training done before it existed)."""
        if not isinstance(stored, dict):
            return stored
        return {**{f.name: f.default for f in dataclasses.fields(cls)}, **stored}

    def replace(self, **overrides) -> TrainConfig:
        """A validated copy with ``overrides`` (setting names as keys; unknown names refused)."""
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        config = dataclasses.replace(self, **overrides)
        config.validate()
        return config

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "k", "monitor_size"):
            positive_int(name.replace("_", " "), getattr(self, name))
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(f"learning rate must be positive, got {self.learning_rate}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight decay must be >= 0, got {self.weight_decay}")
        for name in ("momentum", "final_momentum"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', ' ')} must be in [0, 1)")
        positive_int("iwae k", self.iwae_k)
        if not (math.isfinite(self.kl_warmup_epochs) and self.kl_warmup_epochs >= 0):
            raise ConfigError(f"KL warm-up epochs must be >= 0, got {self.kl_warmup_epochs}")
        if not 0 < self.final_lr_fraction <= 1:
            raise ConfigError(f"final lr fraction must be in (0, 1], got {self.final_lr_fraction}")
        if self.momentum_switch_epoch < 0:
            raise ConfigError("momentum switch epoch must be >= 0")
        for name in ("k_final", "chains"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be an integer >= 0")
        positive_int("PT temperatures", self.pt_temperatures)
        if self.bernoulli_bits not in BERNOULLI_BITS or isinstance(self.bernoulli_bits, bool):
            raise ConfigError(f"bernoulli bits must be 24 or 16, got {self.bernoulli_bits!r}")
        if not isinstance(self.centering, bool):
            raise ConfigError(f"centering must be true or false, got {self.centering!r}")
        if not 0 <= self.pt_min_beta < 1:
            raise ConfigError(f"pt min beta must be in [0, 1), got {self.pt_min_beta}")
        for name, allowed in CHOICES.items():
            one_of(name.replace("_", " "), getattr(self, name), allowed)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def learning_rate_at(self, epoch: int) -> float:
        """Learning rate of ``epoch`` (0-based): constant, linear decay towards 0, or cosine or
        exponential decay from ``learning_rate`` to ``final_lr_fraction * learning_rate``."""
        if self.lr_schedule == "linear":
            return self.learning_rate * (1.0 - epoch / self.epochs)
        progress, floor = epoch / max(1, self.epochs - 1), self.final_lr_fraction
        if self.lr_schedule == "cosine":
            cosine = (1 + math.cos(math.pi * progress)) / 2
            return self.learning_rate * (floor + (1 - floor) * cosine)
        if self.lr_schedule == "exponential":
            return self.learning_rate * floor**progress
        return self.learning_rate

    def momentum_at(self, epoch: int) -> float:
        return self.momentum if epoch < self.momentum_switch_epoch else self.final_momentum


# The choices of each enumerated setting (the command line offers the same).
CHOICES = {
    "optimizer": OPTIMIZERS,
    "lr_schedule": LR_SCHEDULES,
    "binarize": BINARIZATIONS,
    "method": RBM_METHODS,
    "init": RBM_INITS,
}

# Named RBM training recipes (``TrainConfig.defaults_for("rbm", recipe=...)``); each is measured
# in benchmarks/RESULTS.md. "assignment" is the original assignment's: CD-30, learning rate 0.1,
# batch 64, 3 epochs, no momentum or weight decay, W ~ N(0, 0.1) truncated, biases 0.1, grey
# pixels as data.
RECIPES: dict[str, dict] = {
    "assignment": {
        "method": "cd",
        "k": 30,
        "learning_rate": 0.1,
        "batch_size": 64,
        "epochs": 3,
        "momentum": 0.0,
        "final_momentum": 0.0,
        "weight_decay": 0.0,
        "lr_schedule": "constant",
        "binarize": "none",
        "init": "assignment",
    },
    "cd-rising": {"method": "cd", "k": 1, "k_final": 10, "learning_rate": 0.05},
    # PCD-1 with one persistent chain per batch row, the rate decaying linearly from 0.01 and
    # the momentum held at 0.5 (at 0.9 a step is ten times the rate, not twice, and the chains
    # fall behind the model: derivation s. 1.8)
    "pcd": {"method": "pcd", "k": 1, "learning_rate": 0.01, "final_momentum": 0.5},
    "pcd-chains": {"method": "pcd", "k": 1, "chains": 500, "learning_rate": 0.01},
    "pt": {"method": "pt", "k": 1, "chains": 50, "learning_rate": 0.01, "pt_temperatures": 10},
}

# What differs from the TrainConfig defaults (the RBM's) for each model kind.
KIND_DEFAULTS: dict[str, dict] = {
    "rbm": {},
    "vae": {
        "epochs": 20,
        "batch_size": 128,
        "learning_rate": 1e-3,
        "optimizer": "adam",
        "weight_decay": 0.0,
        "lr_schedule": "constant",
        "binarize": "none",
    },
}
