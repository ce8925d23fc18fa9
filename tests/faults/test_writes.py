"""A write that fails (disk full midway, a rename refused) keeps the previous file byte for byte
and leaves no temporary behind: checkpoints, figures, the HTML report and IDX files."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

import rbmvae.basics.atomic
from rbmvae.basics.errors import OutputError
from rbmvae.data.idx import read_idx, write_idx
from rbmvae.models import RBM
from rbmvae.pages import figures
from rbmvae.pages.html import write_report
from rbmvae.training.checkpoint import load_model, save_model


def _half_then_fail(self, data):
    with open(self, "wb") as handle:
        handle.write(data[: len(data) // 2])
    raise OSError(28, "No space left on device")


def _replace_fails(src, dst):
    raise OSError(5, "Input/output error")


@pytest.mark.parametrize("failure", ["disk-full-midway", "rename-fails"])
@pytest.mark.parametrize("target", ["checkpoint", "figure", "report", "idx"])
def test_failed_write_keeps_the_old_file_and_no_temporary(
    target, failure, tmp_path, monkeypatch, snapshot, temp_files
):
    directory = tmp_path / "out"
    directory.mkdir()
    rbm = RBM(64, 4)

    def write(marker):
        if target == "checkpoint":
            save_model(rbm, directory, {"marker": marker})
        elif target == "figure":
            images = torch.full((4, 64), 0.3 if marker == "old" else 0.7)
            figures.save_image_grid(images, directory / "grid.png", (8, 8), title=marker)
        elif target == "report":
            write_report(directory / "report.html", marker, marker, [])
        else:
            value = 1 if marker == "old" else 2
            write_idx(directory / "x.gz", np.full((3, 2, 2), value, dtype=np.uint8))

    write("old")
    before = snapshot(directory)
    if failure == "disk-full-midway":
        monkeypatch.setattr(Path, "write_bytes", _half_then_fail)
        if target == "idx":  # write_idx streams through gzip: make that stream fail midway
            real_write = gzip.GzipFile.write

            def write_half(self, data):
                real_write(self, data[: len(data) // 2])
                raise OSError(28, "No space left on device")

            monkeypatch.setattr(gzip.GzipFile, "write", write_half)
    else:
        monkeypatch.setattr(rbmvae.basics.atomic.os, "replace", _replace_fails)
    with pytest.raises(OutputError) as caught:
        write("new")
    message = str(caught.value)
    assert "cannot write" in message and "\n" not in message and "previous file" in message
    assert snapshot(directory) == before
    assert not temp_files(directory)
    monkeypatch.undo()
    if target == "checkpoint":
        assert load_model(directory)[1]["marker"] == "old"
    elif target == "idx":
        assert read_idx(directory / "x.gz").max() == 1


def test_write_failure_at_the_command_line(
    tiny_model, tmp_path, monkeypatch, run_cli, assert_cli_error, temp_files
):
    png = tmp_path / "s.png"
    png.write_bytes(b"old picture")
    monkeypatch.setattr(Path, "write_bytes", _half_then_fail)
    argv = ["sample", "--model", tiny_model, "--n", "2", "--steps", "1", "--out", png]
    assert_cli_error(run_cli(*argv), "s.png: cannot write (No space left on device)")
    monkeypatch.undo()
    assert png.read_bytes() == b"old picture" and not temp_files(tmp_path)
