"""Data: the named data sets and the :class:`Dataset` (``datasets``), IDX files (``idx``), the
catalog of standard files, mirrors and hashes (``catalog``), missing-pixel masks (``masks``) and
the embedded sample (``sample_data/``).

This package exports what :mod:`rbmvae.data.datasets` exports (the loading functions, the
``Dataset`` and the catalog's names), so ``from rbmvae.data import load_dataset`` works."""

from .catalog import (
    DATASET_NAMES,
    FASHION_MNIST_MD5,
    FASHION_MNIST_SHA256,
    MNIST_MD5,
    MNIST_SHA256,
    REMOTE_DATASETS,
    SAMPLE_NAME,
    SAMPLE_PROVENANCE,
    STANDARD_FILES,
    RemoteDataset,
)
from .datasets import (
    BINARIZATIONS,
    Dataset,
    binarize,
    dataset_for_model,
    default_cache_dir,
    fetch_files,
    has_standard_files,
    image_shape_of,
    load_dataset,
    read_idx_directory,
    resolve_dataset_dir,
)
from .idx import read_idx

__all__ = [
    "BINARIZATIONS",
    "DATASET_NAMES",
    "FASHION_MNIST_MD5",
    "FASHION_MNIST_SHA256",
    "MNIST_MD5",
    "MNIST_SHA256",
    "REMOTE_DATASETS",
    "SAMPLE_NAME",
    "SAMPLE_PROVENANCE",
    "STANDARD_FILES",
    "Dataset",
    "RemoteDataset",
    "binarize",
    "dataset_for_model",
    "default_cache_dir",
    "fetch_files",
    "has_standard_files",
    "image_shape_of",
    "load_dataset",
    "read_idx",
    "read_idx_directory",
    "resolve_dataset_dir",
]
