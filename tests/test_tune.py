"""``rbmvae tune``: search spaces, scores, pruning, recipes, and workers sharing one study through
a real SQLite file and a real PostgreSQL server (started here), one of them killed mid-trial.

Every study is tiny: 8x8 digits, an 8-hidden RBM, two epochs, a short AIS; a trial takes well
under a second, so the worker processes' start (torch and Optuna imports) is most of the time.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import rbmvae
from rbmvae.tuning import load_space, read_recipe, recipe_config, tune
from rbmvae.tuning.score import score
from rbmvae.tuning.settings import TuneSettings

optuna = pytest.importorskip("optuna")

TRAIN, VALIDATION = 240, 40
TINY = {
    "model": {"n_hidden": 8},
    "validation": VALIDATION,
    "base": {"epochs": 2},
    "report_every": 1,
    "ais_runs": 16,
    "ais_betas": 100,
    "raise_images": 10,
    "ais_doubled_check": False,
    "heartbeat": 1,
    "grace": 2,
    "progress": False,
}
TINY_CLI = [
    "--hidden", "8", "--validation", str(VALIDATION), "--set", "epochs=2", "--report-every", "1",
    "--ais-runs", "16", "--ais-betas", "100", "--raise-images", "10", "--no-doubled-check",
    "--heartbeat", "1", "--grace", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def digits(tmp_path_factory, write_dataset):
    """A directory of 240 training and 12 test 8x8 digits (random grey values)."""
    directory = tmp_path_factory.mktemp("digits")
    write_dataset(directory, n_train=TRAIN, n_test=12, shape=(8, 8))
    return directory


def _study(name, url):
    return optuna.load_study(study_name=name, storage=url)


def _counted(study):
    return [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED")]


# ------------------------------------------------------------------------------------------------
# search spaces


def test_a_space_file_becomes_ranges_choices_and_fixed_values():
    base = rbmvae.TrainConfig.defaults_for("rbm")
    space = load_space(
        {
            "learning_rate": {"low": 0.001, "high": 0.1, "log": True},
            "k": {"low": 1, "high": 5},
            "batch_size": {"low": 50, "high": 200, "step": 50},
            "method": {"choices": ["cd", "pcd"]},
            "momentum": {"low": 0, "high": 0.5},  # integer bounds of a float field: floats
            "epochs": 7,
        },
        "rbm",
        base,
    )
    assert space.fixed == {"epochs": 7}
    assert space.names() == ("learning_rate", "k", "batch_size", "method", "momentum")
    trial = optuna.trial.FixedTrial(
        {"learning_rate": 0.01, "k": 3, "batch_size": 150, "method": "pcd", "momentum": 0.25}
    )
    drawn = space.suggest(trial)
    assert drawn == {
        "epochs": 7,
        "learning_rate": 0.01,
        "k": 3,
        "batch_size": 150,
        "method": "pcd",
        "momentum": 0.25,
    }
    assert isinstance(space.dimensions[-1].low, float)
    # sampled for real, every value stays in its range and on its grid
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        values = space.suggest(study.ask())
        assert 0.001 <= values["learning_rate"] <= 0.1 and 1 <= values["k"] <= 5
        assert values["batch_size"] in (50, 100, 150, 200) and values["method"] in ("cd", "pcd")
    for kind in ("rbm", "vae"):  # the default spaces are valid
        assert load_space(None, kind, rbmvae.TrainConfig.defaults_for(kind)).dimensions


@pytest.mark.parametrize(
    ("space", "fragment"),
    [
        ({"lr": {"low": 0.1, "high": 1.0}}, "unknown TrainConfig field 'lr'"),
        ({"learning_rate": {"low": 0.1, "high": 0.01}}, "empty range"),
        ({"k": {"low": 1.5, "high": 3}}, "k: low 1.5 is not a int"),
        ({"method": {"choices": []}}, "non-empty list"),
        ({"method": {"choices": ["cd", "nope"]}}, "choice 'nope' refused"),
        ({"method": {"low": 1, "high": 2}}, "give choices, not a range"),
        ({"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}, "refused"),
        ({"weight_decay": {"low": 0.0, "high": 0.1, "log": True}}, "log range needs low > 0"),
        ({"k": {"low": 1}}, "a range is"),
        ({"epochs": "ten"}, "is not a int"),
        (["k"], "JSON object"),
    ],
)
def test_a_bad_space_is_one_line_naming_the_problem(space, fragment):
    with pytest.raises(rbmvae.ConfigError, match="search space") as caught:
        load_space(space, "rbm", rbmvae.TrainConfig.defaults_for("rbm"))
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


# ------------------------------------------------------------------------------------------------
# the hook in fit


def test_fit_calls_on_epoch_end_and_stops_when_it_raises(tmp_path, sample_data):
    data = sample_data.subset(n_train=200, n_test=50)
    seen = []

    class Stop(Exception):
        pass

    def hook(epoch, record):
        seen.append((epoch, record["epoch"], record["pseudo_log_likelihood"]))
        if epoch == 2:
            raise Stop

    model = rbmvae.RBM(784, 8)
    with pytest.raises(Stop):
        fit_kwargs = {"epochs": 4, "progress": False, "on_epoch_end": hook}
        rbmvae.fit(model, data, out_dir=tmp_path / "m", **fit_kwargs)
    assert [(e, r) for e, r, _ in seen] == [(1, 1), (2, 2)]
    _, meta = rbmvae.load_model(tmp_path / "m")
    assert meta["epochs_completed"] == 2  # the epoch that raised is saved; --resume continues
    assert meta["history"][-1]["pseudo_log_likelihood"] == seen[-1][2]


# ------------------------------------------------------------------------------------------------
# one study in this process


def test_a_study_scores_the_raise_end_and_exports_a_recipe_that_reproduces_it(tmp_path, digits):
    out = tmp_path / "run"
    summary = tune("rbm", "one", 3, data_dir=str(digits), out=str(out), pruner="none", **TINY)
    assert summary["counted"] == 3 and summary["states"] == {"complete": 3}
    study = _study("one", f"sqlite:///{out / 'study.db'}")
    best = max(study.get_trials(), key=lambda t: t.value)
    facts = best.user_attrs["summary"]
    # the score is the RAISE end of the bracket, checked against the exact figure (2^8 states)
    assert best.value == facts["low"] and facts["reliable"]
    assert abs(facts["low"] - facts["exact"]) < 0.5 and abs(facts["ll"] - facts["exact"]) < 0.5
    assert facts["test_images"] == VALIDATION  # scored on the validation digits
    assert len(best.intermediate_values) == 2  # one report per epoch
    recipe = read_recipe(out / "best-recipe.json", "rbm")
    assert recipe["source"]["trial"] == best.number and recipe["model"] == {"n_hidden": 8}
    assert recipe["source"]["data"]["n_train"] == TRAIN - VALIDATION
    # the recipe retrained on the same split scores the same, to the last bit
    split = rbmvae.load_dataset(None, digits).validation_split(VALIDATION)
    model = rbmvae.RBM(64, 8)
    rbmvae.fit(model, split, recipe_config("rbm", out / "best-recipe.json"), progress=False)
    settings = TuneSettings(kind="rbm", study="one", trials=1, **TINY)
    assert score(model, split, settings)[0] == best.value
    table = (out / "trials.md").read_text()
    assert table.count("| complete |") == 3 and "learning rate" in table
    assert (out / "trials.csv").read_text().count("\n") == 4
    assert (out / "trials.png").read_bytes()[:4] == b"\x89PNG"
    # run again: the study already has its trials, nothing more is run
    again = tune("rbm", "one", 3, data_dir=str(digits), out=str(out), pruner="none", **TINY)
    assert again["counted"] == 3 and len(_study("one", f"sqlite:///{out / 'study.db'}").trials) == 3


def test_train_and_reproduce_take_the_recipe_file(tmp_path, digits, run_cli):
    out = tmp_path / "run"
    tune("rbm", "rec", 1, data_dir=str(digits), out=str(out), pruner="none", **TINY)
    recipe = out / "best-recipe.json"
    settings = read_recipe(recipe)["settings"]
    code, _, err = run_cli(
        "train", "rbm", "--recipe", recipe, "--data-dir", digits, "--out", tmp_path / "m",
        "--quiet", "--lr", "0.5",
    )  # fmt: skip
    assert code == 0, err
    model, meta = rbmvae.load_model(tmp_path / "m")
    assert model.n_hidden == 8  # the recipe's size
    assert (
        meta["train_config"]
        == rbmvae.TrainConfig.defaults_for("rbm", **{**settings, "learning_rate": 0.5}).to_dict()
    )
    code, shown, err = run_cli("reproduce", "--set", f"rbm={recipe}", "--show-settings")
    assert code == 0, err
    assert json.loads(shown)["rbm"]["learning_rate"] == settings["learning_rate"]
    assert run_cli("train", "rbm", "--recipe", "pcd", "--quiet", "--epochs", "1", "--out",
                   tmp_path / "named", "--hidden", "4").code == 0  # fmt: skip


def test_pruned_trials_count_and_unreliable_ones_fail(tmp_path, digits):
    out = tmp_path / "run"
    prune_all = optuna.pruners.ThresholdPruner(lower=0.0)  # a pseudo-likelihood is below 0
    summary = tune("rbm", "pruned", 2, data_dir=str(digits), out=str(out), pruner=prune_all, **TINY)
    study = _study("pruned", f"sqlite:///{out / 'study.db'}")
    assert summary["counted"] == 2 and summary["best"] is None
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    assert all(t.user_attrs["pruned"].startswith("epoch 1: pll") for t in study.trials)
    # two AIS runs: too few effective runs, so no score: failed, not counted, reason recorded
    settings = {**TINY, "ais_runs": 2, "max_failures": 2}
    summary = tune("rbm", "shaky", 3, data_dir=str(digits), out=str(out), pruner="none", **settings)
    study = _study("shaky", f"sqlite:///{out / 'study.db'}")
    assert summary["counted"] == 0 and summary["stopped_by"] == "2 trials failed (the limit)"
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    assert all("unreliable: effective runs" in t.user_attrs["failure"] for t in study.trials)


def test_a_vae_study_scores_iwae_and_reports_the_validation_elbo(tmp_path, digits):
    out = tmp_path / "run"
    options = {**TINY, "model": {"n_hidden": 8, "n_latent": 2}, "iwae_k": 20, "base": {}}
    space = {"learning_rate": {"low": 1e-3, "high": 1e-2, "log": True}, "binarize": "stochastic"}
    summary = tune("vae", "vae", 2, data_dir=str(digits), out=str(out), space=space,
                   minutes=0.002, pruner="none", **options)  # fmt: skip
    assert summary["counted"] == 2
    trials = _study("vae", f"sqlite:///{out / 'study.db'}").trials
    done = [t for t in trials if t.state.name == "COMPLETE"]  # a surplus trial may end failed
    assert len(done) == 2
    for trial in done:
        facts, epochs = trial.user_attrs["summary"], trial.user_attrs["epochs"]
        assert trial.value == facts["iwae"] and facts["k"] == 20
        assert facts["test_images"] == VALIDATION
        assert trial.user_attrs["settings"]["epochs"] == epochs >= 1  # from the pilot
        assert sorted(trial.intermediate_values) == list(range(1, epochs + 1))
        assert all(v < 0 for v in trial.intermediate_values.values())  # ELBOs, in nats
    recipe = read_recipe(out / "best-recipe.json", "vae")
    assert recipe["model"] == {"n_hidden": 8, "n_latent": 2}
    assert recipe["settings"]["binarize"] == "stochastic"


# ------------------------------------------------------------------------------------------------
# the command line's errors


def test_bad_input_is_one_line(tmp_path, digits, run_cli, assert_cli_error):
    common = ["tune", "rbm", "--study", "s", "--trials", "2", "--data-dir", digits, *TINY_CLI]
    out = ["--out", tmp_path / "run"]
    assert_cli_error(run_cli(*common, *out, "--storage", "nosuch://x"), "nosuch")
    assert_cli_error(run_cli(*common, *out, "--storage", "not a url"), "not a database URL")
    unreachable = f"postgresql://nobody@/db?host={tmp_path}/nothing"
    assert_cli_error(run_cli(*common, *out, "--storage", unreachable), "cannot open it")
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"learning_rte": {"low": 0.01, "high": 0.1}}))
    assert_cli_error(run_cli(*common, *out, "--space", space), "unknown TrainConfig field")
    space.write_text(json.dumps({"learning_rate": {"low": 0.1, "high": 0.01}}))
    assert_cli_error(run_cli(*common, *out, "--space", space), "empty range")
    space.write_text("{not json")
    assert_cli_error(run_cli(*common, *out, "--space", space), "not JSON")
    assert_cli_error(run_cli(*common, *out, "--space", tmp_path / "none.json"), "no such file")
    space.write_text(json.dumps({"epochs": {"low": 1, "high": 3}}))
    assert_cli_error(run_cli(*common, *out, "--space", space, "--minutes", "1"), "leave epochs")
    assert_cli_error(run_cli(*common, *out, "--heartbeat", "5", "--grace", "5"), "grace period")
    # a second worker with other settings is refused: one study, one set of settings
    assert run_cli(*common, *out, "--quiet").code == 0
    assert_cli_error(run_cli(*common, *out, "--hidden", "9"), "started with other settings")


def test_without_optuna_the_command_says_what_to_install(monkeypatch, run_cli, assert_cli_error):
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now fails
    result = run_cli("tune", "rbm", "--study", "s", "--trials", "1")
    assert_cli_error(result, "pip install 'rbmvae[tune]'")
    checked = subprocess.run(
        [sys.executable, "-c", "import sys, rbmvae, rbmvae.cli, rbmvae.tuning; "
         "print('optuna' in sys.modules, 'sqlalchemy' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert checked.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------------------------------------
# workers in processes of their own, sharing one storage


def _worker(digits, out, url, name, trials, *extra):
    """An ``rbmvae tune`` process of the tiny study ``name`` in ``url``."""
    command = [sys.executable, "-m", "rbmvae", "tune", "rbm", "--study", name, "--trials"]
    command += [str(trials), "--data-dir", str(digits), "--out", str(out), "--storage", url]
    # trials of about a second (a longer AIS), so that a worker that starts a few seconds later
    # still gets its share, and a trial is still running when the test kills its worker
    command += [*TINY_CLI, "--ais-betas", "20000", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip


def _workers_finish(digits, out, url, name, commands, trials=6):
    """Start ``commands`` workers (each a list of extra options) at once; check that exactly
    ``trials`` were counted, each run once, by two processes, as their output lines say."""
    workers = [_worker(digits, out, url, name, trials, *extra) for extra in commands]
    outputs = [w.communicate(timeout=900) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    study = _study(name, url)
    counted = _counted(study)
    assert len(counted) == trials  # exactly N between them
    assert len({t.number for t in counted}) == trials
    by_worker = {}  # each counted trial ran in one worker process
    for t in counted:
        by_worker.setdefault(t.user_attrs["worker"], []).append(t.number)
    assert len(by_worker) == 2, by_worker  # both took part
    printed = {}  # and each worker printed a line for each trial it ran, and only for those
    for text, _ in outputs:
        for line in text.splitlines():
            if line.startswith("trial "):
                printed.setdefault(line.rsplit("[", 1)[1].rstrip("]"), []).append(line.split()[1])
    for trial in study.trials:
        if trial.state.name == "FAIL":  # a surplus start, when two workers asked at once
            by_worker.setdefault(trial.user_attrs["worker"], []).append(trial.number)
    assert {w: sorted(map(int, n)) for w, n in printed.items()} == {
        w: sorted(n) for w, n in by_worker.items()
    }
    return study


def test_two_workers_of_one_command_share_one_sqlite_study(tmp_path, digits):
    out = tmp_path / "run"
    out.mkdir()
    # one command, two processes: the spawned one joins while this one waits (workers.py)
    _workers_finish(digits, out, f"sqlite:///{out / 'study.db'}", "shared", [["--jobs", "2"]])
    assert read_recipe(out / "best-recipe.json", "rbm")["source"]["study"] == "shared"


def _postgres_bin():
    import glob
    import shutil
    from pathlib import Path

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = found[-1] if found else shutil.which("initdb")
    return None if initdb is None else Path(initdb).parent


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server of our own: initdb into a temporary directory, on a unix socket there,
    run as an unprivileged user when we are root; stopped afterwards."""
    import pwd
    import shutil
    import tempfile
    from pathlib import Path

    bindir = _postgres_bin()
    if bindir is None:
        reason = "PostgreSQL is not installed (Debian: apt-get install postgresql)"
        if os.environ.get("RBMVAE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}, and RBMVAE_REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="rbmvae-pg-"))
    prefix = []
    if os.geteuid() == 0:
        user = next(n for n in ("postgres", "nobody") if _has_user(n))
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    data, log = base / "data", base / "server.log"
    quiet = {"check": True, "capture_output": True, "timeout": 600}
    subprocess.run(prefix + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "tune",
                             "--no-sync"], **quiet)  # fmt: skip
    options = f"-k {base} -c listen_addresses='' -c fsync=off"
    pg_ctl = prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log)]
    subprocess.run(pg_ctl + ["-w", "-o", options, "start"], **quiet)
    try:
        yield f"postgresql://tune@/postgres?host={base}"
    finally:
        subprocess.run(pg_ctl + ["-m", "immediate", "stop"], capture_output=True, timeout=600)
        shutil.rmtree(base, ignore_errors=True)


def _has_user(name):
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def test_two_workers_share_one_postgresql_study(tmp_path, digits, postgres_url):
    # two commands, as on two machines
    study = _workers_finish(digits, tmp_path / "run", postgres_url, "on-postgres", [[], []])
    assert study.user_attrs["rbmvae"]["data"]["n_validation"] == VALIDATION


def test_a_worker_killed_mid_trial_leaves_it_failed_and_the_study_completes(tmp_path, digits):
    out = tmp_path / "run"
    out.mkdir()
    url, trials = f"sqlite:///{out / 'study.db'}", 4
    doomed = _worker(digits, out, url, "killed", trials)
    victim = None
    deadline = time.monotonic() + 600
    while victim is None and time.monotonic() < deadline:
        time.sleep(0.02)
        try:
            running = _study("killed", url).get_trials(states=(optuna.trial.TrialState.RUNNING,))
        except (KeyError, Exception):  # noqa: B014 - the study or its tables may not exist yet
            continue
        mine = [  # its trial, once it has drawn its parameters and started training
            t
            for t in running
            if t.user_attrs.get("worker", "").endswith(f":{doomed.pid}") and t.params
        ]
        victim = mine[0].number if mine else None
    assert victim is not None, doomed.communicate(timeout=10)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)
    survivor = _worker(digits, out, url, "killed", trials)
    _, err = survivor.communicate(timeout=900)
    assert survivor.returncode == 0, err
    study = _study("killed", url)
    states = {t.number: t.state.name for t in study.trials}
    assert states[victim] == "FAIL"  # failed by the survivor, from its stale heartbeat
    assert len(_counted(study)) == trials
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim]
    assert len(retried) == 1 and retried[0].params == study.trials[victim].params
    assert torch.get_num_threads() >= 1


def test_a_trial_its_worker_never_claimed_is_failed_after_the_grace_period():
    # A worker killed between creating a trial and its first heartbeat leaves a RUNNING trial
    # that Optuna never finds stale: the quota fails it once it is old enough.
    from rbmvae.tuning.workers import Quota

    study = optuna.create_study()
    orphan, claimed = study.ask(), study.ask()
    claimed.set_user_attr("worker", "elsewhere:1")
    Quota(optuna, 5, 5, 0.01, grace=3600).fail_unclaimed(study)
    assert [t.state.name for t in study.trials] == ["RUNNING", "RUNNING"]  # not old enough
    Quota(optuna, 5, 5, 0.01, grace=0).fail_unclaimed(study)
    assert [t.state.name for t in study.trials] == ["FAIL", "RUNNING"]
    assert orphan.number == 0


def test_the_first_worker_waits_for_the_spawned_ones_to_join_but_not_for_a_dead_one():
    import threading

    from rbmvae.tuning.workers import await_workers

    class Child:
        def __init__(self, alive):
            self.alive = alive

        def is_alive(self):
            return self.alive

    ready = threading.Semaphore(0)
    threading.Timer(0.5, ready.release).start()  # the spawned worker joins after half a second
    started = time.monotonic()
    await_workers(ready, [Child(True)], limit=30)
    assert 0.4 < time.monotonic() - started < 10  # it waited for the join, and no longer
    started = time.monotonic()
    await_workers(ready, [Child(True), Child(False)], limit=30)  # one died before it joined
    assert time.monotonic() - started < 5
    started = time.monotonic()
    await_workers(ready, [Child(True)], limit=0.5)  # alive, but never joins: the limit
    assert 0.4 < time.monotonic() - started < 10
