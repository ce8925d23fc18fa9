"""IDX files, the format of MNIST and Fashion-MNIST: a validating reader and a writer.

The reader checks the magic number, the dimensions and the payload size before it allocates, so a
damaged or hostile file is refused with a one-line :class:`DataError`, never a huge allocation.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..basics.atomic import atomic_path
from ..basics.errors import DataError

_IDX_DTYPES = {0x08: np.uint8}
# deflate cannot expand data by more than about 1032:1; a header that claims more is a lie.
_MAX_GZIP_RATIO = 1100
_READ_CHUNK = 1 << 20


def _bad_idx(path: Path, what: str) -> DataError:
    return DataError(f"{path}: {what}; replace it with a valid copy (delete it and fetch it again)")


def _read_header(stream, path: Path, expected_ndim: int | None) -> tuple[bytes, bytes]:
    """The IDX magic (4 bytes) and the dimension bytes read from ``stream``, each checked."""
    header = stream.read(4)
    if len(header) < 4:
        raise _bad_idx(path, "truncated IDX file (no complete header)")
    zero1, zero2, type_code, ndim = header
    if zero1 != 0 or zero2 != 0:
        raise _bad_idx(
            path, f"wrong magic number 0x{header.hex()} (not an IDX file; expected 0x0000080N)"
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
    return header, dim_bytes


def read_idx(path: str | os.PathLike, expected_ndim: int | None = None, digest=None) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed, told apart by content) into a NumPy array.

    ``digest`` (a :mod:`hashlib` object), when given, is fed every decompressed byte of the file,
    so it ends as the hash of the file's content whatever its compression.

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
            header, dim_bytes = _read_header(stream, path, expected_ndim)
            type_code, ndim = header[2], header[3]
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
            if digest is not None:
                for part in (header, dim_bytes, data):
                    digest.update(part)
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
