"""``rbmvae reproduce`` (:mod:`rbmvae.study`): settings and overrides, the quick profile end to
end (as CI must run it), reuse, resume, a study without RBMs, the figures' masks, the report."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

import rbmvae.evaluation.scoring
import rbmvae.pages.figures
from rbmvae.basics.errors import ConfigError
from rbmvae.cli import main
from rbmvae.evaluation import EvaluationSettings
from rbmvae.study import (
    FULL,
    LITERATURE,
    PROFILES,
    QUICK,
    StudySettings,
    resolve_settings,
    run_study,
)
from rbmvae.training import TrainConfig, TrainingInterrupted
from rbmvae.training.objectives import ContrastiveDivergence

TINY = [
    "rbm_hidden=[6,12]",
    "vae_latent=[2]",
    "rbm.epochs=2",
    "vae.epochs=1",
    "vae_hidden=32",
    "evaluation.likelihood_images=200",
    "evaluation.ais_runs=8",
    "evaluation.ais_betas=100",
    "evaluation.iwae_k=8",
    "evaluation.iwae_images=50",
    "evaluation.inpaint_images=20",
    "evaluation.inpaint_steps=10",
    "figure_digits=3",
]


# What the quick profile writes (the same files as before the study became a package).
QUICK_MODELS = ["rbm-h20", "rbm-h100", "rbm-h500", "vae-z2", "vae-z8", "vae-z16"]
QUICK_FIGURES = [
    *(
        f"rbm-curve-{m}"
        for m in ("free_energy_gap", "pseudo_log_likelihood", "reconstruction_error")
    ),
    *(f"{name}-{what}" for name in QUICK_MODELS[:3] for what in ("filters", "samples")),
    "rbm-inpainting",
    "vae-curve-test_elbo",
    "vae-inpainting-metropolis",
    "vae-inpainting-pseudo-gibbs",
    *(
        f"{name}-{what}"
        for name in QUICK_MODELS[3:]
        for what in ("latents", "reconstructions", "samples")
    ),
    "vae-z2-manifold",
    "vae-z8-traversal",
    "vae-z16-traversal",
]
QUICK_FILES = {
    "baselines/evaluation.json",
    "metrics.json",
    "report.html",
    "settings.json",
    *(f"figures/{name}.png" for name in QUICK_FIGURES),
    *(
        f"models/{name}/{file}"
        for name in QUICK_MODELS
        for file in (
            "evaluation.json",
            "model.json",
            "model.safetensors",
            "training_state.safetensors",
        )
    ),
}


def test_settings_overrides_and_errors():
    settings = resolve_settings("quick", ["rbm.epochs=7", "vae_latent=[2,4]"], dataset="mnist")
    assert isinstance(settings, StudySettings)
    assert settings.training["rbm"].epochs == 7 and settings.vae_latent == (2, 4)
    assert settings.dataset == "mnist" and settings.profile == "quick"
    assert settings.to_dict()["rbm"]["epochs"] == 7 and settings.to_dict()["vae_latent"] == [2, 4]
    assert resolve_settings("full").evaluation.ais_betas == 14500
    changed = resolve_settings("quick", ["evaluation.ais_betas=30000", "rbm_hidden=[20,50]"])
    assert changed.evaluation.ais_betas == 30000 and changed.rbm_hidden == (20, 50)
    assert resolve_settings("quick", ["seed=3"]).train_config("vae").seed == 3
    with pytest.raises(ConfigError, match="unknown profile"):
        resolve_settings("medium")
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        resolve_settings("quick", ["rbm.epochs"])
    with pytest.raises(ConfigError, match="unknown setting 'evaluation.colour'"):
        resolve_settings("quick", ["evaluation.colour=1"])
    with pytest.raises(ConfigError, match="unknown setting 'rbm.colour'"):
        resolve_settings("quick", ["rbm.colour=1"])
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        resolve_settings("quick", ["colour=1"])
    with pytest.raises(ConfigError, match="rbm_hidden must be a list of positive integers"):
        resolve_settings("quick", ["rbm_hidden=[0]"])
    with pytest.raises(ConfigError, match="epochs must be a positive integer"):
        resolve_settings("quick", ["rbm.epochs=0"])
    # the old names of two evaluation settings are refused with the new name
    for old, new in (("loglik_images", "likelihood_images"), ("binarize_seed", "seed")):
        with pytest.raises(ConfigError, match=f"now called 'evaluation.{new}'") as caught:
            resolve_settings("quick", [f"evaluation.{old}=5"])
        assert "\n" not in str(caught.value)


def test_show_settings_prints_the_resolved_settings(capsys):
    argv = ["reproduce", "--show-settings", "--set", "rbm_hidden=[]", "--set", "vae.epochs=3"]
    assert main(argv) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == resolve_settings("quick", ["rbm_hidden=[]", "vae.epochs=3"]).to_dict()
    assert shown["rbm_hidden"] == [] and shown["vae"]["epochs"] == 3
    assert main(["reproduce", "--show-settings", "--set", "evaluation.loglik_images=9"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "evaluation.likelihood_images" in error


def test_profiles_are_one_skeleton_with_the_documented_numbers():
    assert PROFILES == {"quick": QUICK, "full": FULL, "literature": LITERATURE}
    quick, full = QUICK.evaluation, FULL.evaluation
    numbers = ("ais_runs", "ais_betas", "iwae_k", "iwae_images", "likelihood_images")
    assert [getattr(quick, n) for n in numbers] == [32, 1000, 100, 200, 500]
    assert [getattr(full, n) for n in numbers] == [100, 14500, 500, None, None]  # all 10,000
    assert LITERATURE.evaluation.iwae_k == 5000 and LITERATURE.evaluation.inpaint_stability
    assert full.halves == ("top", "bottom")
    assert (quick.inpaint_images, quick.inpaint_steps, QUICK.figure_digits) == (50, 60, 6)
    assert (full.inpaint_images, full.inpaint_steps, FULL.figure_digits) == (500, 100, 8)
    assert (quick.inpaint_chains, quick.inpaint_start) == (1, "mean")
    for profile in (full, LITERATURE.evaluation):
        assert (profile.inpaint_chains, profile.inpaint_start) == (10, "neighbours")
    assert quick.fractions == full.fractions == (0.2, 0.5, 0.8) and quick.seed == full.seed == 0
    assert (QUICK.dataset, FULL.dataset) == ("mnist-sample", "mnist")
    assert QUICK.training["rbm"] == TrainConfig.defaults_for("rbm", epochs=5, method="cd", k=1)
    assert QUICK.training["vae"] == TrainConfig.defaults_for("vae", epochs=5)
    assert FULL.training["rbm"] == TrainConfig.defaults_for(
        "rbm", recipe="pcd", epochs=75, learning_rate=0.02
    )
    assert LITERATURE.training["rbm"] == TrainConfig.defaults_for("rbm", recipe="pcd", epochs=300)
    for rbm in (FULL.training["rbm"], LITERATURE.training["rbm"]):  # PCD-1, momentum 0.5 held
        assert (rbm.method, rbm.k, rbm.k_final, rbm.chains) == ("pcd", 1, 0, 0)
        assert rbm.momentum == rbm.final_momentum == 0.5 and rbm.lr_schedule == "linear"
    vae = FULL.training["vae"]
    assert (vae.epochs, vae.binarize, vae.lr_schedule, vae.iwae_k) == (
        30,
        "stochastic",
        "cosine",
        1,
    )
    assert LITERATURE.training["vae"].iwae_k == 5
    assert (FULL.training["rbm"].learning_rate, LITERATURE.training["rbm"].learning_rate) == (
        0.02,
        0.01,
    )
    for settings in (QUICK, FULL, LITERATURE):
        assert settings.rbm_hidden == (20, 100, 500) and settings.vae_latent == (2, 8, 16)
        assert settings.vae_hidden == 256 and isinstance(settings.evaluation, EvaluationSettings)
        layout = settings.to_dict()
        assert json.loads(json.dumps(layout)) == layout
        assert set(layout) == {
            "profile", "dataset", "seed", "rbm_hidden", "vae_latent", "vae_hidden",
            "figure_digits", "rbm", "vae", "evaluation",
        }  # fmt: skip
        assert layout["evaluation"] == settings.evaluation.to_dict()
    with pytest.raises(dataclasses.FrozenInstanceError):
        QUICK.seed = 1


def test_full_and_literature_profiles_keep_their_settings():
    """The runs on full MNIST were made with these settings (tests/data/profiles.json): a
    faster quick profile must not change them."""
    stored = json.loads((Path(__file__).parent / "data" / "profiles.json").read_text())
    assert FULL.to_dict() == stored["full"]
    assert LITERATURE.to_dict() == stored["literature"]
    # the quick profile scores the conditional log-likelihoods on fewer digits and AIS runs
    quick = QUICK.evaluation
    assert (quick.conditional_images, quick.conditional_ais_runs) == (5, 8)
    assert (FULL.evaluation.conditional_images, FULL.evaluation.conditional_ais_runs) == (100, 16)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    settings = resolve_settings("quick", TINY)
    metrics = run_study(out, settings, progress=False)
    return out, settings, metrics


def test_tiny_study_writes_everything(tiny_run):
    out, _, metrics = tiny_run
    for name in ("rbm-h6", "rbm-h12", "vae-z2"):
        assert (out / "models" / name / "model.json").exists()
        assert (out / "models" / name / "evaluation.json").exists()
        assert metrics["models"][name]["action"] == "trained"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["models"]["rbm-h6"]["evaluation"]["log_likelihood"]["exact"]
    assert saved["models"]["vae-z2"]["evaluation"]["log_likelihood"]["iwae"]
    figure_files = {f["path"] for f in saved["figures"]}
    for expected in (
        "figures/rbm-inpainting.png",
        "figures/vae-inpainting-metropolis.png",
        "figures/vae-z2-manifold.png",
        "figures/rbm-h12-filters.png",
        "figures/rbm-curve-pseudo_log_likelihood.png",
    ):
        assert expected in figure_files
    for entry in saved["figures"]:
        assert (out / entry["path"]).read_bytes()[:4] == b"\x89PNG" and entry["caption"]
    html = (out / "report.html").read_text()
    assert (
        html.count("<img ") == len(saved["figures"]) and "http://" not in html.split("<script")[0]
    )
    assert "training-mean fill" in html and "CC BY-SA 3.0" in html
    assert "3 standard errors" in html and "standard deviations" not in html


def test_rerun_reuses_and_resumes(tiny_run):
    out, settings, first = tiny_run
    again = run_study(out, settings, progress=False)
    assert {m["action"] for m in again["models"].values()} == {"reused"}
    assert again["models"]["rbm-h6"]["evaluation"] == first["models"]["rbm-h6"]["evaluation"]
    assert json.loads((out / "settings.json").read_text()) == settings.to_dict()
    # a run interrupted (Ctrl-C) in the middle of a model's training goes on where it stopped
    longer = resolve_settings("quick", [*TINY, "rbm.epochs=3"])  # the stored RBMs no longer match
    calls = {"n": 0}
    original = ContrastiveDivergence.step

    def interrupt_once(self, model, batch, generator):
        calls["n"] += 1
        if calls["n"] == 60:  # 50 steps per epoch: in the second epoch of rbm-h6
            raise KeyboardInterrupt
        return original(self, model, batch, generator)

    ContrastiveDivergence.step = interrupt_once
    try:
        with pytest.raises(TrainingInterrupted):
            run_study(out, longer, progress=False)
    finally:
        ContrastiveDivergence.step = original
    third = run_study(out, longer, progress=False)
    assert third["models"]["rbm-h6"]["action"] == "resumed"
    assert third["models"]["rbm-h12"]["action"] == "trained"
    assert third["models"]["vae-z2"]["action"] == "reused"
    assert third["models"]["rbm-h6"]["epochs"] == 3


def test_study_without_rbms_draws_the_scored_masks(tmp_path, monkeypatch, sample_data):
    """A study with no RBMs runs (issue 11: it crashed); its inpainting figures show the very
    masks the inpainting table scored, at the rows of the digits on show. No models at all: the
    baselines and a report."""
    scored, shown = [], []
    evaluation_masks, inpainting_panel = (
        rbmvae.evaluation.scoring.evaluation_masks,
        rbmvae.pages.figures.inpainting_panel,
    )

    def record_scored(*args, **kwargs):
        masks = evaluation_masks(*args, **kwargs)
        scored.append([mask.cpu().clone() for mask in masks])
        return masks

    def record_shown(original, mask, filled, *args, **kwargs):
        shown.append((original.cpu().clone(), mask.cpu().clone()))
        return inpainting_panel(original, mask, filled, *args, **kwargs)

    monkeypatch.setattr(rbmvae.evaluation.scoring, "evaluation_masks", record_scored)
    monkeypatch.setattr(rbmvae.pages.figures, "inpainting_panel", record_shown)
    chains = ["evaluation.inpaint_chains=2", "evaluation.inpaint_start=neighbours"]
    settings = resolve_settings("quick", [*TINY, "rbm_hidden=[]", "figure_digits=4", *chains])
    metrics = run_study(tmp_path / "no-rbm", settings, progress=False)
    assert set(metrics["models"]) == {"vae-z2"}
    paths = {f["path"] for f in metrics["figures"]}
    assert "figures/vae-inpainting-metropolis.png" in paths
    assert "figures/vae-inpainting-pseudo-gibbs.png" in paths
    assert not [p for p in paths if "rbm" in p]
    assert [row[0] for row in metrics["summary"]["rows"]] == ["VAE, z = 2"]
    html = (tmp_path / "no-rbm" / "report.html").read_text()
    assert "Variational autoencoders" in html and "Restricted Boltzmann Machines" not in html
    assert "±3 standard deviations" not in html and "3 standard errors" in html
    assert "2 chain(s) per image" in html and "nearest training image" in html
    inpainting = json.loads((tmp_path / "no-rbm/models/vae-z2/evaluation.json").read_text())
    assert inpainting["inpainting"]["settings"]["chains"] == 2

    # the model's rows, the baselines' rows and the figures use one set of masks per fraction
    assert len(scored) == 3 and len(scored[0]) == len(settings.evaluation.fractions)
    for a, b, c in zip(*scored, strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)
    masks = scored[0]
    n = settings.evaluation.inpaint_images
    assert masks[0].shape == (n, sample_data.n_pixels)
    # one panel per sampler and fraction, each with the scored mask rows of its digits
    assert len(shown) == 2 * len(masks)
    # the digits as scored: binarized with the evaluation's seed (binary evidence, the default)
    candidates = sample_data.binarized_test_images(n, settings.evaluation.seed)
    for index, (images, mask) in enumerate(shown):
        rows = [int((candidates == image).all(1).nonzero()[0]) for image in images]
        assert len(rows) == settings.figure_digits
        assert len(set(sample_data.test_labels[rows].tolist())) == len(rows)  # different digits
        assert torch.equal(mask, masks[index % len(masks)][rows])

    nothing = resolve_settings("quick", [*TINY, "rbm_hidden=[]", "vae_latent=[]"])
    empty = run_study(tmp_path / "nothing", nothing, progress=False)
    assert empty["models"] == {} and empty["figures"] == [] and empty["summary"]["rows"] == []
    assert empty["baselines"]["inpainting"]["rows"]
    html = (tmp_path / "nothing" / "report.html").read_text()
    assert "training-mean fill" in html and "Not available" in html


def test_quick_profile_and_report_in_a_browser(tmp_path_factory, browser, capsys):
    """The README's main job: `rbmvae reproduce --profile quick`, then the report in chromium."""
    out = tmp_path_factory.mktemp("quick")
    assert main(["reproduce", "--profile", "quick", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "RBM, 500 hidden" in printed and "VAE, z = 16" in printed
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {p for p in written if not p.endswith("/.lock")} == QUICK_FILES
    report = out / "report.html"
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else 0)
    page.on("pageerror", lambda e: problems.append(str(e)))
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    sizes = page.evaluate(
        "Array.from(document.querySelectorAll('figure img')).map(i => "
        "[i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width, "
        "i.getBoundingClientRect().height])"
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(sizes) == len(metrics["figures"]) >= 20
    assert all(min(s) > 0 for s in sizes), sizes
    assert problems == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    page.screenshot(path=str(out / "report.png"), full_page=False)
    page.close()
    # issue 8: after the quick run, `rbmvae explore` writes the page
    assert main(["explore", "--run", str(out), "--out", str(out / "explore.html")]) == 0
    assert (out / "explore.html").stat().st_size < 5_000_000


def test_workers_do_what_one_process_does(tiny_run, tmp_path, capsys):
    """Two worker processes train and score every model (largest first) and the run reuses
    their files; the figures match the one-process run's to the rounding of the products."""
    _, settings, sequential = tiny_run
    metrics = run_study(tmp_path, settings, progress=True, jobs=2)
    assert metrics["workers"]["processes"] == 2 and sequential["workers"]["processes"] == 1
    assert {m["action"] for m in metrics["models"].values()} == {"trained"}
    assert "in 2 worker processes" in capsys.readouterr().err
    for name in ("rbm-h6", "rbm-h12", "vae-z2"):
        assert metrics["seconds"][f"train {name}"] > 0.05  # the worker's time, not the reuse's
        ours = metrics["models"][name]["evaluation"]["log_likelihood"]
        theirs = sequential["models"][name]["evaluation"]["log_likelihood"]
        for estimate in {"exact", "ais", "iwae"} & set(theirs):
            a, b = (side[estimate]["mean_log_likelihood"]["value"] for side in (ours, theirs))
            assert a == pytest.approx(b, abs=0.05), (name, estimate)
    assert (tmp_path / "report.html").exists() and (tmp_path / "baselines/evaluation.json").exists()
    again = run_study(tmp_path, settings, progress=False, jobs=2)
    assert {m["action"] for m in again["models"].values()} == {"reused"}


def test_jobs_are_checked_and_ordered_by_cost():
    from rbmvae.study.parallel import estimated_cost, resolve_jobs

    cpu = torch.device("cpu")
    assert resolve_jobs(3, cpu, 7) == 3 and resolve_jobs(None, cpu, 1) == 1
    assert resolve_jobs(None, torch.device("meta"), 7) == 1  # not a CPU: one process
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="jobs must be"):
            resolve_jobs(bad, cpu, 7)
    shape = (60000, 10000, 784)
    costs = {
        spec.name: estimated_cost(spec, FULL.train_config(spec.kind), FULL.evaluation, shape)
        for spec in FULL.model_specs()
    }
    assert max(costs, key=costs.get) == "rbm-h500" and min(costs, key=costs.get) == "rbm-h20"
    assert costs["vae-z16"] > costs["vae-z2"]


def test_a_run_ships_as_pretrained_models(tiny_run, tmp_path):
    from rbmvae.study.ship import ship_run
    from rbmvae.training.checkpoint import load_model

    out, _, metrics = tiny_run
    names = ship_run(out, tmp_path)
    assert names == list(metrics["models"])
    for name in names:
        card = json.loads((tmp_path / name / "card.json").read_text())
        stored = json.loads((out / "models" / name / "evaluation.json").read_text())
        likelihood = stored["log_likelihood"]  # the evaluation beside the checkpoint
        assert card["log_likelihood"] == likelihood
        if "exact" in likelihood:  # the enumeration, with AIS beside it as a check
            assert card["headline"]["value"] == likelihood["exact"]["mean_log_likelihood"]["value"]
        elif "ais" in likelihood:  # AIS, or None where a check failed
            ais = likelihood["ais"]
            shown = ais["mean_log_likelihood"]["value"] if ais["reliable"] else None
            assert card["headline"]["value"] == shown
        else:  # z = 2: the quadrature is the headline, IWAE beside it
            quadrature = likelihood["quadrature"]["mean_log_likelihood"]["value"]
            assert card["headline"]["value"] == quadrature
            assert "IWAE" in card["headline"]["checks"][0]
        assert card["provenance"]["profile"] == "quick"
        meta = json.loads((tmp_path / name / "model.json").read_text())
        assert meta["dataset"]["source"] == ""
        model, _ = load_model(tmp_path / name)
        assert model.label() == card["label"]
