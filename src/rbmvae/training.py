"""One training loop for every model.

:func:`fit` owns what all models share: batching from a tensor kept on the device, the epoch
schedule (learning rate, momentum), the optimizer, progress bars, history, non-finite checks,
atomic checkpoints after every epoch, Ctrl-C and bit-exact resume. What differs between models
lives in an *objective* (:class:`ContrastiveDivergence` for the RBM, ``VAEObjective`` for the VAE):
how one step fills the gradients, and what is monitored at the end of an epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import checkpoint
from .data import BINARIZATIONS, Dataset, binarize
from .devices import make_generator
from .errors import CheckpointError, ConfigError, RbmvaeError, TrainingError
from .models.rbm import RBM, bernoulli

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "linear")
RBM_METHODS = ("pcd", "cd")


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

    @classmethod
    def defaults_for(cls, kind: str, **overrides) -> TrainConfig:
        """Defaults per model kind (the README explains them), with ``overrides`` applied."""
        if kind == "vae":
            base = cls(
                epochs=20,
                batch_size=128,
                learning_rate=1e-3,
                optimizer="adam",
                weight_decay=0.0,
                lr_schedule="constant",
                binarize="none",
            )
        else:
            base = cls()
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        config = dataclasses.replace(base, **overrides)
        config.validate()
        return config

    def validate(self) -> None:
        positive_ints = ("epochs", "batch_size", "k", "monitor_size")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(
                    f"{name.replace('_', ' ')} must be a positive integer, got {value}"
                )
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(f"learning rate must be positive, got {self.learning_rate}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight decay must be >= 0, got {self.weight_decay}")
        for name in ("momentum", "final_momentum"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', ' ')} must be in [0, 1)")
        if self.momentum_switch_epoch < 0:
            raise ConfigError("momentum switch epoch must be >= 0")
        choices = {
            "optimizer": OPTIMIZERS,
            "lr_schedule": LR_SCHEDULES,
            "binarize": BINARIZATIONS,
            "method": RBM_METHODS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"unknown {name.replace('_', ' ')} {getattr(self, name)!r}; "
                    f"choose one of {', '.join(allowed)}"
                )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def learning_rate_at(self, epoch: int) -> float:
        """Learning rate of ``epoch`` (0-based): constant, or linear decay towards 0."""
        if self.lr_schedule == "linear":
            return self.learning_rate * (1.0 - epoch / self.epochs)
        return self.learning_rate

    def momentum_at(self, epoch: int) -> float:
        return self.momentum if epoch < self.momentum_switch_epoch else self.final_momentum


# ------------------------------------------------------------------------------------------------
# Objectives


class Objective:
    """What one model kind contributes to :func:`fit`. Subclasses override the hooks."""

    def setup(
        self, model: nn.Module, train_images: torch.Tensor, generator: torch.Generator
    ) -> None:
        """Initialize the model (and any sampler state) from the training data."""

    def parameter_groups(self, model: nn.Module, config: TrainConfig) -> list[dict]:
        """Parameter groups for the optimizer; weight decay goes on weight matrices only."""
        decayed = [p for name, p in model.named_parameters() if "weight" in name]
        others = [p for name, p in model.named_parameters() if "weight" not in name]
        return [
            {"params": decayed, "weight_decay": config.weight_decay},
            {"params": others, "weight_decay": 0.0},
        ]

    def step(
        self, model: nn.Module, batch: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Fill ``p.grad`` for every parameter from one batch; return the scalar loss."""
        raise NotImplementedError

    def monitor(
        self, model: nn.Module, train_subset: torch.Tensor, test_images: torch.Tensor
    ) -> dict[str, float]:
        """Epoch-end metrics on a fixed training subset and the held-out test images."""
        return {}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Sampler state to keep for an exact resume."""
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass


class ContrastiveDivergence(Objective):
    """CD-k and persistent CD (PCD-k) for the RBM (docs/derivation.md, Eqs. 1.10-1.14).

    CD-k starts a Gibbs chain at each data batch; PCD keeps ``batch_size`` persistent chains (in
    hidden space) across updates. Following Hinton's guide, the hidden units driven by data are
    sampled, the last visible update of CD uses probabilities, and every hidden statistic uses
    probabilities; PCD's chains keep binary visible states.
    """

    def __init__(self, method: str = "cd", k: int = 1, monitor_seed: int = 12345) -> None:
        if method not in RBM_METHODS:
            raise ConfigError(f"unknown RBM method {method!r}; choose one of pcd, cd")
        if k <= 0:
            raise ConfigError(f"k must be a positive integer, got {k}")
        self.method = method
        self.k = k
        self.monitor_seed = monitor_seed
        self.chain_hidden: torch.Tensor | None = None
        self._monitor_cache: tuple | None = None

    def setup(self, model: RBM, train_images: torch.Tensor, generator: torch.Generator) -> None:
        model.reset_parameters(visible_mean=train_images.mean(0), generator=generator)
        self.chain_hidden = None

    def _init_chains(self, model: RBM, batch: torch.Tensor, generator: torch.Generator) -> None:
        with torch.no_grad():
            self.chain_hidden = bernoulli(model.hidden_probs(batch), generator)

    def step(self, model: RBM, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One CD-k / PCD-k update's gradients (Eqs. 1.11-1.14) and the CD objective (Eq. 1.10).

        Per step: ``2 k + 1`` products with W (under PCD the data and the chains' last visible
        states share one) and two for the weight gradient; the fewest random draws the algorithm
        needs (the hidden units driven by the data under CD and the chains' states, none for the
        last visible update of CD, which uses probabilities); sigmoids and samples in place on the
        products' outputs. The loss comes from the logits at hand and the visible-bias gradient:
        ``mean F(v_d) - mean F(v_m) = b'(mean v_m - mean v_d) + mean_m sum_j softplus(.) - mean_d
        sum_j softplus(.)`` (Eq. 1.7).
        """
        with torch.no_grad():
            if self.method == "pcd":
                chains = self._persistent_chains(model, batch, generator)
            else:
                chains = self._chains_from_data(model, batch, generator)
            data_softplus, data_probs, visible, model_softplus, model_probs = chains
            grads = model.contrastive_gradients(batch, data_probs, visible, model_probs)
            for param, grad in zip(
                (model.weight, model.visible_bias, model.hidden_bias), grads, strict=True
            ):
                param.grad = grad
            loss = torch.dot(model.visible_bias, grads[1])
            loss += model_softplus / visible.shape[0] - data_softplus / batch.shape[0]
            return loss

    def _chains_from_data(self, model: RBM, batch: torch.Tensor, generator: torch.Generator):
        """CD-k (Eq. 1.13): k Gibbs sweeps from h ~ p(h | v_data); the last visible state and both
        hidden statistics are probabilities."""
        softplus = torch.nn.functional.softplus
        data_logits = model.hidden_logits(batch)
        data_softplus = softplus(data_logits).sum()
        data_probs = data_logits.sigmoid_()
        hidden = bernoulli(data_probs, generator)
        for i in range(self.k):
            visible = model.visible_probs(hidden)
            if i < self.k - 1:
                visible = bernoulli(visible, generator, out=torch.empty_like(visible))
            model_logits = model.hidden_logits(visible)
            if i == self.k - 1:
                model_softplus = softplus(model_logits).sum()
            model_probs = model_logits.sigmoid_()
            if i < self.k - 1:
                hidden = bernoulli(model_probs, generator)
        return data_softplus, data_probs, visible, model_softplus, model_probs

    def _persistent_chains(self, model: RBM, batch: torch.Tensor, generator: torch.Generator):
        """PCD-k (Eq. 1.14): k sweeps of the persistent chains (binary states). The chains' last
        visible states are drawn under the data batch in one buffer, so that a single product
        with W gives the hidden inputs of both."""
        softplus = torch.nn.functional.softplus
        if self.chain_hidden is None:
            self._init_chains(model, batch, generator)
        hidden = self.chain_hidden
        n = batch.shape[0]
        for i in range(self.k):
            visible_probs = model.visible_probs(hidden)
            if i < self.k - 1:
                visible = bernoulli(visible_probs, generator, out=torch.empty_like(visible_probs))
                hidden = bernoulli(model.hidden_probs(visible), generator)
                continue
            both = batch.new_empty(n + visible_probs.shape[0], batch.shape[1])
            both[:n] = batch
            visible = bernoulli(visible_probs, generator, out=both[n:])
            logits = model.hidden_logits(both)
            data_softplus = softplus(logits[:n]).sum()
            model_softplus = softplus(logits[n:]).sum()
            probs = logits.sigmoid_()
            data_probs, model_probs = probs[:n], probs[n:]
            self.chain_hidden = bernoulli(model_probs, generator)
        return data_softplus, data_probs, visible, model_softplus, model_probs

    def monitor(
        self, model: RBM, train_subset: torch.Tensor, test_images: torch.Tensor
    ) -> dict[str, float]:
        """Reconstruction error, pseudo-log-likelihood and the free-energy gap (Hinton 2010, s. 6)."""
        from .evaluation import pseudo_log_likelihood

        if self._monitor_cache is None or self._monitor_cache[0].shape != train_subset.shape:
            generator = make_generator(self.monitor_seed, train_subset.device)
            train_bin = binarize(train_subset, "stochastic", generator=generator)
            test_bin = binarize(
                test_images[: train_subset.shape[0]], "stochastic", generator=generator
            )
            self._monitor_cache = (train_bin, test_bin)
        train_bin, test_bin = self._monitor_cache
        with torch.no_grad():
            reconstruction = model.visible_probs(model.hidden_probs(train_subset))
            recon_error = (reconstruction - train_subset).pow(2).mean().item()
            pll = pseudo_log_likelihood(model, train_bin, seed=self.monitor_seed).mean().item()
            gap = (model.free_energy(test_bin).mean() - model.free_energy(train_bin).mean()).item()
        return {
            "reconstruction_error": recon_error,
            "pseudo_log_likelihood": pll,
            "free_energy_gap": gap,
        }

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {} if self.chain_hidden is None else {"chain_hidden": self.chain_hidden}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.chain_hidden = tensors.get("chain_hidden")


class VAEObjective(Objective):
    """The mean negative ELBO of a minibatch, minimized by autograd (docs/derivation.md, Eq. 2.6).

    One reparameterized sample of z per image (Eq. 2.3), the Bernoulli log-likelihood from the
    decoder's logits (Eq. 2.5) and the closed-form KL (Eq. 2.4). ``binarize`` is the training
    data's form (``none``: grey values as Bernoulli targets; ``stochastic``: a fresh binary draw
    each epoch); the epoch-end monitor evaluates the ELBO on data of the same form, binarized once
    with a fixed seed, and draws its z with a fixed-seed generator, so that it is deterministic and
    leaves the training generator alone.
    """

    def __init__(
        self, binarize: str = "none", monitor_seed: int = 12345, monitor_batch: int = 2000
    ) -> None:
        if binarize not in BINARIZATIONS:
            raise ConfigError(
                f"unknown binarization {binarize!r}; choose one of {', '.join(BINARIZATIONS)}"
            )
        self.binarize = binarize
        self.monitor_seed = monitor_seed
        self.monitor_batch = monitor_batch
        self._monitor_cache: tuple | None = None

    def setup(
        self, model: nn.Module, train_images: torch.Tensor, generator: torch.Generator
    ) -> None:
        """Redraw every parameter from ``generator``; the decoder starts at the pixel marginals."""
        model.reset_parameters(generator=generator, visible_mean=train_images.mean(0))

    def step(
        self, model: nn.Module, batch: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """The mean negative ELBO of ``batch`` (Eq. 2.6); its closed-form gradient into ``.grad``.

        The gradient is the chain rule written out (``models.vae.negative_elbo_gradients``), the
        same as autograd's on the loss but without building its graph.
        """
        from .models.vae import negative_elbo_gradients

        loss, grads = negative_elbo_gradients(model, batch, generator)
        for name, param in model.named_parameters():
            param.grad = grads[name]
        return loss

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, images: torch.Tensor, generator: torch.Generator
    ) -> tuple[float, float, float]:
        """Mean ``(ELBO, reconstruction log-likelihood, KL)`` over ``images``, in batches."""
        from .models.vae import negative_elbo

        totals = torch.zeros(3, device=images.device, dtype=torch.float64)
        for start in range(0, images.shape[0], self.monitor_batch):
            loss, reconstruction, kl = negative_elbo(
                model, images[start : start + self.monitor_batch], generator
            )
            parts = torch.stack([-loss.sum(), reconstruction.sum(), kl.sum()])
            totals += parts.to(torch.float64)
        elbo, reconstruction, kl = (totals / max(1, images.shape[0])).tolist()
        return elbo, reconstruction, kl

    def monitor(
        self, model: nn.Module, train_subset: torch.Tensor, test_images: torch.Tensor
    ) -> dict[str, float]:
        """Train and test ELBO with their reconstruction and KL parts (nats per image)."""
        cache = self._monitor_cache
        if cache is None or cache[0] is not train_subset or cache[1] is not test_images:
            generator = make_generator(self.monitor_seed, train_subset.device)
            train_data = binarize(train_subset, self.binarize, generator=generator)
            test_data = binarize(test_images, self.binarize, generator=generator)
            self._monitor_cache = (train_subset, test_images, train_data, test_data)
        train_data, test_data = self._monitor_cache[2:]
        metrics: dict[str, float] = {}
        for name, images in (("train", train_data), ("test", test_data)):
            generator = make_generator(self.monitor_seed + 1, images.device)
            elbo, reconstruction, kl = self.evaluate(model, images, generator)
            metrics[f"{name}_elbo"] = elbo
            metrics[f"{name}_reconstruction"] = reconstruction
            metrics[f"{name}_kl"] = kl
        return metrics


def make_objective(model: nn.Module, config: TrainConfig) -> Objective:
    """The objective that trains ``model`` under ``config``."""
    if model.kind == "rbm":
        return ContrastiveDivergence(method=config.method, k=config.k)
    if model.kind == "vae":
        return VAEObjective(binarize=config.binarize)
    raise ConfigError(f"no training objective for model kind {model.kind!r}")


# ------------------------------------------------------------------------------------------------
# The loop


class TrainingInterrupted(RbmvaeError):
    """Ctrl-C during training; the state was saved and ``--resume`` continues exactly."""


def _shuffle_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    generator = make_generator(seed * 1_000_003 + epoch, "cpu")
    return torch.randperm(n, generator=generator)


def _make_optimizer(
    model: nn.Module, objective: Objective, config: TrainConfig
) -> torch.optim.Optimizer:
    """SGD with momentum or Adam over the objective's parameter groups.

    On the CPU and CUDA the fused implementation is used: one pass over each tensor per step
    instead of a chain of element-wise operations (weight decay, momentum, update), which on the
    CPU is 2-3x less time per step.
    """
    groups = objective.parameter_groups(model, config)
    parameters = [p for group in groups for p in group["params"]]
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters)
    options = {"fused": True} if fused and parameters else {}
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.learning_rate, **options)
    return torch.optim.SGD(groups, lr=config.learning_rate, momentum=config.momentum, **options)


def _set_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, epoch: int) -> None:
    for group in optimizer.param_groups:
        group["lr"] = config.learning_rate_at(epoch)
        if config.optimizer == "sgd":
            group["momentum"] = config.momentum_at(epoch)


def _flatten_optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimizer state dict into named tensors and a JSON-able remainder."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            name = f"optimizer.{index}.{key}"
            if torch.is_tensor(value):
                tensors[name] = value
            else:
                scalars[name] = value
    return tensors, {"scalars": scalars, "param_groups": state["param_groups"]}


def _restore_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict
) -> None:
    state: dict[int, dict] = {}
    for name, value in list(tensors.items()) + list(info["scalars"].items()):
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})


@dataclass
class _Position:
    epoch: int = 0
    step: int = 0
    epoch_start_generator: torch.Tensor | None = None
    loss_sum: torch.Tensor | None = None


def _save_state(
    out_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    objective: Objective,
    generator: torch.Generator,
    position: _Position,
    config: TrainConfig,
    history: list[dict],
) -> None:
    opt_tensors, opt_info = _flatten_optimizer_state(optimizer)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update(opt_tensors)
    tensors.update({f"objective.{k}": v for k, v in objective.state_tensors().items()})
    tensors["generator"] = generator.get_state()
    if position.epoch_start_generator is not None:
        tensors["epoch_start_generator"] = position.epoch_start_generator
    if position.loss_sum is not None:
        tensors["loss_sum"] = position.loss_sum
    info = {
        "kind": model.kind,
        "model_config": model.config(),
        "train_config": config.to_dict(),
        "epoch": position.epoch,
        "step": position.step,
        "optimizer": opt_info,
        "history": history,
    }
    checkpoint.save_training_state(out_dir, tensors, info)


class _HardInterrupt(KeyboardInterrupt):
    """A second Ctrl-C: stop at once, saving nothing (the files of the last epoch stay valid)."""


class _DeferredCtrlC:
    """While training, turn the first Ctrl-C into a request that :func:`fit` honours at the next
    step boundary, so that the state it saves is exactly that of a step count (a signal landing
    inside a step would leave the random generator and the weights out of step). A second Ctrl-C
    stops at once. Only the main thread can receive signals; elsewhere this does nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise _HardInterrupt
        self.requested = True

    def __enter__(self) -> _DeferredCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _interrupted(epoch: int, step: int, out_dir: Path | None) -> str:
    where = f" in {out_dir}" if out_dir is not None else " (no output directory: nothing saved)"
    return (
        f"interrupted at epoch {epoch + 1}, step {step}; state saved{where}; "
        "run the same command with --resume to continue"
    )


def _check_finite(model: nn.Module, epoch: int, step: int, kept: str) -> None:
    """Stop with a TrainingError naming the parameter, epoch and step if a weight is not finite."""
    # A NaN or an infinity anywhere makes the plain (float32) sum of all values NaN or infinite,
    # so a finite sum proves every value finite: one cheap pass and one device sync per step.
    # A non-finite sum may also come from finite values overflowing; the exact per-tensor test
    # below tells the two apart (an isfinite mask per tensor every step would cost ~30x more).
    sums = [p.detach().sum() for p in model.parameters()]
    if math.isfinite(torch.stack(sums).sum().item()):
        return
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            raise TrainingError(
                f"non-finite {name} at epoch {epoch + 1}, step {step + 1}; {kept}; "
                "lower the learning rate"
            )


def _epoch_images(
    images: torch.Tensor, mode: str, generator: torch.Generator, buffer: torch.Tensor | None
) -> torch.Tensor:
    """The training images of one epoch in form ``mode``, as :func:`rbmvae.data.binarize` makes
    them (the same draws from ``generator``, the same values).

    ``stochastic`` draws into ``buffer`` (the last epoch's images, reused) and compares in place:
    a fresh tensor the size of the data set every epoch costs page faults, and a boolean
    intermediate two more passes, which together took longer than the draws themselves (~0.3 s
    per epoch of 60,000 images here)."""
    if mode != "stochastic":
        return binarize(images, mode)
    if buffer is None or buffer.shape != images.shape or buffer is images:
        buffer = torch.empty_like(images, memory_format=torch.contiguous_format)
    torch.rand(images.shape, generator=generator, out=buffer)
    return buffer.lt_(images)


def _kept(out_dir: Path | None, epochs_done: int) -> str:
    if out_dir is None:
        return "nothing was saved (no output directory)"
    if epochs_done == 0:
        return f"no epoch completed, so nothing was written to {out_dir}"
    return f"the last good checkpoint (epoch {epochs_done}) is kept in {out_dir}"


def _comparable(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "epochs"}


def fit(
    model: nn.Module,
    data: Dataset,
    config: TrainConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    metadata: dict | None = None,
    **overrides,
) -> list[dict]:
    """Train ``model`` on ``data.train_images``; returns the per-epoch history.

    Settings come from ``config`` (default: ``TrainConfig.defaults_for(model.kind)``) with
    keyword ``overrides`` (``epochs=5``, ``method="cd"``, ...). With ``out_dir`` the model and the
    resumable training state are written there atomically after every epoch; ``resume=True``
    continues from that state with bit-identical results on the CPU.
    """
    if config is None:
        config = TrainConfig.defaults_for(model.kind, **overrides)
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    config.validate()
    device = next(model.parameters()).device
    train_images = data.train_images.to(device)
    test_images = data.test_images.to(device)
    n_train = train_images.shape[0]
    out_dir = Path(out_dir) if out_dir is not None else None

    objective = make_objective(model, config)
    generator = make_generator(config.seed, device)
    history: list[dict] = []
    position = _Position()

    if resume:
        if out_dir is None:
            raise ConfigError("resume needs an output directory")
        tensors, info = checkpoint.load_training_state(out_dir)
        if info.get("kind") != model.kind or info.get("model_config") != model.config():
            raise CheckpointError(
                f"{out_dir}: the saved training state is for a {info.get('kind')} model "
                f"{info.get('model_config')}, not this {model.kind} model {model.config()}; "
                "resume with the same model options or train into a new directory"
            )
        if _comparable(info["train_config"]) != _comparable(config.to_dict()):
            raise CheckpointError(
                f"{out_dir}: saved run used other settings {info['train_config']}; "
                "resume with the same settings or train into a new directory"
            )
        checkpoint.load_state_into(
            model,
            {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
            out_dir / checkpoint.STATE_FILE,
        )
        model.to(device)
        optimizer = _make_optimizer(model, objective, config)
        _restore_optimizer_state(
            optimizer,
            {k: v.to(device) for k, v in tensors.items() if k.startswith("optimizer.")},
            info["optimizer"],
        )
        objective.load_state_tensors(
            {k[10:]: v.to(device) for k, v in tensors.items() if k.startswith("objective.")}
        )
        generator.set_state(tensors["generator"])
        position = _Position(
            info["epoch"],
            info["step"],
            tensors.get("epoch_start_generator"),
            tensors.get("loss_sum", torch.zeros(())).to(device),
        )
        history = list(info["history"])
    else:
        objective.setup(model, train_images, generator)
        optimizer = _make_optimizer(model, objective, config)

    monitor_order = _shuffle_order(config.seed, -1, n_train)[: config.monitor_size]
    monitor_train = train_images[monitor_order.to(device)]
    meta = {
        "train_config": config.to_dict(),
        "dataset": data.describe(),
        "seed": config.seed,
        **(metadata or {}),
    }

    def save_all() -> None:
        if out_dir is None:
            return
        _save_state(out_dir, model, optimizer, objective, generator, position, config, history)
        checkpoint.save_model(
            model, out_dir, {**meta, "epochs_completed": len(history), "history": history}
        )

    from tqdm.auto import tqdm

    n_steps = math.ceil(n_train / config.batch_size)
    epoch_bar = tqdm(
        total=config.epochs,
        initial=position.epoch,
        desc=f"train {model.kind}",
        unit="epoch",
        disable=not progress,
        dynamic_ncols=True,
    )
    epoch_images = None
    with _DeferredCtrlC() as ctrl_c, contextlib.ExitStack() as stack:
        stack.callback(epoch_bar.close)
        while position.epoch < config.epochs:
            epoch = position.epoch
            _set_schedule(optimizer, config, epoch)
            started = time.perf_counter()  # the epoch's time includes its binarization
            if position.step == 0:
                position.epoch_start_generator = generator.get_state()
                epoch_images = _epoch_images(train_images, config.binarize, generator, epoch_images)
            else:  # resuming mid-epoch: replay this epoch's binarization, then jump ahead
                current = generator.get_state()
                generator.set_state(position.epoch_start_generator)
                epoch_images = _epoch_images(train_images, config.binarize, generator, epoch_images)
                generator.set_state(current)
            order = _shuffle_order(config.seed, epoch, n_train).to(device)
            if position.step == 0 or position.loss_sum is None:
                position.loss_sum = torch.zeros((), device=device)
            step_bar = tqdm(
                total=n_steps,
                initial=position.step,
                leave=False,
                desc=f"epoch {epoch + 1}",
                disable=not progress,
                dynamic_ncols=True,
            )
            kept = _kept(out_dir, len(history))
            try:
                for step in range(position.step, n_steps):
                    rows = order[step * config.batch_size : (step + 1) * config.batch_size]
                    batch = torch.index_select(epoch_images, 0, rows)
                    loss = objective.step(model, batch, generator)
                    if not math.isfinite(loss.item()):
                        raise TrainingError(
                            f"non-finite loss at epoch {epoch + 1}, step {step + 1}; "
                            f"{kept}; lower the learning rate"
                        )
                    optimizer.step()
                    _check_finite(model, epoch, step, kept)
                    position.loss_sum += loss.detach()
                    position.step = step + 1
                    step_bar.update(1)
                    if ctrl_c.requested:  # honoured here, where the saved state is consistent
                        raise KeyboardInterrupt
            except _HardInterrupt:
                raise
            except KeyboardInterrupt:
                step_bar.close()
                save_all()
                raise TrainingInterrupted(_interrupted(epoch, position.step, out_dir)) from None
            step_bar.close()
            train_seconds = time.perf_counter() - started
            monitor_started = time.perf_counter()
            model.eval()
            metrics = objective.monitor(model, monitor_train, test_images)
            model.train()
            record = {
                "epoch": epoch + 1,
                "loss": (position.loss_sum / n_steps).item(),
                **metrics,
                "learning_rate": config.learning_rate_at(epoch),
                "train_seconds": train_seconds,
                "monitor_seconds": time.perf_counter() - monitor_started,
            }
            history.append(record)
            position = _Position(epoch + 1, 0, None, None)
            save_all()
            if ctrl_c.requested and position.epoch < config.epochs:
                raise TrainingInterrupted(_interrupted(epoch, n_steps, out_dir))
            epoch_bar.set_postfix(
                {k: f"{v:.4g}" for k, v in metrics.items()} or {"loss": f"{record['loss']:.4g}"}
            )
            epoch_bar.update(1)
    if out_dir is not None and not (out_dir / checkpoint.META_FILE).exists():
        save_all()  # nothing left to train (e.g. resuming a finished run): still write the model
    model.eval()
    return history
