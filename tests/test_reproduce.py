"""``rbmvae reproduce``: the quick profile end to end (as CI must run it), reuse, resume, report."""

import json

import pytest

from rbmvae.cli import main
from rbmvae.errors import ConfigError
from rbmvae.reproduce import resolve_settings, run_study
from rbmvae.training import ContrastiveDivergence, TrainingInterrupted

TINY = [
    "rbm_hidden=[6,12]",
    "vae_latent=[2]",
    "rbm.epochs=2",
    "vae.epochs=1",
    "vae_hidden=32",
    "evaluation.loglik_images=200",
    "evaluation.ais_runs=8",
    "evaluation.ais_betas=100",
    "evaluation.iwae_k=8",
    "evaluation.iwae_images=50",
    "evaluation.inpaint_images=20",
    "evaluation.inpaint_steps=10",
    "evaluation.figure_digits=3",
]


def test_settings_overrides_and_errors():
    settings = resolve_settings("quick", ["rbm.epochs=7", "vae_latent=[2,4]"], dataset="mnist")
    assert settings["rbm"]["epochs"] == 7 and settings["vae_latent"] == [2, 4]
    assert settings["dataset"] == "mnist" and settings["profile"] == "quick"
    assert resolve_settings("full")["evaluation"]["ais_betas"] == 14500
    with pytest.raises(ConfigError, match="unknown profile"):
        resolve_settings("medium")
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        resolve_settings("quick", ["rbm.epochs"])
    with pytest.raises(ConfigError, match="unknown setting 'evaluation.colour'"):
        resolve_settings("quick", ["evaluation.colour=1"])
    with pytest.raises(ConfigError, match="rbm_hidden must be a list of positive integers"):
        resolve_settings("quick", ["rbm_hidden=[0]"])


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


def test_rerun_reuses_and_resumes(tiny_run):
    out, settings, first = tiny_run
    again = run_study(out, settings, progress=False)
    assert {m["action"] for m in again["models"].values()} == {"reused"}
    assert again["models"]["rbm-h6"]["evaluation"] == first["models"]["rbm-h6"]["evaluation"]
    # a run interrupted (Ctrl-C) in the middle of a model's training goes on where it stopped
    longer = json.loads(json.dumps(settings))
    longer["rbm"]["epochs"] = 3  # the stored models no longer match: they are retrained
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


def test_quick_profile_and_report_in_a_browser(tmp_path_factory, browser, capsys):
    """The README's main job: `rbmvae reproduce --profile quick`, then the report in chromium."""
    out = tmp_path_factory.mktemp("quick")
    assert main(["reproduce", "--profile", "quick", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "RBM, 500 hidden" in printed and "VAE, z = 16" in printed
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
