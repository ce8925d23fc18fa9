"""Smoke tests of the benchmarks package on tiny shapes, so that the benchmark runner does not rot.

The cost model (which products and how many draws each workload needs) is checked against what
the code really does, counted by torch's FlopCounterMode; every workload runs once on a few
hundred images; one run goes through the subprocess protocol and writes a RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from rbmvae.basics.rng import make_generator
from rbmvae.data import load_dataset
from rbmvae.likelihood import ais_log_partition, iwae_log_likelihood
from rbmvae.models import RBM, VAE
from rbmvae.samplers.inpainting import clamped_gibbs
from rbmvae.training import TrainConfig
from rbmvae.training.checkpoint import load_model
from rbmvae.training.objectives import ContrastiveDivergence, VAEObjective

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the benchmarks package sits beside src/ and is not installed
    sys.path.insert(0, str(ROOT))

from benchmarks import costs, harness, render, run, workloads  # noqa: E402
from benchmarks.settings import Settings  # noqa: E402
from benchmarks.workloads_compared import _sklearn_to_rbm  # noqa: E402

try:
    import sklearn  # noqa: F401

    HAS_SKLEARN = True
except ImportError:
    HAS_SKLEARN = False


def tiny(**overrides):
    values = dict(
        dataset="mnist-sample",
        epochs=1,
        repeats=1,
        train_images=300,
        rbm_hidden=(8,),
        vae_latent=(2,),
        cd_long_k=2,
        cd_long_images=200,
        ais_hidden=8,
        ais_runs=4,
        ais_betas=20,
        iwae_k=12,
        iwae_images=20,
        inpaint_hidden=8,
        inpaint_images=10,
        inpaint_steps=4,
        square=64,
        min_seconds=0.001,
        profile_steps=2,
        sklearn=HAS_SKLEARN,
        threads=1,
    )
    values.update(overrides)
    return Settings(**values)


def addmm_in_place_flops(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    (m, k), (_, n) = a_shape, b_shape
    return 2 * m * k * n


def counted_flops(fn) -> int:
    """FLOPs of the matrix products ``fn`` runs (in-place ``addmm_`` counted like ``addmm``)."""
    in_place = {torch.ops.aten.addmm_: addmm_in_place_flops}
    with FlopCounterMode(display=False, custom_mapping=in_place) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize(("method", "k"), [("pcd", 1), ("cd", 1), ("cd", 3), ("pcd", 2)])
def test_rbm_cost_model_matches_the_products_of_a_training_step(method, k):
    rbm = RBM(784, 7)
    objective = ContrastiveDivergence(method=method, k=k)
    batch = (torch.rand(10, 784, generator=make_generator(0)) < 0.3).float()
    generator = make_generator(1)
    objective.step(rbm, batch, generator)  # PCD: the chains start here (one more product)
    draws_before = generator.get_state()
    flops = counted_flops(lambda: objective.step(rbm, batch, generator))
    cost = costs.rbm_step_cost(10, 7, method, k)
    assert flops == cost.flops
    # the uniform draws: replay the generator and count how far one step moved it
    replay = make_generator(0)
    replay.set_state(draws_before)
    torch.rand(cost.uniform, generator=replay)
    assert torch.equal(replay.get_state(), generator.get_state())


@pytest.mark.parametrize("k", [1, 2])
def test_tempering_cost_model_matches_the_products_and_draws_of_a_step(k):
    from rbmvae.training.objectives import ParallelTempering

    rbm = RBM(784, 7)
    objective = ParallelTempering(temperatures=4, min_beta=0.5, k=k, chains=6)
    batch = (torch.rand(10, 784, generator=make_generator(0)) < 0.3).float()
    generator = make_generator(1)
    objective.step(rbm, batch, generator)
    draws_before = generator.get_state()
    flops = counted_flops(lambda: objective.step(rbm, batch, generator))
    cost = costs.rbm_step_cost(10, 7, "pt", k, chains=6, temperatures=4)
    assert flops == cost.flops
    replay = make_generator(0)
    replay.set_state(draws_before)
    # per round: one uniform per hidden and visible state of every chain, then one per
    # neighbouring pair of temperatures and chain (3 pairs of 6 chains at 4 temperatures)
    assert cost.uniform == k * (4 * 6 * (784 + 7) + 3 * 6)
    torch.rand(cost.uniform, generator=replay)
    assert torch.equal(replay.get_state(), generator.get_state())


def test_pcd_cost_model_counts_the_chains_on_a_short_last_batch():
    rbm = RBM(784, 5)
    objective = ContrastiveDivergence(method="pcd", k=1)
    generator = make_generator(1)
    objective.step(rbm, torch.zeros(10, 784), generator)  # 10 chains
    flops = counted_flops(lambda: objective.step(rbm, torch.ones(4, 784), generator))
    assert flops == costs.rbm_step_cost(4, 5, "pcd", 1, chains=10).flops


def test_vae_cost_model_matches_the_products_of_a_training_step():
    vae = VAE(784, 16, 3)
    objective = VAEObjective()
    x = torch.rand(12, 784, generator=make_generator(0))
    objective.setup(vae, x, make_generator(1))
    flops = counted_flops(lambda: objective.step(vae, x, make_generator(2)))
    assert flops == costs.vae_step_cost(12, 3, hidden=16).flops


def test_evaluation_cost_models_match_the_code():
    rbm = RBM(784, 6)
    base = torch.zeros(784)
    flops = counted_flops(lambda: ais_log_partition(rbm, base, n_runs=5, n_betas=9))
    assert flops == costs.ais_cost(5, 9, 6).flops
    vae = VAE(784, 16, 2)
    x = (torch.rand(30, 784, generator=make_generator(0)) < 0.3).float()
    flops = counted_flops(lambda: iwae_log_likelihood(vae, x, k=7, chunk=3, batch_size=20))
    assert flops == costs.iwae_cost(30, 7, 2, hidden=16, chunk=3, batch=20).flops
    images = torch.rand(4, 784, generator=make_generator(0))
    mask = torch.rand(4, 784, generator=make_generator(1)) < 0.5
    flops = counted_flops(lambda: clamped_gibbs(rbm, images, mask, steps=3, average_last=2))
    assert flops == costs.inpaint_cost(4, 3, 6, int(mask.sum())).flops


def test_epoch_cost_counts_the_short_last_batch_and_the_binarization():
    assert costs.batch_sizes(250, 100) == [100, 100, 50]
    cost = costs.rbm_epoch_cost(250, 100, 5, "pcd", 1)
    steps = [costs.rbm_step_cost(n, 5, "pcd", 1, chains=100) for n in (100, 100, 50)]
    assert cost.flops == sum(step.flops for step in steps)
    assert costs.Gemm("NN", 150, 784, 5) in steps[2].gemms  # short batch + 100 chains
    assert cost.uniform == 300 * (784 + 5) + 250 * 784  # the chains' states, the binarization


def test_summary_and_floor_arithmetic():
    assert harness.summary([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    gemm = costs.Gemm("NN", 2, 3, 4)
    cost = costs.Cost()
    cost.add(gemm, 5)
    cost.uniform, cost.normal = 1000, 10
    floor = {
        "gemm": {gemm.key: {"seconds": 0.5}},
        "uniform_ns": 2.0,
        "normal_ns": 10.0,
        "softplus_ns": 1.0,
        "square_gflops": 1.0,
    }
    result = costs.floor_seconds(cost, floor)
    assert result["gemm_seconds"] == 2.5 and result["flops"] == 5 * 2 * 2 * 3 * 4
    assert math.isclose(result["rng_seconds"], 1000 * 2e-9 + 10 * 10e-9)
    assert math.isclose(result["peak_seconds"], 240 / 1e9)


def test_every_workload_runs_on_tiny_shapes(tmp_path):
    settings = tiny()
    worker = harness.Worker(settings, tmp_path)

    def run_one(name, label=None, **params):
        return workloads.run_workload(name, settings, tmp_path, params, worker.data, label)

    results = {"floor": run_one("floor"), "baseline": run_one("baseline")}
    floor = results["floor"]
    planned = costs.workload_costs(settings, worker.n_train)
    for cost in planned.values():  # every product of every workload has its measured time
        for gemm in cost.gemms:
            assert floor["gemm"][gemm.key]["gflops"] > 0
    assert floor["uniform_ns"] > 0 and floor["normal_ns"] > 0 and floor["softplus_ns"] > 0
    for step in workloads.plan(settings)[2:]:
        if step.workload == "sklearn_rbm" and not settings.sklearn:
            continue
        results[step.label] = run_one(step.workload, step.label, **step.params)
        assert results[step.label]["peak_rss_mb"] > 0, step.label
        if step.label in planned:  # measured its own floor right after it ran
            assert set(results[step.label]["floor"]["gemm"]) == {
                gemm.key for gemm in planned[step.label].gemms
            }
    train = results["rbm-pcd1-h8"]
    assert train["images"] == 300 and train["scale"] == worker.n_train / 300
    assert train["epoch_seconds"]["median"] > 0
    assert results["rbm-cd2-h8"]["images"] == 200
    for name, kind in (("vae-z2", "vae"), ("rbm-h8", "rbm")):  # kept as checkpoints
        load_model(tmp_path / name, kind=kind)
    assert not list(tmp_path.glob("*.pt"))  # and no pickles
    for label in ("ais", "iwae", "inpaint"):  # on the models the training workloads kept
        assert results[label]["trained_model"], label
    assert results["inpaint"]["missing"] == 10 * round(0.5 * 784)
    if settings.sklearn:
        assert results["sklearn-h8"]["epoch_seconds"]["median"] > 0
    profile = results["profile-rbm-pcd1-h8"]
    assert math.isclose(sum(profile["groups"].values()), 1.0) and profile["top"]
    floors = costs.workload_floors(results, settings)
    assert set(floors) == set(planned) and all(f["gemm_seconds"] > 0 for f in floors.values())
    text = render.render(results, settings, render.machine_info(settings), "benchmarks/run.py")
    for heading in ("## Machine", "## The floor", "## Training", "## Evaluation", "## Targets"):
        assert heading in text
    assert "rbm-pcd1-h8" in text and "| ais |" in text
    render.print_table(results, settings)


def test_sklearn_parameters_map_onto_an_rbm():
    pytest.importorskip("sklearn")
    import numpy as np
    from sklearn.neural_network import BernoulliRBM

    x = (np.random.default_rng(0).random((50, 784)) < 0.3).astype(np.float32)
    estimator = BernoulliRBM(n_components=5, n_iter=2, random_state=0).fit(x)
    rbm = _sklearn_to_rbm(estimator, "cpu")
    v = torch.as_tensor(x[:7])
    # scikit-learn's free energy -b'v - sum softplus(c + vW) is rbmvae's (Eq. 1.7)
    theirs = -torch.as_tensor(estimator._free_energy(x[:7]))
    torch.testing.assert_close(-rbm.free_energy(v).detach(), theirs, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(
        rbm.hidden_probs(v).detach(), torch.as_tensor(estimator.transform(x[:7]))
    )


def test_the_command_runs_workloads_in_subprocesses_and_writes_results(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "settings_from_args", lambda args: tiny())
    raw, out = tmp_path / "raw.json", tmp_path / "RESULTS.md"
    argv = ["--only", "rbm-pcd1", "--max-wait", "0", "--retries", "0"]
    argv += ["--json", str(raw), "--out", str(out)]
    assert run.main(argv) == 0
    results = json.loads(raw.read_text())
    assert set(results) == {"floor", "baseline", "rbm-pcd1-h8"}
    for label, result in results.items():
        assert "error" not in result, (label, result)
        assert result["peak_rss_mb"] > 0 and result["worker_cpu_seconds"] > 0
    assert results["rbm-pcd1-h8"]["epoch_seconds"]["median"] > 0
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nWritten by `benchmarks/run.py --only rbm-pcd1")
    assert "| rbm-pcd1-h8 (on 300 images, scaled) |" in text
    # --resume keeps every finished workload: nothing runs again
    monkeypatch.setattr(run, "run_with_retries", lambda *args: pytest.fail("ran again"))
    assert run.main([*argv, "--resume"]) == 0
    assert json.loads(raw.read_text()) == results


def test_a_disturbed_workload_runs_again_and_the_least_disturbed_attempt_is_kept(monkeypatch):
    shares = iter([0.5, 0.2, 0.3, 0.0])
    monkeypatch.setattr(harness, "spawn", lambda *args: {"others_cpu_share": next(shares)})
    result = harness.run_with_retries("ais", tiny(), Path("."), {}, "ais", 2, 0, lambda *_: None)
    assert result == {"others_cpu_share": 0.2, "busy_before": None, "attempts": 2}
    assert next(shares) == 0.0  # two retries, no more
    shares = iter([0.01, 0.9])
    result = harness.run_with_retries("ais", tiny(), Path("."), {}, "ais", 2, 0, lambda *_: None)
    assert result["attempts"] == 1  # quiet enough: not run again


def test_results_record_the_flags_without_the_paths_of_the_machine():
    argv = ["--dataset", "mnist", "--json", "/x/run.json", "--resume", "--out=/x/r.md", "--quick"]
    assert run._public_args(argv) == ["--dataset", "mnist", "--quick"]


def test_the_flags_make_the_settings():
    args = run.parse_args(["--quick", "--no-sklearn", "--device", "cpu", "--threads", "1"])
    expected = Settings.quick(sklearn=False, device="cpu", threads=1)
    assert run.settings_from_args(args) == expected
    assert Settings.from_json(expected.to_json()) == expected
    assert run.settings_from_args(run.parse_args(["--no-sklearn"])) == Settings(sklearn=False)
    with pytest.raises(SystemExit):
        run.main(["--resume"])  # needs --json


def test_the_script_runs_from_any_directory(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "--resume" in done.stdout and "--json" in done.stdout


# ------------------------------------------------------------------------------------------------
# The fast paths give the results of their plain formulations


def test_epoch_images_are_those_of_data_binarize():
    from rbmvae.data import binarize
    from rbmvae.training.loop import _epoch_images

    images = torch.rand(50, 784, generator=make_generator(0))
    buffer = None
    for seed in (3, 4):  # the second epoch reuses the first one's buffer
        buffer = _epoch_images(images, "stochastic", make_generator(seed), buffer)
        assert torch.equal(buffer, binarize(images, "stochastic", generator=make_generator(seed)))
    assert torch.equal(
        _epoch_images(images, "threshold", make_generator(0), buffer), binarize(images, "threshold")
    )
    assert _epoch_images(images, "none", make_generator(0), buffer) is images


def test_bernoulli_in_place_draws_what_uniform_below_p_draws():
    from rbmvae.models.rbm import bernoulli

    probs = torch.rand(30, 40, generator=make_generator(0))
    out = torch.empty(30, 40)
    sample = bernoulli(probs, make_generator(7), out=out)
    assert sample is out
    expected = (torch.rand(30, 40, generator=make_generator(7)) < probs).float()
    assert torch.equal(sample, expected) and torch.equal(
        bernoulli(probs, make_generator(7)), expected
    )


def test_sections_are_replaced_in_place_and_kept_by_the_runner(tmp_path):
    from benchmarks.sections import HAND_MARKER, kept_tail, replace_section

    path = tmp_path / "RESULTS.md"
    path.write_text(f"# runner\n\n{HAND_MARKER}\n\nby hand\n")
    replace_section(path, "scaling", "first")
    replace_section(path, "other", "second")
    replace_section(path, "scaling", "third")
    text = path.read_text()
    assert "first" not in text and text.index("third") < text.index("second")
    assert text.count("<!-- begin scaling -->") == 1 and "by hand" in text
    assert kept_tail(path).startswith(HAND_MARKER) and "third" in kept_tail(path)
    assert kept_tail(tmp_path / "absent.md") == ""


def test_scaling_sweep_measures_every_point_beside_its_floor(tmp_path, monkeypatch):
    from benchmarks import scaling

    sweeps = {title: (kind, values[:2]) for title, (kind, values) in scaling.SWEEPS.items()}
    monkeypatch.setattr(scaling, "SWEEPS", sweeps)
    results_md, plot = tmp_path / "RESULTS.md", tmp_path / "scaling.png"
    scaling.main(
        ["--dataset", "mnist-sample", "--images", "300", "--min-seconds", "0.01"]
        + ["--plot", str(plot), "--results", str(results_md), "--json", str(tmp_path / "s.json")]
        + ["--max-wait", "0", "--retries", "0"]
    )
    raw = json.loads((tmp_path / "s.json").read_text())
    for title in sweeps:
        assert [p["value"] for p in raw[title]] == list(sweeps[title][1])
        for p in raw[title]:
            assert p["seconds"] > 0 and 0 < p["floor_matmul"] <= p["floor_with_draws"]
            assert 0.0 <= p["others_cpu_share"] <= 1.0 and p["attempts"] == 1
    text = results_md.read_text()
    assert "<!-- begin scaling -->" in text and "5,000 images" in text
    assert "| goal: <= 1.3x floor |" in text and "| others' CPU |" in text
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_scaling_measures_a_disturbed_point_again_and_keeps_the_quieter(monkeypatch):
    from benchmarks import scaling

    shares = iter([0.40, 0.02, 0.30])
    monkeypatch.setattr(
        scaling, "_point", lambda *a: {"seconds": 1.0, "others_cpu_share": next(shares)}
    )
    args = argparse.Namespace(retries=2, max_wait=0, min_seconds=0.01)
    point = scaling._quiet_point("hidden", 20, None, 100, args)
    assert point["others_cpu_share"] == 0.02 and point["attempts"] == 2  # stopped once quiet
    shares = iter([0.40, 0.30, 0.35])
    point = scaling._quiet_point("hidden", 20, None, 100, args)
    assert point["others_cpu_share"] == 0.30 and point["attempts"] == 2  # the least disturbed
    assert render.floor_goal(1.2, 1.0) == "met" and render.floor_goal(2.6, 1.0) == "missed by 100%"


@pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn is not installed")
def test_equal_budget_trains_both_sides_and_shows_their_real_times(tmp_path):
    from benchmarks import equal_budget

    out, results_md, plot = tmp_path / "runs", tmp_path / "RESULTS.md", tmp_path / "eb.png"
    equal_budget.main(
        ["--dataset", "mnist-sample", "run", "--sequential", "--budgets", "1", "--hidden", "8"]
        + ["--images", "100", "--runs", "4", "--betas", "30", "--raise-images", "4"]
        + ["--train-images", "500", "--out", str(out), "--plot", str(plot)]
        + ["--results", str(results_md)]
    )
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert [r["side"] for r in rows] == ["rbmvae", "sklearn"]
    for row in rows:
        assert row["train_seconds"] > 0 and row["epochs"] >= 1 and row["threads"] == 1
        assert row["test_images"] == 100 and row["betas"] == 30
    text = results_md.read_text()
    assert "<!-- begin equal-budget -->" in text and "| 1 s | rbmvae |" in text
    for row in rows:  # the real time is shown, and an unreliable figure is never a number
        assert f"| {row['train_seconds']:.1f} |" in text
        if not row["reliable"]:
            assert f"**{row['ll']:.2f}**" not in text
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_the_pilot_prices_a_whole_epoch_of_fit(monkeypatch):
    # The equal-budget pilot is fit itself (optimizer, binarization, monitor), two epochs on a
    # tenth of the images, the second scaled to the whole set; a rising k priced at its mean.
    from benchmarks import recipes
    from rbmvae.tuning import budget

    calls = []

    def fake_fit(model, data, config, progress):
        calls.append((data.train_images.shape[0], config.epochs))
        first = {"train_seconds": 9.0, "monitor_seconds": 9.0}  # warm-up: not used
        return [first, {"train_seconds": 0.5, "monitor_seconds": 0.25}]

    monkeypatch.setattr(budget, "fit", fake_fit)  # the pilot of rbmvae tune, which recipes.py uses
    data = load_dataset("mnist-sample").subset(n_train=1000)
    config = TrainConfig.defaults_for("rbm").replace(method="pcd", k=1, k_final=0)
    assert recipes.seconds_per_epoch(config, data, 8) == pytest.approx(0.5 * 10 + 0.25)
    assert calls == [(100, 2)]
    rising = config.replace(method="cd", k=1, k_final=3)  # the last epoch at k = 3: (1 + 1/3) / 2
    assert recipes.seconds_per_epoch(rising, data, 8) == pytest.approx(5.0 * 2 / 3 + 0.25)


def test_equal_budget_compares_the_conservative_end_with_the_markov_bound():
    from benchmarks import equal_budget

    assert abs(equal_budget.MARKOV_NATS - math.log(100.0)) < 1e-12  # 99%: 1 / (1 - 0.99)

    def row(side, ll, low, reliable, budget=30.0):
        return {"side": side, "budget": budget, "ll": ll, "low": low, "reliable": reliable}

    ours = row("rbmvae", -100.0, -101.0, True)
    # scikit-learn's unreliable -110 stays below -110 + log 100 = -105.39 with 99% probability
    assert equal_budget.upper_bound(row("sklearn", -110.0, None, False)) == pytest.approx(
        -105.395, abs=1e-3
    )
    higher = equal_budget.verdict([ours, row("sklearn", -110.0, -180.0, False)], 30.0)
    assert higher == "**rbmvae higher**, by at least 4.39 nats"
    close = equal_budget.verdict([ours, row("sklearn", -97.0, -99.0, True)], 30.0)
    assert close.startswith("not shown") and "8.61 nats below" in close
    assert "not stated" in equal_budget.verdict(
        [row("rbmvae", -100.0, None, False), ours | {"side": "sklearn"}], 30.0
    )
    assert equal_budget.verdict([ours], 30.0) == "one side missing"
    assert (
        equal_budget.verdict([ours, row("sklearn", -110.0, None, False)], 120.0)
        == "one side missing"
    )


def test_recipe_script_trains_scores_and_tabulates_a_run(tmp_path, capsys):
    from benchmarks import recipes

    out, plot = tmp_path / "runs", tmp_path / "recipes.png"
    common = ["--dataset", "mnist-sample"]
    recipes.main(
        common
        + ["train", "--recipe", "cd-rising", "--hidden", "8", "--out", str(out)]
        + ["--name", "tiny", "--set", "epochs=1", "--set", "centering=true"]
    )
    record = json.loads((out / "tiny" / "recipe.json").read_text())
    assert record["epochs"] == 1 and record["config"]["centering"] is True
    recipes.main(
        common
        + ["score", str(out / "tiny"), "--images", "50", "--runs", "4", "--betas", "30"]
        + ["--raise-images", "4"]
    )
    assert (out / "tiny" / "score-50-4-30-4.json").exists()
    capsys.readouterr()
    recipes.main(["table", str(out), "--plot", str(plot)])
    table = capsys.readouterr().out
    assert "| tiny | 1 |" in table and "| 50 |" in table
    assert plot.read_bytes()[:4] == b"\x89PNG"
    recipes.main(["table", str(out), "--match", "t*y"])
    assert "| tiny |" in capsys.readouterr().out
    recipes.main(["table", str(out), "--match", "other*"])
    assert "| tiny |" not in capsys.readouterr().out


@pytest.mark.skipif(not HAS_SKLEARN, reason="needs scikit-learn")
def test_sklearn_dropin_times_both_sides_and_writes_its_table(tmp_path, capsys):
    from benchmarks import sklearn_dropin

    results_md = tmp_path / "RESULTS.md"
    results_md.write_text("# Benchmarks\n\nkept as it is\n")
    tiny_flags = ["--dataset", "mnist-sample", "--mnist-train", "60", "--digits-rows", "40"]
    tiny_flags += ["--n-components", "6", "--n-iter", "2", "--repeats", "3"]
    results = sklearn_dropin.main(tiny_flags + ["--no-cold", "--results", str(results_md)])
    digits, mnist = results["problems"].values()
    assert (digits["rows"], digits["features"], digits["dtype"]) == (40, 64, "float64")
    assert (mnist["rows"], mnist["features"], mnist["dtype"]) == (60, 784, "float32")
    for problem in (digits, mnist):
        for side in sklearn_dropin.SIDES:
            assert problem["seconds"][side]["n"] == 3 and problem["seconds"][side]["min"] > 0
            assert problem["cpu_seconds"][side]["median"] > 0
    text = results_md.read_text()
    assert text.startswith("# Benchmarks\n\nkept as it is\n")
    assert "<!-- begin sklearn-dropin -->" in text and "<!-- end sklearn-dropin -->" in text
    ratio = digits["seconds"]["rbmvae"]["median"] / digits["seconds"]["scikit-learn"]["median"]
    assert "| 8x8 digits | 40 x 64 | float64 |" in text and f"| {ratio:.2f} |" in text
    # the first fit in a fresh process: the subprocess's flags select the same data, and its
    # one fit prints its seconds
    args = sklearn_dropin.parse_args(tiny_flags)
    again = sklearn_dropin.parse_args(sklearn_dropin._data_flags(args))
    assert {**vars(again), "repeats": args.repeats} == vars(args)  # one fit: no repeats
    capsys.readouterr()
    sklearn_dropin.main(tiny_flags + ["--cold", "rbmvae", "--problem", "MNIST, first 60"])
    assert float(capsys.readouterr().out.split("RESULT ")[1]) > 0
