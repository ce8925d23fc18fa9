"""Downloads cut off midway or with the wrong hash, against a local 127.0.0.1 HTTP server: nothing
is kept under the final name, and the command line says so in one line."""

import pytest

import rbmvae.data
from rbmvae.basics.errors import DataError
from rbmvae.data import RemoteDataset, fetch_files, read_idx_directory


def test_download_cut_off_midway_leaves_nothing(http_server, tmp_path, write_dataset):
    source = tmp_path / "source"
    write_dataset(source, n_train=400)
    http_server.serve(source, cut_off={"train-labels-idx1-ubyte"})
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as caught:
        fetch_files(http_server.md5s(source), [http_server.url], cache)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("train-labels-idx1-ubyte.gz: download failed")
    assert "IncompleteRead" in message and "retry" in message
    assert not (cache / "train-labels-idx1-ubyte.gz").exists()
    assert sorted(p.name for p in cache.iterdir()) == ["train-images-idx3-ubyte.gz"]
    # the complete file is then fetched on the next try, and verified
    http_server.serve(source)
    found = fetch_files(http_server.md5s(source), [http_server.url], cache)
    assert read_idx_directory(cache).train_images.shape == (400, 64) and len(found) == 4


@pytest.mark.parametrize("fault", ["wrong-hash", "cut-off"])
def test_download_failures_at_the_command_line(
    fault, http_server, tmp_path, monkeypatch, write_dataset, run_cli
):
    source = tmp_path / "source"
    write_dataset(source)
    md5 = http_server.md5s(source)
    if fault == "wrong-hash":
        md5["test_images"] = "0" * 32
        http_server.serve(source)
    else:
        http_server.serve(source, cut_off={"t10k-images-idx3-ubyte"})
    fake = RemoteDataset(name="mnist", mirrors=(http_server.url,), md5=md5)
    monkeypatch.setitem(rbmvae.data.REMOTE_DATASETS, "mnist", fake)
    cache = tmp_path / "cache"
    code, _, err = run_cli("data", "download", "mnist", "--data-dir", cache)
    errors = [line for line in err.splitlines() if line.startswith("rbmvae: error:")]
    assert code == 2 and len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    assert "Traceback" not in err
    assert "t10k-images-idx3-ubyte.gz: download failed" in errors[0]
    assert ("hash mismatch" if fault == "wrong-hash" else "IncompleteRead") in errors[0]
    assert not (cache / "t10k-images-idx3-ubyte.gz").exists()
    assert not [p for p in cache.iterdir() if p.name.startswith("t10k-images")]
