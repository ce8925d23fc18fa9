"""Bad data directories and files, at the command line: exit status 2, exactly one line on stderr,
starting ``rbmvae: error:``, and no traceback; and images of any consistent size."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from rbmvae.basics.errors import DataError
from rbmvae.data import STANDARD_FILES
from rbmvae.data.idx import read_idx, write_idx
from rbmvae.pages import figures
from rbmvae.training.checkpoint import META_FILE, load_model

REFETCH = "replace it with a valid copy (delete it and fetch it again)"


def file_of(directory, key):
    return Path(directory) / (STANDARD_FILES[key] + ".gz")


def _break_missing(d, corrupt):
    file_of(d, "test_labels").unlink()
    return "missing t10k-labels-idx1-ubyte", "put the four standard files there"


def _break_truncated_gzip(d, corrupt):
    path = file_of(d, "train_images")
    corrupt.truncate(path, path.stat().st_size // 2)
    return "train-images-idx3-ubyte.gz: unreadable", REFETCH


def _break_magic(d, corrupt):
    path = file_of(d, "train_labels")
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(b"\x12\x34" + raw[2:]))
    return "wrong magic number 0x1234", REFETCH


def _break_dimensions(d, corrupt):
    write_idx(file_of(d, "test_labels"), np.zeros((12, 2, 2), dtype=np.uint8))
    return "t10k-labels-idx1-ubyte.gz: wrong number of dimensions 3 (expected 1)", REFETCH


def _break_counts(d, corrupt):
    write_idx(file_of(d, "train_labels"), np.zeros(39, dtype=np.uint8))
    return "39 labels for 40 images", "the two files must come from the same set"


def _break_sizes(d, corrupt):
    write_idx(file_of(d, "test_images"), np.zeros((12, 6, 8), dtype=np.uint8))
    return "images are (6, 8) but the training images are (8, 8)", "need the same size"


def _break_empty(d, corrupt):
    for path in list(Path(d).iterdir()):
        path.unlink()
    return "missing train-images-idx3-ubyte", "put the four standard files there"


DATA_FAULTS = {
    "missing-file": _break_missing,
    "truncated-gzip": _break_truncated_gzip,
    "wrong-magic": _break_magic,
    "wrong-dimensions": _break_dimensions,
    "count-mismatch": _break_counts,
    "train-test-size-mismatch": _break_sizes,
    "empty-directory": _break_empty,
}


@pytest.mark.parametrize("command", ["data-info", "data-info-positional", "train"])
@pytest.mark.parametrize("fault", list(DATA_FAULTS))
def test_bad_data_directory_is_one_clear_line(
    fault, command, tmp_path, write_dataset, corrupt, run_cli, assert_cli_error
):
    directory = tmp_path / "data"
    write_dataset(directory)
    what, todo = DATA_FAULTS[fault](directory, corrupt)
    argv = {
        "data-info": ["data", "info", "--data-dir", directory],
        "data-info-positional": ["data", "info", directory],
        "train": ["train", "rbm", "--data-dir", directory, "--out", tmp_path / "m", "--quiet"],
    }[command]
    assert_cli_error(run_cli(*argv), what, todo)
    assert not (tmp_path / "m" / META_FILE).exists()


def test_missing_file_or_directory_is_refused(tmp_path, run_cli, assert_cli_error):
    with pytest.raises(DataError, match=r"nowhere\.gz: file not found; check the path"):
        read_idx(tmp_path / "nowhere.gz")
    assert_cli_error(
        run_cli("data", "info", "--data-dir", tmp_path / "nope"),
        "nope: data directory not found; check the --data-dir path",
    )


def test_gzip_detected_by_content_not_name(tmp_path):
    """A gzip file without .gz (or a raw file with it) is read, not misreported as corrupt."""
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    (tmp_path / "a-no-suffix").write_bytes((tmp_path / "a.gz").read_bytes())
    write_idx(tmp_path / "b", array)
    (tmp_path / "b.gz").write_bytes((tmp_path / "b").read_bytes())
    for name in ("a-no-suffix", "b.gz"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)


def test_any_image_size_works_everywhere_when_consistent(
    tmp_path, monkeypatch, write_dataset, run_cli, assert_cli_error
):
    """8x6 images: `data info`, `train rbm --data-dir`, then `inpaint` and `sample` draw 8x6."""
    directory = tmp_path / "data"
    write_dataset(directory, shape=(8, 6))
    code, out, _ = run_cli("data", "info", "--data-dir", directory)
    assert code == 0 and json.loads(out)["image_shape"] == [8, 6]
    model_dir = tmp_path / "rbm86"
    argv = ["train", "rbm", "--data-dir", directory, "--hidden", "5", "--epochs", "1"]
    code, _, err = run_cli(*argv, "--batch-size", "8", "--out", model_dir, "--quiet")
    assert code == 0, err
    model, meta = load_model(model_dir)
    assert model.n_visible == 48 and meta["dataset"]["image_shape"] == [8, 6]

    drawn = []
    original_tile = figures.tile_images

    def spy(images, image_shape=(28, 28), *args, **kwargs):
        drawn.append((tuple(image_shape), tuple(np.shape(images))))
        return original_tile(images, image_shape, *args, **kwargs)

    monkeypatch.setattr(figures, "tile_images", spy)
    png = tmp_path / "inpaint.png"
    argv = ["inpaint", "--model", model_dir, "--data-dir", directory, "--missing", "square:3"]
    code, out, err = run_cli(*argv, "--n", "4", "--steps", "4", "--out", png, "--json")
    assert code == 0, err
    assert json.loads(out)["missing_pixels"] == 4 * 9
    assert drawn == [((8, 6), (12, 48, 3))]  # original, masked and inpainted rows of 4
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn.clear()
    sample = ["sample", "--model", model_dir, "--n", "6", "--steps", "3"]
    code, _, err = run_cli(*sample, "--out", tmp_path / "s.png")
    assert code == 0, err
    assert drawn == [((8, 6), (6, 48))]

    # the checkpoint remembers its data directory; once that is gone the data must be given
    code, _, err = run_cli("inpaint", "--model", model_dir, "--n", "2", "--out", png)
    assert code == 0, err
    directory.rename(tmp_path / "moved")
    assert_cli_error(
        run_cli("inpaint", "--model", model_dir, "--out", png),
        "trained on dir:data from",
        "no longer holds the four files; give the data with --data-dir",
    )
    assert_cli_error(
        run_cli("inpaint", "--model", model_dir, "--dataset", "mnist-sample", "--out", png),
        "the model takes 48 pixels but mnist-sample has 28x28 = 784",
    )


def test_data_dir_is_not_silently_ignored(tmp_path, write_dataset, run_cli, assert_cli_error):
    """`--data-dir` alone reads that directory; with the embedded sample it is refused."""
    directory = tmp_path / "data"
    write_dataset(directory, n_train=7, n_test=3)
    code, out, _ = run_cli("data", "info", "--data-dir", directory)
    assert code == 0 and json.loads(out)["n_train"] == 7
    out_dir = tmp_path / "m"
    argv = ["train", "rbm", "--data-dir", directory, "--hidden", "3", "--epochs", "1"]
    assert run_cli(*argv, "--out", out_dir, "--quiet")[0] == 0
    assert json.loads((out_dir / META_FILE).read_text())["dataset"]["n_train"] == 7
    assert_cli_error(
        run_cli("data", "info", "mnist-sample", "--data-dir", directory),
        "mnist-sample is embedded in the package and takes no --data-dir",
    )
