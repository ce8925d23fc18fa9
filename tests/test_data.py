import gzip

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rbmvae.basics.errors import ConfigError, DataError
from rbmvae.data import STANDARD_FILES, binarize, fetch_files, load_dataset, read_idx_directory
from rbmvae.data.idx import read_idx, write_idx

MNIST_SIZED = {"n_train": 12, "n_test": 7, "shape": (28, 28)}  # for write_dataset


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    array = np.random.default_rng(0).integers(0, 256, (5, 3, 4), dtype=np.uint8)
    path = tmp_path / ("x.idx" + suffix)
    write_idx(path, array)
    np.testing.assert_array_equal(read_idx(path), array)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    gz=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_idx_round_trip_property(tmp_path_factory, shape, gz, seed):
    array = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path_factory.mktemp("idx") / ("a" + (".gz" if gz else ""))
    write_idx(path, array)
    np.testing.assert_array_equal(read_idx(path), array)


def _raw(tmp_path, data: bytes, name="bad-idx"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_wrong_magic_is_refused(tmp_path):
    path = _raw(tmp_path, b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError, match=r"bad-idx: wrong magic number"):
        read_idx(path)


def test_unsupported_type_is_refused(tmp_path):
    path = _raw(tmp_path, b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"abcd")
    with pytest.raises(DataError, match="unsupported IDX element type 0x0d"):
        read_idx(path)


def test_wrong_dimensions_are_refused(tmp_path):
    path = tmp_path / "labels-as-images"
    write_idx(path, np.zeros(5, dtype=np.uint8))
    with pytest.raises(
        DataError, match=r"labels-as-images: wrong number of dimensions 1 \(expected 3"
    ):
        read_idx(path, expected_ndim=3)


def test_truncated_payload_is_refused(tmp_path, corrupt):
    path = tmp_path / "imgs"
    write_idx(path, np.zeros((4, 28, 28), dtype=np.uint8))
    corrupt.truncate(path, -10)
    with pytest.raises(DataError, match="imgs: .*truncated or corrupt"):
        read_idx(path)


def test_truncated_gzip_is_refused(tmp_path, corrupt):
    path = tmp_path / "imgs.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8))
    corrupt.truncate(path, path.stat().st_size // 2)
    with pytest.raises(DataError, match=r"imgs.gz: (unreadable|truncated)"):
        read_idx(path)


def test_trailing_bytes_are_refused(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.zeros(5, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(path)


def test_huge_header_refused_before_allocation(tmp_path):
    header = b"\x00\x00\x08\x03" + (10**9).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    path = tmp_path / "liar.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(header + b"\x00" * 1000)
    with pytest.raises(DataError, match="liar.gz: header claims"):
        read_idx(path)


def test_directory_reader_and_count_mismatch(tmp_path, write_dataset):
    arrays = write_dataset(tmp_path, **MNIST_SIZED)
    data = read_idx_directory(tmp_path)
    assert data.train_images.shape == (12, 784) and data.train_images.dtype == torch.float32
    assert data.image_shape == (28, 28)
    np.testing.assert_allclose(
        data.test_images.numpy(), arrays["test_images"].reshape(7, -1) / 255.0, rtol=1e-6
    )
    assert data.train_labels.tolist() == arrays["train_labels"].tolist()
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(6, dtype=np.uint8))
    with pytest.raises(DataError, match="6 labels for 7 images"):
        read_idx_directory(tmp_path)


def test_directory_missing_file_and_empty_directory(tmp_path, write_dataset):
    with pytest.raises(DataError, match="missing train-images-idx3-ubyte"):
        read_idx_directory(tmp_path)
    write_dataset(tmp_path, **MNIST_SIZED, gz=False)
    assert read_idx_directory(tmp_path).train_images.shape[0] == 12  # raw files work too


def test_other_image_sizes_are_accepted_when_consistent(tmp_path, write_dataset):
    write_dataset(tmp_path, n_train=12, n_test=7, shape=(8, 6))
    data = read_idx_directory(tmp_path)
    assert data.image_shape == (8, 6) and data.n_pixels == 48
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((7, 6, 8), dtype=np.uint8))
    with pytest.raises(DataError, match="both splits need the same size"):
        read_idx_directory(tmp_path)


def test_embedded_sample(sample_data):
    assert sample_data.train_images.shape == (5000, 784)
    assert sample_data.test_images.shape == (10000, 784)
    assert torch.bincount(sample_data.train_labels).tolist() == [500] * 10
    official = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert torch.bincount(sample_data.test_labels).tolist() == official
    assert (
        float(sample_data.train_images.min()) >= 0.0 and float(sample_data.train_images.max()) <= 1
    )
    assert "CC BY-SA 3.0" in sample_data.provenance


def test_unknown_dataset_name():
    with pytest.raises(ConfigError, match="unknown data set 'nope'"):
        load_dataset("nope")


def test_binarize_modes(generator):
    grey = torch.tensor([[0.0, 0.2, 0.5, 0.9, 1.0]]).repeat(20000, 1)
    assert torch.equal(binarize(grey, "none"), grey)
    assert binarize(grey, "threshold")[0].tolist() == [0, 0, 0, 1, 1]
    draws = binarize(grey, "stochastic", generator=generator)
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(draws.mean(0), grey[0], atol=0.01, rtol=0)
    again = binarize(grey, "stochastic", generator=torch.Generator().manual_seed(1234))
    assert torch.equal(draws, again)
    with pytest.raises(ConfigError):
        binarize(grey, "sometimes")


# ---------------------------------------------------------------------------------------------
# downloads, against a local HTTP server


def test_download_verifies_hashes(http_server, tmp_path, write_dataset):
    root = tmp_path / "served"
    write_dataset(root, **MNIST_SIZED)
    http_server.serve(root)
    cache = tmp_path / "dl"
    found = fetch_files(http_server.md5s(root), [http_server.url], cache)
    assert set(found) == set(STANDARD_FILES)
    data = read_idx_directory(cache)
    assert data.train_images.shape == (12, 784)


def test_download_falls_back_to_next_mirror(http_server, tmp_path, write_dataset):
    root = tmp_path / "served"
    write_dataset(root, **MNIST_SIZED)
    http_server.serve(root)
    dead = "http://127.0.0.1:9/"  # discard port: connection refused
    found = fetch_files(http_server.md5s(root), [dead, http_server.url], tmp_path / "dl")
    assert len(found) == 4


def test_tampered_download_is_refused(http_server, tmp_path, write_dataset):
    root = tmp_path / "served"
    write_dataset(root, **MNIST_SIZED)
    md5 = http_server.md5s(root)
    target = root / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-5] + b"XXXXX")
    http_server.serve(root)
    cache = tmp_path / "dl"
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: download failed.*hash"):
        fetch_files(md5, [http_server.url], cache)
    assert not (cache / "train-images-idx3-ubyte.gz").exists()


def test_a_local_copy_of_mnist_is_checked_by_its_decompressed_content(full_mnist_dir, tmp_path):
    """The copy beside the project passes; the same content stored raw (re-compressed copies are
    the same case) passes; one altered label is refused in one line naming the file."""
    import shutil

    data = load_dataset("mnist", full_mnist_dir)
    assert data.train_images.shape == (60000, 784) and data.test_images.shape == (10000, 784)
    copy = tmp_path / "mnist"
    copy.mkdir()
    for path in full_mnist_dir.glob("*-ubyte.gz"):
        if "labels" in path.name:  # stored uncompressed: other bytes, the same content
            (copy / path.name[:-3]).write_bytes(gzip.decompress(path.read_bytes()))
        else:
            shutil.copyfile(path, copy / path.name)
    same = load_dataset("mnist", copy)
    assert torch.equal(same.test_labels, data.test_labels)
    labels = copy / "t10k-labels-idx1-ubyte"
    altered = bytearray(labels.read_bytes())
    altered[-1] = (altered[-1] + 1) % 10  # still a valid IDX file with a valid label
    labels.write_bytes(bytes(altered))
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", copy)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(labels))
    assert "t10k-labels-idx1-ubyte" in message and "altered" in message
    # a directory read as a directory (no name) is not held to MNIST's hashes
    assert load_dataset(None, copy).test_labels[-1] == altered[-1]
