"""What a run records about itself (the commit it ran from, its peak memory) and the validation
split that recipes are chosen on."""

from __future__ import annotations

import pytest
import torch

from rbmvae.basics.errors import ConfigError
from rbmvae.data import Dataset
from rbmvae.study.run import peak_memory, source_commit


def _dataset(n_train: int = 10) -> Dataset:
    images = torch.arange(n_train * 4, dtype=torch.float32).reshape(n_train, 4) / (n_train * 4)
    return Dataset(
        name="toy",
        train_images=images,
        train_labels=torch.arange(n_train) % 3,
        test_images=torch.zeros(2, 4),
        test_labels=torch.zeros(2, dtype=torch.int64),
        image_shape=(2, 2),
    )


def test_validation_split_holds_out_the_last_training_digits():
    data = _dataset()
    split = data.validation_split(3)
    assert torch.equal(split.train_images, data.train_images[:7])
    assert torch.equal(split.test_images, data.train_images[7:])
    assert torch.equal(split.test_labels, data.train_labels[7:])
    assert split.name == "toy-validation"
    # the test set is nowhere in the split
    assert not any(torch.equal(row, data.test_images[0]) for row in split.test_images)


@pytest.mark.parametrize("bad", [0, 10, 11, -1, 2.5])
def test_validation_split_refuses_sizes_that_leave_nothing(bad):
    with pytest.raises(ConfigError, match="validation digits"):
        _dataset().validation_split(bad)


def test_source_commit_names_this_checkout_or_the_environment(monkeypatch):
    monkeypatch.setenv("RBMVAE_COMMIT", "abc123")
    assert source_commit() == {"commit": "abc123", "modified": None}
    monkeypatch.delenv("RBMVAE_COMMIT")
    found = source_commit()
    assert found["commit"] == "unknown" or len(found["commit"]) == 40


def test_peak_memory_counts_the_workers():
    own = peak_memory(1)
    assert own["value"] == own["main_process"] > 10 * 2**20  # torch alone holds more than 10 MiB
    assert own["unit"] == "bytes"
    several = peak_memory(2)
    assert several["value"] == several["main_process"] + 2 * several["largest_worker"]
