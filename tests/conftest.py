import pytest
import torch

import rbmvae


@pytest.fixture(scope="session")
def sample_data():
    """The embedded MNIST sample (5,000 train / 10,000 test digits)."""
    return rbmvae.load_dataset("mnist-sample")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never touch the user's cache: downloads and cached classifiers go to a temp dir."""
    monkeypatch.setenv("RBMVAE_DATA_DIR", str(tmp_path / "cache"))


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)
