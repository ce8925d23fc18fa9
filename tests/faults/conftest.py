"""Fixtures of the fault tests: a small checkpoint, and what a directory holds."""

from pathlib import Path

import pytest

from rbmvae.models import RBM
from rbmvae.training.checkpoint import LOCK_FILE, save_model


@pytest.fixture
def tiny_model(tmp_path, write_dataset):
    """A small RBM checkpoint on 8x8 images, with its data directory beside it."""
    directory = tmp_path / "tiny-data"
    write_dataset(directory)
    dataset = {"name": f"dir:{directory.name}", "image_shape": [8, 8]}
    save_model(RBM(64, 4), tmp_path / "tiny-model", {"dataset": dataset, "marker": "old"})
    return tmp_path / "tiny-model"


def _snapshot(directory):
    """Every file's bytes by name, but the lock file (``checkpoint.LOCK_FILE``), which holds
    nothing and is created by whoever first takes the directory's lock."""
    return {
        p.name: p.read_bytes()
        for p in sorted(Path(directory).iterdir())
        if p.is_file() and p.name != LOCK_FILE
    }


@pytest.fixture(scope="session")
def snapshot():
    """``snapshot(directory)``: every file in ``directory`` with its bytes, by name."""
    return _snapshot


def _temp_files(directory):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp"))


@pytest.fixture(scope="session")
def temp_files():
    """``temp_files(directory)``: the names of the ``*.tmp`` files left in ``directory``."""
    return _temp_files
