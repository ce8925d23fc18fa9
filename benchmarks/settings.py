"""The sizes of every benchmark workload, and the constants the other modules share."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

N_VISIBLE = 784  # pixels of an MNIST or Fashion-MNIST image
VAE_HIDDEN = 256  # hidden units of the VAE's encoder and decoder
DISTURBED = 0.05  # others' CPU share above which a workload's timing is not trusted
FLOOR_GOAL = 1.3  # every workload at most this many times its matmul floor (issue 15)
SMALL_FLOOR_GOAL = 2.0  # the 20- and 100-hidden RBMs' PCD-1 (issue 26)
SIXTEEN_BITS = "-16bit"  # the suffix of the rows that draw from 16 random bits (Eq. 1.20)


@dataclass
class Settings:
    """Sizes of every workload. ``Settings()`` is the full benchmark, ``Settings.quick()`` a smoke
    run; tests build tiny ones."""

    dataset: str = "mnist"
    data_dir: str | None = None
    device: str = "cpu"
    threads: int = 0  # 0: every core torch sees
    epochs: int = 5  # timed epochs per training workload (after one warm-up epoch)
    repeats: int = 3  # repeats of the other timed workloads
    train_images: int | None = None  # None: the whole training set (per-epoch figures are scaled)
    rbm_hidden: tuple[int, ...] = (20, 100, 500)
    vae_latent: tuple[int, ...] = (2, 8, 16)
    rbm_batch: int = 100
    vae_batch: int = 128
    cd_long_k: int = 30
    cd_long_images: int = 12000  # CD-30 runs on this many images; its epoch time is scaled
    pt_chains: int = 50  # parallel tempering (the "pt" recipe): chains per temperature
    pt_temperatures: int = 10
    ais_hidden: int = 500  # AIS runs on the RBM the PCD-1 workload trained at this size
    ais_runs: int = 100
    ais_betas: int = 14500
    iwae_k: int = 5000
    iwae_images: int = 1000
    iwae_chunk: int = 25  # samples per chunk given to iwae_log_likelihood (its default)
    inpaint_hidden: int = 500
    inpaint_images: int = 1000
    inpaint_steps: int = 1000
    inpaint_fraction: float = 0.5
    square: int = 2048  # side of the large square product
    min_seconds: float = 0.2  # each floor measurement loops at least this long
    sklearn: bool = True
    reproduce: bool = False
    profile_steps: int = 60
    seed: int = 0

    @classmethod
    def quick(cls, **overrides) -> Settings:
        values = dict(
            epochs=2,
            repeats=2,
            train_images=6000,
            cd_long_images=1000,
            ais_betas=1000,
            iwae_k=500,
            iwae_images=200,
            inpaint_images=200,
            inpaint_steps=100,
            square=1024,
            min_seconds=0.05,
            profile_steps=20,
        )
        values.update(overrides)
        return cls(**values)

    @property
    def n_threads(self) -> int:
        """The torch (and BLAS) threads a workload uses."""
        return self.threads or os.cpu_count() or 1

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        values = json.loads(text)
        for name in ("rbm_hidden", "vae_latent"):
            values[name] = tuple(values[name])
        return cls(**values)
