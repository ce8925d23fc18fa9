"""The text of an evaluation report, a shipped model card's headline, recipe files that are
refused, and the progress lines of a training run: each against figures stored elsewhere (the
shipped cards, which the literature run wrote) or against the exact message a user sees."""

import copy
import io
import json
import re
from pathlib import Path

import pytest

from rbmvae.basics.errors import ConfigError
from rbmvae.basics.progress import Progress, is_terminal
from rbmvae.evaluation.text import format_report
from rbmvae.study import ship
from rbmvae.tuning.recipe import RECIPE_FORMAT, read_recipe

SHIPPED = Path(ship.__file__).resolve().parents[1] / "zoo" / "models"


def _card(name: str) -> dict:
    return json.loads((SHIPPED / name / "card.json").read_text(encoding="utf-8"))


def _report(card: dict) -> dict:
    """An evaluation report around a card's log-likelihood section, as ``evaluate`` writes it."""
    return {
        "model": {"kind": card["kind"], "config": card["config"], "dir": f"models/{card['name']}"},
        "dataset": {"name": "mnist", "n_train": 60000, "n_test": 10000},
        "device": "cpu",
        "settings": {"active_threshold": 0.01},
        "warnings": ["a warning for the reader"],
        "log_likelihood": copy.deepcopy(card["log_likelihood"]),
        "seconds": {"log_likelihood": {"value": 12.5, "unit": "s"}},
    }


def test_the_text_report_of_an_rbm_gives_the_ais_figures_and_their_checks():
    card = _card("rbm-h500")
    ais = card["log_likelihood"]["ais"]
    text = format_report(_report(card))
    lines = text.splitlines()
    assert lines[0].startswith("rbm {") and "models/rbm-h500 on mnist (device cpu)" in lines[0]
    assert lines[1] == "warning: a warning for the reader"
    assert "on 10000 test images binarized stochastically with seed 0" in lines[2]
    value = f"{ais['mean_log_likelihood']['value']:10.3f}"
    assert f"AIS    log p(v) {value}" in text
    assert f"log Z {ais['log_z']['value']:.3f}" in text
    assert f"({ais['n_runs']} runs, {ais['n_betas']} betas" in text
    low, high = ais["bracket"]["low"]["value"], ais["bracket"]["high"]["value"]
    assert f"RAISE bracket [{low:.3f}, {high:.3f}] (100 images)" in text
    assert f"doubled betas move it {ais['doubled_betas']['delta']['value']:+.3f}" in text
    assert lines[-1] == "time: log_likelihood 12.5 s"


def test_an_unreliable_ais_prints_no_number():
    report = _report(_card("rbm-h500"))
    ais = report["log_likelihood"]["ais"]
    ais["reliable"], ais["problems"] = False, ["the RAISE-AIS bracket is 3.1 nats wide (> 2)"]
    text = format_report(report)
    line = next(line for line in text.splitlines() if line.startswith("  AIS"))
    assert "unreliable" in line and f"{ais['mean_log_likelihood']['value']:.3f}" not in line
    assert "the RAISE-AIS bracket is 3.1 nats wide (> 2): log Z is likely underestimated" in text
    assert ship.headline(report["log_likelihood"])["value"] is None  # the card says so too


def test_the_text_report_of_a_2d_vae_gives_the_quadrature_and_iwae():
    card = _card("vae-z2")
    likelihood = card["log_likelihood"]
    quadrature, iwae = likelihood["quadrature"], likelihood["iwae"]
    text = format_report(_report(card))
    assert f"quadrature      {quadrature['mean_log_likelihood']['value']:10.3f}" in text
    assert f"({quadrature['grid_size']}^2 grid; IWAE minus quadrature" in text
    if "check" in quadrature:
        assert f"a {2 * quadrature['grid_size'] - 1}-point grid moves it" in text
    assert f"IWAE   log p(x) {iwae['mean_log_likelihood']['value']:10.3f}" in text
    assert f"(K = {iwae['k']};" in text
    assert f"ELBO            {likelihood['elbo']['mean']['value']:10.3f}" in text
    active = likelihood["active_units"]
    assert f"active units    {active['count']['value']} of {active['of']}" in text


@pytest.mark.parametrize("name", ["rbm-h20", "rbm-h500", "vae-z2", "vae-z16"])
def test_a_card_headline_is_what_its_likelihood_section_says(name):
    card = _card(name)
    headline = ship.headline(card["log_likelihood"])
    assert {k: card["headline"][k] for k in headline} == headline
    likelihood = card["log_likelihood"]
    if "exact" in likelihood:  # the exact figure heads, AIS is a check beside it
        assert headline["value"] == likelihood["exact"]["mean_log_likelihood"]["value"]
    elif "quadrature" in likelihood:
        assert headline["value"] == likelihood["quadrature"]["mean_log_likelihood"]["value"]
    elif "ais" in likelihood:
        assert headline["value"] == likelihood["ais"]["mean_log_likelihood"]["value"]
        assert any(c.startswith("RAISE-AIS bracket [") for c in headline["checks"])
    else:
        assert headline["value"] == likelihood["iwae"]["mean_log_likelihood"]["value"]
        assert headline["checks"][0].startswith("IWAE standard error ")


def test_a_vae_without_a_2d_code_heads_with_iwae():
    likelihood = copy.deepcopy(_card("vae-z2")["log_likelihood"])
    del likelihood["quadrature"]
    headline = ship.headline(likelihood)
    assert headline["value"] == likelihood["iwae"]["mean_log_likelihood"]["value"]
    assert headline["estimator"] == likelihood["iwae"]["method"]


def test_shipping_a_directory_that_is_not_a_run_is_one_line_and_exit_2(tmp_path, capsys):
    assert ship.main([str(tmp_path / "no-such-run"), "--dest", str(tmp_path / "dest")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rbmvae: error: ") and err.count("\n") == 1
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())


def _recipe(**changes):
    recipe = {
        "format": RECIPE_FORMAT,
        "format_version": 1,
        "kind": "rbm",
        "model": {"n_hidden": 20},
        "settings": {"learning_rate": 0.02},
        "source": {},
    }
    recipe.update(changes)
    return recipe


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        (json.dumps([1, 2]), "not an rbmvae recipe"),
        (json.dumps(_recipe(format_version=7)), "format version 7, this rbmvae reads version 1"),
        (json.dumps(_recipe(kind="vae")), "holds a recipe for 'vae' models, not 'rbm'"),
        (json.dumps(_recipe(settings={"seed": 3})), "no seed"),
        (json.dumps(_recipe(settings={"learning_rat": 0.1})), "learning_rat"),
    ],
)
def test_a_bad_recipe_file_is_refused_with_its_reason(tmp_path, content, fragment):
    path = tmp_path / "recipe.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(fragment)) as caught:
        read_recipe(path, "rbm")
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    path.write_text(json.dumps(_recipe()), encoding="utf-8")
    assert read_recipe(path, "rbm")["settings"] == {"learning_rate": 0.02}


class _Terminal(io.StringIO):
    def isatty(self):
        return True


class _Closed:
    def isatty(self):
        raise ValueError("I/O operation on closed file")


def test_progress_draws_bars_on_a_terminal_and_prints_lines_elsewhere(monkeypatch):
    assert is_terminal(_Terminal()) and not is_terminal(io.StringIO())
    assert not is_terminal(_Closed()) and not is_terminal(object())
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    bars = Progress("rbm", epochs=2, steps=3)
    assert bars.bars
    for epoch in range(2):
        bars.start_epoch(epoch, 0)
        for _ in range(3):
            bars.step()
        bars.end_epoch()
        bars.epoch_done({"epoch": epoch + 1, "loss": 0.5}, {"pseudo_log_likelihood": -123.456})
    bars.close()
    drawn = terminal.getvalue()
    assert "train rbm" in drawn and "2/2" in drawn and "pseudo_log_likelihood=-123.5" in drawn
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    lines = Progress("vae", epochs=4, steps=3)
    assert not lines.bars
    lines.start_epoch(0, 0)
    lines.step()
    lines.epoch_done({"epoch": 1, "loss": 2.0}, {})
    lines.close()
    assert re.fullmatch(r"train vae: epoch 1/4 loss=2 \(\d+\.\d s\)\n", log.getvalue())
    silent = io.StringIO()
    monkeypatch.setattr("sys.stderr", silent)
    quiet = Progress("vae", epochs=4, steps=3, enabled=False)
    quiet.start_epoch(0, 0)
    quiet.epoch_done({"epoch": 1, "loss": 2.0}, {})
    quiet.close()
    assert silent.getvalue() == ""


def test_results_tables_write_durations_and_memory_as_a_reader_wants_them():
    from rbmvae.study.tables import _duration, _memory, _value

    assert [_duration(s) for s in (None, 5, 65, 3725, 5995)] == [
        "not recorded", "5 s", "1 min 05 s", "1 h 02 min", "1 h 39 min",
    ]  # fmt: skip
    assert _memory(None) == _memory({"value": None}) == "not recorded"
    assert _memory({"value": 3 * 2**30, "unit": "bytes"}) == "3.0 GiB"
    assert _memory(5 * 2**20) == "5 MiB"
    assert _memory({"value": 2.5, "unit": "GB"}) == "2.5 GB"
    assert [_value(x) for x in (True, "1", float("nan"), {"value": 2}, 3)] == [
        None, None, None, 2.0, 3.0,
    ]  # fmt: skip
