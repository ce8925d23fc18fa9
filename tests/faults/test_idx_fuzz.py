"""The IDX reader against random and mutated bytes (Hypothesis): it returns a consistent array or
raises a one-line DataError, in bounded time and memory, and refuses lying headers before
allocating."""

import gzip
import re
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from rbmvae.basics.errors import DataError
from rbmvae.data.idx import read_idx


def _idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    return (
        bytes([0, 0, 8, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )


_SEEDS = [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.arange(7, dtype=np.uint8),
    np.full((5, 28, 28), 200, dtype=np.uint8),
    np.zeros((0, 2, 2), dtype=np.uint8),
]

_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 16)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(None)),
    st.tuples(st.just("ndim"), st.just(0), st.sampled_from([0, 1, 2, 3, 4, 255])),
    st.tuples(
        st.just("dimension"),
        st.integers(1, 4),  # which 32-bit header field after the magic number
        st.sampled_from([0, 1, 255, 2**16, 10**9, 2**31, 2**32 - 1]),
    ),
)


def _mutate(data: bytes, mutations) -> bytes:
    data = bytearray(data)
    for kind, where, what in mutations:
        if kind in ("ndim", "dimension"):
            start = 4 * where
            data.extend(b"\x00" * max(0, start + 4 - len(data)))
            field = bytes([0, 0, 8, what]) if kind == "ndim" else what.to_bytes(4, "big")
            data[start : start + 4] = field
            continue
        position = where % (len(data) + 1)
        if kind == "flip" and position < len(data):
            data[position] ^= 1 << what
        elif kind == "insert":
            data[position:position] = what
        elif kind == "delete":
            del data[position : position + what]
        elif kind == "truncate":
            del data[position:]
    return bytes(data)


def _check_reader(path: Path, expected_ndim=None) -> None:
    """read_idx returns a consistent array or raises DataError; memory stays within the file."""
    size = path.stat().st_size
    gz = path.read_bytes()[:2] == b"\x1f\x8b"
    could_hold = size * 1100 if gz else size  # deflate cannot expand beyond about 1032:1
    tracemalloc.start()
    started = time.perf_counter()
    try:
        array = read_idx(path, expected_ndim=expected_ndim)
    except DataError as error:
        assert "\n" not in str(error) and str(path) in str(error)
        event(re.sub(r"0x\w+|\d[\d,]*", "N", str(error).split(": ", 1)[1].split(";")[0])[:50])
        array = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - started < 2
    assert peak < 3 * could_hold + 256 * 1024, (peak, size)
    if array is not None:
        event("read a valid array")
        assert array.dtype == np.uint8 and array.nbytes <= could_hold
        raw = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
        ndim = raw[3]
        assert array.shape == struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
        assert array.tobytes() == raw[4 + 4 * ndim :]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.sampled_from(range(len(_SEEDS))),
    mutations=st.lists(_mutation, max_size=6),
    compress=st.sampled_from(["raw", "gz-before", "gz-after"]),
    suffix=st.sampled_from(["", ".gz"]),
    expected_ndim=st.sampled_from([None, 1, 3]),
)
@example(seed=0, mutations=[("dimension", 1, 10**9)], compress="raw", suffix="", expected_ndim=3)
@example(seed=2, mutations=[("dimension", 1, 10**9)], compress="gz-after", suffix=".gz",
         expected_ndim=None)  # fmt: skip
@example(  # dimensions whose product wraps around to 0 in 64-bit arithmetic
    seed=0,
    mutations=[("dimension", 1, 2**31), ("dimension", 2, 2**31), ("dimension", 3, 4),
               ("truncate", 16, None)],
    compress="raw", suffix="", expected_ndim=None,
)  # fmt: skip
def test_idx_reader_never_fails_otherwise(
    tmp_path, seed, mutations, compress, suffix, expected_ndim
):
    data = _idx_bytes(_SEEDS[seed])
    if compress == "raw":
        blob = _mutate(data, mutations)
    elif compress == "gz-after":  # a valid gzip stream of a mutated IDX file
        blob = gzip.compress(_mutate(data, mutations))
    else:  # a mutated gzip stream
        blob = _mutate(gzip.compress(data), mutations)
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(blob)
    _check_reader(path, expected_ndim)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=2048), gz=st.booleans())
def test_idx_reader_on_random_bytes(tmp_path, blob, gz):
    path = tmp_path / "random.idx"
    path.write_bytes(gzip.compress(blob) if gz else blob)
    _check_reader(path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("ndim", [1, 3, 255])
def test_header_claiming_a_billion_images_is_refused_before_allocation(tmp_path, gz, ndim):
    dims = [10**9] + [28] * (ndim - 1) if ndim <= 3 else [2**32 - 1] * ndim
    header = bytes([0, 0, 8, ndim]) + struct.pack(f">{ndim}I", *dims)
    blob = header + bytes(1024 - len(header) % 1024)
    path = tmp_path / ("liar.gz" if gz else "liar")
    path.write_bytes(gzip.compress(blob) if gz else blob)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(
        DataError, match="liar(.gz)?: header claims dimensions .* truncated or corrupt"
    ):
        read_idx(path)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 256 * 1024 and elapsed < 0.5, (peak, elapsed)
