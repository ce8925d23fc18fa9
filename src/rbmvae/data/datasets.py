"""Data: named data sets, downloads, the :class:`Dataset` and binarization (IDX files: ``idx.py``).

Images are returned as float32 tensors of shape ``(n, height * width)`` with pixels in [0, 1];
labels as int64 tensors of shape ``(n,)``.

Data sets by name (see :func:`load_dataset`):

- ``mnist-sample``: embedded in the package (5,000 MNIST training digits, 500 per class, and the
  full 10,000-digit MNIST test set); works offline.
- ``mnist``: the four standard files, downloaded on first use and verified by their published MD5;
  a local copy is checked by the SHA-256 of its decompressed files (``catalog.py``).
- ``fashion-mnist``: the same for Fashion-MNIST; taken without download from Debian's
  ``dataset-fashion-mnist`` package where it is installed.
- any directory holding the four files under their standard names (``data_dir``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..basics.errors import ConfigError, DataError
from ..basics.rng import make_generator
from .catalog import (  # noqa: F401 (the catalog's names are part of this module's API)
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
from .idx import read_idx


@dataclass
class Dataset:
    """Train and test images with their labels.

    Shape: ``train_images`` (N_train, D) and ``test_images`` (N_test, D), float32 in [0, 1] with
    ``D = image_shape[0] * image_shape[1]``; labels (N,) int64.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    image_shape: tuple[int, int]
    source: str = ""
    provenance: str = ""

    @property
    def n_pixels(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    def _with(self, **tensors: torch.Tensor) -> Dataset:
        return dataclasses.replace(self, **tensors)

    def to(self, device: torch.device | str) -> Dataset:
        """The same data set with its tensors on ``device``."""
        return self._with(
            train_images=self.train_images.to(device),
            train_labels=self.train_labels.to(device),
            test_images=self.test_images.to(device),
            test_labels=self.test_labels.to(device),
        )

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> Dataset:
        """The first ``n_train`` training and ``n_test`` test images (None: all of them)."""
        return self._with(
            train_images=self.train_images[:n_train],
            train_labels=self.train_labels[:n_train],
            test_images=self.test_images[:n_test],
            test_labels=self.test_labels[:n_test],
        )

    def validation_split(self, n_validation: int = 10_000) -> Dataset:
        """The training images split in two: the first ``N_train - n_validation`` to train on,
        the last ``n_validation`` in the place of the test set (for choosing recipes without
        seeing the test set). Shapes: train (N_train - n_validation, D), test (n_validation, D).
        """
        n_train = int(self.train_images.shape[0])
        if not isinstance(n_validation, int) or not 0 < n_validation < n_train:
            raise ConfigError(
                f"validation digits must be between 1 and {n_train - 1}, got {n_validation!r}"
            )
        cut = n_train - n_validation
        return self._with(
            name=f"{self.name}-validation",
            train_images=self.train_images[:cut],
            train_labels=self.train_labels[:cut],
            test_images=self.train_images[cut:],
            test_labels=self.train_labels[cut:],
        )

    def binarized_test_images(self, n: int | None = None, seed: int = 0) -> torch.Tensor:
        """The first ``n`` test images (None: all), each pixel drawn as Bernoulli(grey value).

        The draw comes from the named stream ``binarize-test`` of ``seed``, so every
        model scored with the same seed sees the same binary test set. Shape: (n, D).
        """
        generator = make_generator(seed, "cpu", "binarize-test")
        return binarize(self.test_images[:n].cpu(), "stochastic", generator=generator)

    def describe(self) -> dict:
        """Counts and shapes, for ``rbmvae data info`` and the checkpoint metadata."""
        return {
            "name": self.name,
            "source": self.source,
            "provenance": self.provenance,
            "n_train": int(self.train_images.shape[0]),
            "n_test": int(self.test_images.shape[0]),
            "image_shape": list(self.image_shape),
            "train_pixel_mean": float(self.train_images.mean()) if self.train_images.numel() else 0,
            "train_label_counts": torch.bincount(self.train_labels).tolist(),
            "test_label_counts": torch.bincount(self.test_labels).tolist(),
        }


def _find_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / (stem + ".gz"), directory / stem):
        if candidate.is_file():
            return candidate
    return None


def has_standard_files(directory: str | os.PathLike) -> bool:
    """True when ``directory`` holds all four files under their standard names."""
    directory = Path(directory)
    return all(_find_file(directory, stem) for stem in STANDARD_FILES.values())


def read_idx_directory(
    directory: str | os.PathLike, name: str | None = None, sha256: dict[str, str] | None = None
) -> Dataset:
    """Read the four standard files from ``directory`` into a :class:`Dataset`.

    With ``sha256`` (the expected hash of each file's decompressed content, keyed like
    ``STANDARD_FILES``), a file whose content differs is refused in one line naming it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: data directory not found; check the --data-dir path")
    paths = {}
    for key, stem in STANDARD_FILES.items():
        found = _find_file(directory, stem)
        if found is None:
            raise DataError(
                f"{directory}: missing {stem}[.gz]; put the four standard files there "
                f"({', '.join(STANDARD_FILES.values())}, each raw or .gz)"
            )
        paths[key] = found
    arrays = {}
    for key, path in paths.items():
        digest = hashlib.sha256() if sha256 else None
        arrays[key] = read_idx(path, 3 if key.endswith("images") else 1, digest)
        if digest is not None and digest.hexdigest() != sha256[key]:
            raise DataError(
                f"{path}: its content (SHA-256 {digest.hexdigest()[:12]}... once decompressed) is "
                f"not the {name} file {STANDARD_FILES[key]} ({sha256[key][:12]}...): an altered "
                f"or different copy; fetch it again (`rbmvae data download {name}`)"
            )
    for split in ("train", "test"):
        n_images = arrays[f"{split}_images"].shape[0]
        n_labels = arrays[f"{split}_labels"].shape[0]
        if n_images != n_labels:
            raise DataError(
                f"{paths[split + '_labels']}: {n_labels:,} labels for {n_images:,} images in "
                f"{paths[split + '_images'].name}; the two files must come from the same set"
            )
        if n_images == 0:
            raise DataError(f"{paths[split + '_images']}: holds no images; give a non-empty file")
    shape = tuple(arrays["train_images"].shape[1:])
    if tuple(arrays["test_images"].shape[1:]) != shape:
        raise DataError(
            f"{paths['test_images']}: images are {arrays['test_images'].shape[1:]} but the "
            f"training images are {shape}; both splits need the same size (any size is "
            "accepted when they agree)"
        )

    def images(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.reshape(a.shape[0], -1).astype(np.float32) / 255.0)

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.int64))

    return Dataset(
        name=name or f"dir:{directory.name}",
        train_images=images(arrays["train_images"]),
        train_labels=labels(arrays["train_labels"]),
        test_images=images(arrays["test_images"]),
        test_labels=labels(arrays["test_labels"]),
        image_shape=(int(shape[0]), int(shape[1])),
        source=str(directory.resolve()),
    )


# ----------------------------------------------------------------------------------------------
# Downloads


def default_cache_dir() -> Path:
    """The data cache: ``$RBMVAE_DATA_DIR`` if set, else the user's cache directory."""
    override = os.environ.get("RBMVAE_DATA_DIR")
    if override:
        return Path(override)
    import pooch

    return Path(pooch.os_cache("rbmvae"))


def fetch_files(
    md5: dict[str, str],
    mirrors: tuple[str, ...] | list[str],
    directory: str | os.PathLike,
    progress: bool = False,
) -> dict[str, Path]:
    """Download the standard ``.gz`` files into ``directory``, each verified by its MD5.

    Mirrors are tried in order. pooch downloads to a temporary file and moves it into place only
    after its hash matched, so a cut-off or tampered download never lands under the final name.
    """
    import pooch

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"{directory}: cannot create the data directory ({error.strerror}); "
            "choose another --data-dir"
        ) from None
    found = {}
    for key, stem in STANDARD_FILES.items():
        fname = stem + ".gz"
        failures = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + fname
            try:
                found[key] = Path(
                    pooch.retrieve(
                        url,
                        known_hash=f"md5:{md5[key]}",
                        fname=fname,
                        path=directory,
                        progressbar=progress,
                    )
                )
                break
            except ValueError as error:  # pooch's hash mismatch
                failures.append(f"{url}: hash mismatch, refused ({_first_line(error)})")
            except Exception as error:  # network errors from requests/urllib
                failures.append(f"{url}: {type(error).__name__}: {_first_line(error)}")
        else:
            raise DataError(
                f"{fname}: download failed from every mirror, nothing kept; "
                + "; ".join(failures)
                + f"; check the connection and retry, or put the verified file in {directory}"
            )
    return found


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _sample_directory() -> Path:
    return Path(str(resources.files("rbmvae.data") / "sample_data"))


def resolve_dataset_dir(
    name: str | None, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Path:
    """The directory that holds the four files of data set ``name``, downloading if needed."""
    if name is None and data_dir is None:
        name = SAMPLE_NAME
    if name in (None, "dir"):
        if data_dir is None:
            raise ConfigError("no data set named and no --data-dir given; give one of them")
        return Path(data_dir)
    if name == SAMPLE_NAME:
        if data_dir is not None:
            raise ConfigError(
                f"{SAMPLE_NAME} is embedded in the package and takes no --data-dir; "
                "drop --data-dir, or drop --dataset to read the directory"
            )
        return _sample_directory()
    if name not in REMOTE_DATASETS:
        if Path(name).is_dir():
            return Path(name)
        raise ConfigError(
            f"unknown data set {name!r}; choose one of {', '.join(DATASET_NAMES)} "
            "or give a directory with --data-dir"
        )
    remote = REMOTE_DATASETS[name]
    directory = Path(data_dir) if data_dir is not None else default_cache_dir() / name
    if has_standard_files(directory):
        return directory
    if data_dir is None:
        for system_dir in remote.system_dirs:
            if has_standard_files(system_dir):
                return Path(system_dir)
    if not download:
        raise DataError(f"{name}: not found in {directory}; run `rbmvae data download {name}`")
    fetch_files(remote.md5, remote.mirrors, directory, progress=True)
    return directory


def load_dataset(
    name: str | None = None,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset:
    """Load a data set by name (``mnist-sample``, ``mnist``, ``fashion-mnist``) or from a directory.

    With no name, ``data_dir`` is read as a directory of the four standard files; with neither,
    the embedded ``mnist-sample`` is loaded.

    >>> data = load_dataset("mnist-sample")
    >>> data.train_images.shape
    torch.Size([5000, 784])
    """
    if name is None and data_dir is None:
        name = SAMPLE_NAME
    directory = resolve_dataset_dir(name, data_dir, download=download)
    label = name if name not in (None, "dir") else None
    expected = REMOTE_DATASETS[name].sha256 if name in REMOTE_DATASETS else None
    dataset = read_idx_directory(directory, name=label, sha256=expected)
    if name == SAMPLE_NAME:
        dataset.provenance = SAMPLE_PROVENANCE
        dataset.source = "embedded in the rbmvae package"
    elif name in REMOTE_DATASETS:
        dataset.provenance = REMOTE_DATASETS[name].provenance
    return dataset


def dataset_for_model(
    meta: dict,
    name: str | None = None,
    data_dir: str | os.PathLike | None = None,
    model_dir: str | os.PathLike = "the model",
) -> Dataset:
    """The data set a checkpoint was trained on (``meta`` is its ``model.json``), or the one named.

    With neither ``name`` nor ``data_dir`` the checkpoint's own data set is loaded: by name, from
    the directory it was read from while that directory still holds the four files (so a model
    trained with ``--data-dir DIR`` needs no ``--data-dir`` afterwards). The images must have as
    many pixels as the model has visible units.
    """
    trained = meta.get("dataset", {}) if isinstance(meta.get("dataset"), dict) else {}
    trained_on = trained.get("name", SAMPLE_NAME)
    if name is None and data_dir is None:
        source = trained.get("source", "")
        remembered = source and Path(source).is_dir() and has_standard_files(source)
        if trained_on.startswith("dir:"):
            if not remembered:
                raise ConfigError(
                    f"{model_dir}: trained on {trained_on} from {source or 'an unknown place'}, "
                    "which no longer holds the four files; give the data with --data-dir"
                )
            name, data_dir = None, source
        else:
            name = trained_on
            data_dir = source if remembered and trained_on != SAMPLE_NAME else None
    data = load_dataset(name, data_dir)
    n_visible = meta.get("config", {}).get("n_visible")
    if n_visible is not None and n_visible != data.n_pixels:
        height, width = data.image_shape
        raise ConfigError(
            f"{model_dir}: the model takes {n_visible} pixels but {data.name} has {height}x{width}"
            f" = {data.n_pixels}; give the data it was trained on ({trained_on}) with --dataset "
            "or --data-dir"
        )
    return data


def image_shape_of(meta: dict) -> tuple[int, int]:
    """A checkpoint's image (height, width): its data set's, else square, else one row."""
    n_visible = int(meta.get("config", {}).get("n_visible", 784))
    shape = meta.get("dataset", {}).get("image_shape")
    if isinstance(shape, list) and len(shape) == 2 and shape[0] * shape[1] == n_visible:
        return int(shape[0]), int(shape[1])
    side = math.isqrt(n_visible)
    return (side, side) if side * side == n_visible else (1, n_visible)


# ----------------------------------------------------------------------------------------------
# Binarization

BINARIZATIONS = ("none", "threshold", "stochastic")


def binarize(
    images: torch.Tensor,
    mode: str = "stochastic",
    threshold: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Binarize grey images in [0, 1].

    ``none`` returns the grey values (used as Bernoulli probabilities); ``threshold`` returns
    ``images > threshold``; ``stochastic`` draws each pixel as Bernoulli(grey value), reproducibly
    from ``generator``.
    """
    if mode == "none":
        return images
    if mode == "threshold":
        return (images > threshold).to(images.dtype)
    if mode == "stochastic":
        noise = torch.rand(images.shape, generator=generator, device=images.device)
        return (noise < images).to(images.dtype)
    raise ConfigError(f"unknown binarization {mode!r}; choose one of {', '.join(BINARIZATIONS)}")
