"""`rbmvae results`: the tables of runs' metrics.json (study/tables.py) and their blocks in
Markdown files (study/results.py): the numbers, "unreliable" never as a number, the published
figures, the markers, and the errors; README.md and docs/results.md as the committed runs give
them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rbmvae.basics.errors import ConfigError, DataError
from rbmvae.study.results import (
    StaleError,
    check_tables,
    load_runs,
    portable_metrics,
    update_markdown,
)
from rbmvae.study.tables import headline_table, inpainting_table, training_table

ROOT = Path(__file__).resolve().parents[1]
NATS = "nats per image"


def fig(value, unit=NATS):
    return {"value": value, "unit": unit}


def ais(mean, low, effective, delta, reliable=True, problems=()):
    return {
        "mean_log_likelihood": fig(mean),
        "n_runs": 100,
        "n_betas": 14500,
        "effective_runs": fig(effective, "runs"),
        "doubled_betas": {"delta": fig(delta, "nats")},
        "bracket": {"low": fig(low), "high": fig(mean), "width": fig(mean - low, "nats")},
        "reliable": reliable,
        "problems": list(problems),
    }


def vae_likelihood(iwae, elbo, latent, se=None, quadrature=None):
    part = {
        "test_images": {"n": 10000, "seed": 0},
        "elbo": {"mean": fig(elbo)},
        "iwae": {"mean_log_likelihood": fig(iwae), "k": 5000},
        "active_units": {"count": fig(latent, "units"), "of": latent},
    }
    if se is not None:
        part["iwae"]["standard_error"] = fig(se)
        part["elbo"]["standard_error"] = fig(2 * se)
    if quadrature is not None:
        part["quadrature"] = quadrature
    return part


def row(method, kind, mask, mse, accuracy, conditional):
    return {
        "method": method,
        "kind": kind,
        "mask": mask,
        "fraction": 0.5 if mask == "top half" else float(mask.rstrip("%")) / 100,
        "mse": fig(mse, "squared error per missing pixel"),
        "accuracy": fig(accuracy, "fraction of images"),
        "conditional": fig(conditional),
    }


def model(kind, size, likelihood, rows=(), epochs=3, seconds=12.0):
    config = {"n_visible": 784, "n_hidden": size} if kind == "rbm" else {"n_latent": size}
    train = {"method": "pcd", "k": 1, "learning_rate": 0.02, "lr_schedule": "linear"}
    train |= {"momentum": 0.5, "final_momentum": 0.5, "batch_size": 100, "weight_decay": 1e-4}
    if kind == "vae":
        train = {"optimizer": "adam", "learning_rate": 1e-3, "lr_schedule": "cosine"}
        train |= {"batch_size": 128, "iwae_k": 5, "binarize": "stochastic"}
    evaluation = {"log_likelihood": likelihood, "seconds": {"total": fig(30.0, "s")}}
    if rows:
        evaluation["inpainting"] = {"rows": list(rows)}
    return {
        "kind": kind,
        "config": config,
        "train_config": train,
        "epochs": epochs,
        "training_seconds": fig(seconds, "s"),
        "evaluation": evaluation,
    }


def rbm_likelihood(**parts):
    return {"test_images": {"n": 10000, "seed": 0}, **parts}


@pytest.fixture
def metrics():
    """A run's metrics in the layout of metrics.json, with every case the tables handle."""
    quadrature = {
        "mean_log_likelihood": fig(-139.12),
        "grid_size": 400,
        "limit": 6.0,
        "check": {"grid_size": 800, "delta": fig(0.004, "nats")},
    }
    baselines = [
        row("zero fill", "baseline", "20%", 0.1044, 0.942, None),
        row("10-NN fill", "baseline", "20%", 0.0171, 0.968, -25.0),
        row("10-NN fill", "baseline", "top half", 0.0375, 0.826, -76.2),
    ]
    models = {
        "rbm-h20": model("rbm", 20, rbm_likelihood(
            exact={"mean_log_likelihood": fig(-138.94)}, ais=ais(-138.97, -139.01, 73.0, 0.01))),
        "rbm-h100": model("rbm", 100, rbm_likelihood(ais=ais(-102.85, -103.11, 61.4, -0.07))),
        "rbm-h500": model(
            "rbm",
            500,
            rbm_likelihood(ais=ais(-97.77, -104.56, 6.7, 0.81, False, ["effective runs 6.7 < 10"])),
            rows=[row("RBM, 500 hidden", "rbm", "20%", 0.0095, 0.967, -13.0),
                  row("RBM, 500 hidden", "rbm", "top half", 0.0342, 0.853, -37.1)],
        ),
        "vae-z2": model("vae", 2, vae_likelihood(-140.48, -151.88, 2, 0.11, quadrature)),
        "vae-z8": model("vae", 8, vae_likelihood(-103.07, -108.91, 8, 0.05)),
        "vae-z16": model("vae", 16, vae_likelihood(-93.05, -99.77, 16)),
    }  # fmt: skip
    return {
        "format": "rbmvae-study",
        "settings": {"profile": "literature", "dataset": "mnist"},
        "dataset": {"name": "mnist", "n_train": 60000},
        "device": "cpu",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "peak_memory": {"value": 1.5 * 2**30, "unit": "bytes"},
        "seconds": {"total": 3725.0},
        "workers": {"processes": 2, "threads_each": 1},
        "models": models,
        "baselines": {
            "inpainting": {
                "rows": baselines,
                "settings": {"n_images": 1000, "chains": 10, "steps": 100, "average_last": 50,
                             "conditional_images": 100, "start_fill": "training mean"},
                "classifier": {"name": "MLP 784-128-10", "test_accuracy": 0.9796},
            }
        },
    }  # fmt: skip


def _row(table: str, label: str) -> str:
    lines = [line for line in table.splitlines() if line.startswith(f"| {label} |")]
    assert len(lines) == 1, (label, table)
    return lines[0]


def test_headline_figures_estimators_and_checks(metrics):
    table = headline_table(metrics)
    rbm20 = _row(table, "RBM, 20 hidden")
    assert "**-138.94**" in rbm20 and "exact: the 2^20 hidden states" in rbm20
    assert "AIS beside it: -138.97 (73 effective runs of 100)" in rbm20
    rbm100 = _row(table, "RBM, 100 hidden")
    assert "**-102.85**" in rbm100 and "RAISE bracket -103.11 to -102.85" in rbm100
    assert "61 effective runs of 100" in rbm100 and "doubling the betas moves it -0.07" in rbm100
    z2 = _row(table, "VAE, z = 2")  # the quadrature is the headline, IWAE beside it
    assert "| **-139.12** |" in z2 and "400 x 400 grid on [-6, 6]^2" in z2
    assert "IWAE (K = 5,000) beside it: -140.48 ± 0.11, 1.36 below" in z2
    assert "ELBO -151.88 ± 0.22" in z2
    assert "a finer grid (a 800 x 800 grid) moves it +0.004" in z2
    z8 = _row(table, "VAE, z = 8")
    assert "| **-103.07** |" in z8 and "standard error 0.05" in z8 and "8 of 8 units" in z8
    assert "-110.21 (z = 5), -93.84 (z = 10) [2]; none published at z = 8" in z8
    assert "standard error" not in _row(table, "VAE, z = 16")  # an older file: no error stored
    assert "grey" not in table
    metrics["models"]["vae-z16"]["train_config"]["binarize"] = "none"
    assert "trained on grey pixel values" in _row(headline_table(metrics), "VAE, z = 16")
    assert "-86.34 (CD-25) [1]" in _row(table, "RBM, 500 hidden")
    assert "- [1] R. Salakhutdinov, I. Murray (2008)" in table and "UAI 2018, Table 1" in table
    run = next(line for line in table.splitlines() if line.startswith("Run:"))
    assert "profile `literature`" in run and "commit `0123456789ab`" in run
    assert "1 h 02 min" in run and "1.5 GiB" in run and "10,000 test digits" in run


def test_an_unreliable_figure_never_prints_as_a_number(metrics):
    rbm500 = _row(headline_table(metrics), "RBM, 500 hidden")
    assert rbm500.split(" | ")[1] == "unreliable"
    assert "-97.77" not in rbm500  # neither as the figure nor as the bracket's forward end
    assert "effective runs 6.7 < 10" in rbm500 and "RAISE's conservative end -104.56" in rbm500
    broken = copy.deepcopy(metrics)  # an exact RBM whose AIS failed: AIS shows as unreliable
    broken["models"]["rbm-h20"]["evaluation"]["log_likelihood"]["ais"]["reliable"] = False
    assert "AIS beside it: unreliable" in _row(headline_table(broken), "RBM, 20 hidden")
    broken["models"]["vae-z8"]["evaluation"]["log_likelihood"]["iwae"]["reliable"] = False
    assert _row(headline_table(broken), "VAE, z = 8").split(" | ")[1] == "unreliable"


def test_older_metrics_without_the_newer_keys(metrics):
    for key in ("commit", "peak_memory"):
        del metrics[key]
    run = headline_table(metrics).splitlines()
    assert any("commit not recorded" in x and "peak memory not recorded" in x for x in run)


def test_training_and_inpainting_tables(metrics):
    training = training_table(metrics)
    assert "| RBM, 500 hidden | 3 | 12 s | 30 s | PCD-1, rate 0.02 (linear), momentum 0.5," in (
        training
    )
    assert "Adam on the IWAE bound, k = 5, rate 0.001 (cosine)" in training
    table = inpainting_table(metrics)
    assert table.splitlines()[0] == "| method | 20% missing | top half |"
    assert _row(table, "zero fill") == "| zero fill | 0.1044 / 94.2% / – | – |"
    assert "**0.0095** / 96.7% / **-13.0**" in _row(table, "RBM, 500 hidden")
    assert "0.0171 / **96.8%** / -25.0" in _row(table, "10-NN fill")
    assert "10 chains per digit of 100 sweeps" in table and "97.96% on the complete" in table


MARKED = """# Results

Text before.

<!-- rbmvae:results headline literature -->
old table
<!-- /rbmvae:results -->

<!-- rbmvae:results training full -->
kept as it is
<!-- /rbmvae:results -->
Text after.
"""


def test_markers_rewrite_only_their_blocks_and_twice_is_once(metrics):
    runs = {"literature": metrics}
    update = update_markdown(MARKED, runs)
    assert update.written == update.changed == ["headline literature"]
    assert update.left == ["training full"]
    assert "old table" not in update.text and "kept as it is" in update.text
    assert update.text.startswith("# Results\n\nText before.\n\n<!-- rbmvae:results headline")
    assert update.text.endswith("kept as it is\n<!-- /rbmvae:results -->\nText after.\n")
    assert "\n| RBM, 500 hidden | unreliable |" in update.text
    again = update_markdown(update.text, runs)
    assert again.text == update.text and again.changed == []


@pytest.mark.parametrize(
    "text, error, fragment",
    [
        ("no markers here\n", DataError, "no <!-- rbmvae:results TABLE RUN --> markers"),
        ("<!-- rbmvae:results headline x -->\nopen\n", DataError, "line 1: the marker has no"),
        ("<!-- rbmvae:results colour x -->\n<!-- /rbmvae:results -->", ConfigError, "'colour'"),
        ("a\n<!-- /rbmvae:results -->\n", DataError, "1 closing markers for 0 opening"),
    ],
)
def test_marker_errors(text, error, fragment):
    with pytest.raises(error, match=None) as raised:
        update_markdown(text, {}, "page.md")
    assert fragment in str(raised.value) and str(raised.value).startswith("page.md")


def _write_run(directory: Path, metrics: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return directory


def test_command_writes_checks_and_copies(tmp_path, metrics, run_cli, assert_cli_error):
    run = _write_run(tmp_path / "run", metrics)
    page = tmp_path / "page.md"
    page.write_text(MARKED, encoding="utf-8")
    code, out, _ = run_cli("results", run, "--write", page)
    assert code == 0 and "1 of 1 block(s) changed" in out and "training full" in out
    written = page.read_text(encoding="utf-8")
    assert "| RBM, 20 hidden | **-138.94** |" in written
    code, out, _ = run_cli("results", f"literature={run / 'metrics.json'}", "--check", page)
    assert code == 0 and "up to date" in out
    page.write_text(written.replace("**-138.94**", "**-100.00**"), encoding="utf-8")
    assert_cli_error(run_cli("results", run, "--check", page), "headline literature", "--write")
    code, out, _ = run_cli("results", run, "--table", "training")
    assert code == 0 and out.startswith("<!-- rbmvae:results training literature -->\n| model |")
    metrics["baselines"]["inpainting"]["classifier"]["cache"] = f"{Path.home()}/.cache/x.json"
    _write_run(run, metrics)
    code, _, _ = run_cli("results", run, "--copy", tmp_path / "copy" / "metrics.json")
    copied = json.loads((tmp_path / "copy" / "metrics.json").read_text())
    assert (
        code == 0 and copied["baselines"]["inpainting"]["classifier"]["cache"] == "~/.cache/x.json"
    )
    assert copied["models"] == metrics["models"]


def test_command_errors_leave_files_as_they_were(tmp_path, metrics, run_cli, assert_cli_error):
    page = tmp_path / "page.md"
    page.write_text(MARKED, encoding="utf-8")
    assert_cli_error(run_cli("results", tmp_path / "nowhere", "--write", page), "no such file")
    bad = tmp_path / "bad" / "metrics.json"
    bad.parent.mkdir()
    bad.write_text('{"format": "rbmvae-study", "models": {', encoding="utf-8")
    assert_cli_error(run_cli("results", bad, "--write", page), "not valid JSON", "line 1")
    bad.write_text('{"models": {}}', encoding="utf-8")
    assert_cli_error(run_cli("results", bad), "not the metrics of a study run")
    run = _write_run(tmp_path / "run", metrics)
    assert_cli_error(run_cli("results", run, "--write", tmp_path / "missing.md"), "no such file")
    assert_cli_error(run_cli("results", run, f"literature={run}"), "two runs are named")
    assert_cli_error(run_cli("results", f"a b={run}"), "run name")
    plain = tmp_path / "plain.md"
    plain.write_text("nothing marked\n", encoding="utf-8")
    assert_cli_error(run_cli("results", run, "--write", plain), "no <!-- rbmvae:results")
    assert page.read_text(encoding="utf-8") == MARKED
    assert plain.read_text(encoding="utf-8") == "nothing marked\n"
    assert list(tmp_path.glob(".*.tmp")) == []


def test_portable_metrics_rewrites_only_home_paths():
    value = {"a": ["/home/u/x", "/home/user"], "b": "/home/u", "c": 3}
    assert portable_metrics(value, home="/home/u") == {"a": ["~/x", "/home/user"], "b": "~", "c": 3}


def test_committed_pages_match_the_committed_runs():
    """Every block of README.md and docs/results.md is what `make results` writes from the
    runs' metrics.json under docs/runs/ (numbers are never typed by hand)."""
    runs = load_runs(
        [f"{p.parent.name}={p}" for p in sorted(ROOT.glob("docs/runs/*/metrics.json"))]
    )
    for page in (ROOT / "README.md", ROOT / "docs" / "results.md"):
        try:
            check_tables(page, runs)
        except StaleError as error:
            pytest.fail(str(error))
