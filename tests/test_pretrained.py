"""The trained models shipped with the package: six files, each re-scored quickly and checked
against its card, so that a shipped file that no longer matches its card fails; the API and the
command line that reach them."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

import rbmvae
from rbmvae.zoo import RESCORE_IMAGES, card, model_directory, pretrained_names, rescore

NAMES = ["rbm-h20", "rbm-h100", "rbm-h500", "vae-z2", "vae-z8", "vae-z16"]


def _recorded_log_z(card: dict) -> float:
    likelihood = card["log_likelihood"]
    part = likelihood.get("exact") or likelihood["ais"]
    return part["log_z"]["value"]


def test_the_six_models_ship_as_float32_under_10_mb():
    assert pretrained_names() == NAMES
    total = 0
    for name in NAMES:
        weights = model_directory(name) / "model.safetensors"
        total += sum(p.stat().st_size for p in model_directory(name).iterdir())
        with safe_open(str(weights), "pt") as tensors:
            assert {str(tensors.get_tensor(k).dtype) for k in tensors.keys()}  # noqa: SIM118 == {"torch.float32"}
        meta = json.loads((model_directory(name) / "model.json").read_text())
        assert meta["dataset"]["source"] == ""  # no path of the machine that trained it
        provenance = card(name)["provenance"]
        assert provenance["profile"] == "literature" and len(provenance["commit"]) == 40
    assert total < 10 * 2**20


@pytest.mark.parametrize("name", NAMES)
def test_a_shipped_model_still_matches_its_card(name, sample_data):
    recorded = card(name)
    model = rbmvae.pretrained(name)
    assert model.label() == recorded["label"] and not model.training
    test = sample_data.binarized_test_images(RESCORE_IMAGES, seed=0)  # MNIST's first test digits
    now = rescore(model, test, sample_data.train_images)
    then = recorded["rescore"]
    headline = recorded["headline"]["value"]
    if model.kind == "rbm":
        # the free energy is deterministic: it pins the weights to the card's
        assert now["mean_free_energy"] == pytest.approx(then["mean_free_energy"], abs=1e-3)
        log_z = _recorded_log_z(recorded)
        if now["log_z_error"] == 0.0:  # exact: the card's log Z, to rounding
            assert now["log_z"] == pytest.approx(log_z, abs=1e-4)
        else:  # a short AIS: within its +-3 s.e., and below by no more than its bias allowance
            assert log_z - then["bias_allowance"] <= now["log_z"] <= log_z + 3 * now["log_z_error"]
    else:  # IWAE from the same seeded draws: the same figure, to rounding
        assert now["mean_log_likelihood"] == pytest.approx(then["mean_log_likelihood"], abs=0.01)
    # the first 500 digits against the card's 10,000: within 4 standard errors of a 500-digit
    # mean, plus (VAE) the gap between K = 200 and the card's K = 5,000
    slack = 4 * now["standard_error"] + (2.0 if model.kind == "vae" else 0.0)
    figure = (
        -now["mean_free_energy"] - _recorded_log_z(recorded)
        if model.kind == "rbm"
        else (now["mean_log_likelihood"])
    )
    assert abs(figure - headline) < slack


def test_the_command_line_lists_and_uses_them(run_cli, tmp_path):
    listing = run_cli("pretrained")
    assert listing.code == 0
    for name in NAMES:
        assert f"pretrained:{name}" in listing.out
    grid = tmp_path / "grid.png"
    filled = run_cli(
        "inpaint",
        "--model",
        "pretrained:rbm-h20",
        "--missing",
        "0.5",
        "--n",
        "4",
        "--out",
        str(grid),
    )
    assert filled.code == 0 and grid.stat().st_size > 0
    unknown = run_cli("sample", "--model", "pretrained:rbm-h7", "--out", str(tmp_path / "s.png"))
    assert unknown.code == 2 and "no pretrained model 'rbm-h7'" in unknown.err
    assert "rbm-h500" in unknown.err  # the error names the known models


def test_the_explorer_runs_the_six_shipped_models(run_cli, tmp_path):
    page = tmp_path / "explore.html"
    result = run_cli("explore", "--pretrained", "--out", page, "--digits", "4")
    assert result.code == 0, result.err
    assert "6 models (rbm-h20, rbm-h100, rbm-h500, vae-z2, vae-z8, vae-z16)" in result.out
    assert 0 < page.stat().st_size < 5 * 10**6  # one offline page, under 5 MB
