"""Workloads that compare rbmvae with what users would pick instead: scikit-learn's BernoulliRBM,
the VAE loop of PyTorch's examples, and the two RBMs trained for the same wall time.

Each takes the worker and keyword parameters and returns a JSON-able dict.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.harness import Worker, summary, synchronize
from benchmarks.settings import N_VISIBLE, VAE_HIDDEN
from rbmvae.likelihood import ais_log_partition, base_rate_visible_bias, rbm_log_likelihood
from rbmvae.models import RBM
from rbmvae.rng import make_generator
from rbmvae.training import TrainConfig, fit

EQUAL_TIME_MODEL = "rbm-equal-time"  # the equal-time rbmvae RBM, kept for the AIS and inpainting


def w_sklearn_rbm(worker: Worker, hidden: int) -> dict:
    """scikit-learn's BernoulliRBM, one epoch per ``fit`` (``n_iter=1``) on the float32 grey
    images, with the same hidden units, batch size and learning rate as rbmvae's defaults."""
    from sklearn.neural_network import BernoulliRBM  # optional: the bench extra
    from threadpoolctl import threadpool_info, threadpool_limits  # comes with scikit-learn

    s = worker.settings
    images = worker.train_subset(s.train_images).train_images
    x = np.ascontiguousarray(images.numpy(), dtype=np.float32)
    scale = worker.n_train / x.shape[0]
    rate = TrainConfig.defaults_for("rbm").learning_rate
    times = []
    with threadpool_limits(limits=s.n_threads):
        for repeat in range(s.repeats + 1):
            rbm = BernoulliRBM(
                n_components=hidden,
                learning_rate=rate,
                batch_size=s.rbm_batch,
                n_iter=1,
                random_state=repeat,
            )
            started = time.perf_counter()
            rbm.fit(x)
            times.append((time.perf_counter() - started) * scale)
        blas = [
            f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
            for i in threadpool_info()
            if i["user_api"] == "blas"
        ]
    return {
        "images": int(x.shape[0]),
        "epoch_seconds": summary(times[1:]),
        "learning_rate": rate,
        "blas": blas,
    }


def _plain_vae(latent: int):
    """The VAE of PyTorch's examples (784-H-z-H-784, ReLU, sigmoid output), with rbmvae's sizes."""

    class PlainVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(N_VISIBLE, VAE_HIDDEN)
            self.fc21 = nn.Linear(VAE_HIDDEN, latent)
            self.fc22 = nn.Linear(VAE_HIDDEN, latent)
            self.fc3 = nn.Linear(latent, VAE_HIDDEN)
            self.fc4 = nn.Linear(VAE_HIDDEN, N_VISIBLE)

        def forward(self, x):
            h1 = F.relu(self.fc1(x))
            mu, logvar = self.fc21(h1), self.fc22(h1)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar

    def loss_function(recon, x, mu, logvar):
        bce = F.binary_cross_entropy(recon, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld

    return PlainVAE(), loss_function


def w_plain_vae(worker: Worker, latent: int, loader: bool = True) -> dict:
    """A plain PyTorch VAE loop as in PyTorch's examples: ``DataLoader(TensorDataset(x),
    batch_size=128, shuffle=True)``, ``.to(device)`` per batch, Adam(1e-3), summed BCE + KL.
    With ``loader=False`` the same loop indexes one tensor kept on the device instead."""
    s, device = worker.settings, worker.device
    images = worker.train_subset(s.train_images).train_images
    scale = worker.n_train / images.shape[0]
    torch.manual_seed(s.seed)
    model, loss_function = _plain_vae(latent)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    if loader:
        batches = DataLoader(TensorDataset(images), batch_size=s.vae_batch, shuffle=True)
    else:
        on_device = images.to(device)

        def tensor_batches():
            order = torch.randperm(on_device.shape[0], device=device)
            for start in range(0, on_device.shape[0], s.vae_batch):
                yield (on_device[order[start : start + s.vae_batch]],)

    times = []
    for _ in range(s.epochs + 1):
        model.train()
        started = time.perf_counter()
        total = 0.0
        for (x,) in batches if loader else tensor_batches():
            x = x.to(device)
            optimizer.zero_grad()
            recon, mu, logvar = model(x)
            loss = loss_function(recon, x, mu, logvar)
            loss.backward()
            total += loss.item()
            optimizer.step()
        synchronize(device)
        times.append((time.perf_counter() - started) * scale)
    return {"images": int(images.shape[0]), "epoch_seconds": summary(times[1:]), "loss": total}


def _sklearn_to_rbm(estimator, device: str):
    """BernoulliRBM's ``components_`` (H x D), ``intercept_hidden_``, ``intercept_visible_`` as an
    rbmvae RBM with ``weight = components_.T``, ``hidden_bias``, ``visible_bias``."""
    hidden, visible = estimator.components_.shape
    rbm = RBM(visible, hidden)
    with torch.no_grad():
        rbm.weight.copy_(torch.as_tensor(estimator.components_).t())
        rbm.hidden_bias.copy_(torch.as_tensor(estimator.intercept_hidden_))
        rbm.visible_bias.copy_(torch.as_tensor(estimator.intercept_visible_))
    return rbm.to(device)


def _score_rbm(worker: Worker, rbm, seed: int) -> dict:
    """AIS log Z (SM08 schedule) and the mean test log-likelihood on the binarized test set."""
    s = worker.settings
    base = base_rate_visible_bias(worker.data.train_images)
    ais = ais_log_partition(
        rbm,
        base,
        n_runs=s.ais_runs,
        n_betas=s.ais_betas,
        generator=make_generator(seed, worker.device),
    )
    test = worker.binary_test()
    return {
        "log_z": ais.log_z,
        "log_z_low": ais.log_z_low,
        "log_z_high": ais.log_z_high,
        "effective_runs": ais.effective_runs,
        "test_log_likelihood": rbm_log_likelihood(rbm, test, ais.log_z),
        "test_log_likelihood_low": rbm_log_likelihood(rbm, test, ais.log_z_high),
        "test_log_likelihood_high": rbm_log_likelihood(rbm, test, ais.log_z_low),
        "ais_seconds": ais.seconds,
    }


def w_equal_time(
    worker: Worker,
    hidden: int,
    rbmvae_epoch: float | None = None,
    sklearn_epoch: float | None = None,
) -> dict:
    """rbmvae's RBM (its default training settings) and BernoulliRBM trained for the same wall
    time, both scored by rbmvae's AIS on the same binarized test images.

    rbmvae gets as many whole epochs (with its epoch-end monitor) as fit in the budget; the
    epochs are fixed before training because the learning rate decays over them. BernoulliRBM
    then gets enough epochs to use at least the time rbmvae actually took. ``rbmvae_epoch`` and
    ``sklearn_epoch`` are their measured seconds per epoch of the whole training set (measured
    here when None)."""
    s = worker.settings
    data = worker.train_subset(s.train_images)
    scale = data.train_images.shape[0] / worker.n_train
    defaults = TrainConfig.defaults_for("rbm")
    result = {
        "budget_seconds": s.equal_time_seconds,
        "hidden": hidden,
        "method": f"{defaults.method.upper()}-{defaults.k}",
    }
    if rbmvae_epoch is None:
        probe = fit(RBM(N_VISIBLE, hidden).to(worker.device), data, epochs=1, progress=False)
        rbmvae_epoch = probe[0]["train_seconds"] + probe[0]["monitor_seconds"]
    else:
        rbmvae_epoch *= scale
    epochs = max(1, int(s.equal_time_seconds // rbmvae_epoch))
    model = RBM(N_VISIBLE, hidden).to(worker.device)
    started = time.perf_counter()
    fit(model, data, epochs=epochs, seed=s.seed, progress=False)
    wall = time.perf_counter() - started
    worker.save_model(model, EQUAL_TIME_MODEL)
    result["rbmvae"] = {"epochs": epochs, "seconds": wall, **_score_rbm(worker, model, s.seed)}
    if s.sklearn:
        if sklearn_epoch is not None:
            sklearn_epoch *= scale
        estimator, sk_wall = _fit_sklearn_for(worker, data, hidden, wall, sklearn_epoch)
        rbm = _sklearn_to_rbm(estimator, worker.device)
        result["sklearn"] = {
            "epochs": estimator.n_iter,
            "seconds": sk_wall,
            **_score_rbm(worker, rbm, s.seed),
        }
        result["difference_nats"] = (
            result["rbmvae"]["test_log_likelihood"] - result["sklearn"]["test_log_likelihood"]
        )
    return result


def _fit_sklearn_for(worker: Worker, data, hidden: int, seconds: float, epoch: float | None):
    """BernoulliRBM trained for enough epochs to take at least ``seconds``, given ``epoch``
    seconds per epoch on ``data`` (measured here when None); returns it and its wall time."""
    from sklearn.neural_network import BernoulliRBM  # optional: the bench extra
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    s = worker.settings
    x = np.ascontiguousarray(data.train_images.numpy(), dtype=np.float32)
    rate = TrainConfig.defaults_for("rbm").learning_rate
    with threadpool_limits(limits=s.n_threads):
        if epoch is None:
            started = time.perf_counter()
            BernoulliRBM(hidden, learning_rate=rate, batch_size=s.rbm_batch, n_iter=1).fit(x)
            epoch = time.perf_counter() - started
        estimator = BernoulliRBM(
            hidden,
            learning_rate=rate,
            batch_size=s.rbm_batch,
            n_iter=max(1, math.ceil(seconds / epoch)),
            random_state=s.seed,
        )
        started = time.perf_counter()
        estimator.fit(x)
        return estimator, time.perf_counter() - started
