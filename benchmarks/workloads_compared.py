"""Workloads that compare rbmvae with what users would pick instead: scikit-learn's BernoulliRBM,
and the VAE loop of PyTorch's examples (the RBMs trained for equal budgets are in
``benchmarks/equal_budget.py``).

Each takes the worker and keyword parameters and returns a JSON-able dict.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.harness import Worker, summary, synchronize
from benchmarks.settings import N_VISIBLE, VAE_HIDDEN
from rbmvae.models import RBM
from rbmvae.training import TrainConfig


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
