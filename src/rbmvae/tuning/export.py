"""What a study leaves in its run directory: the best trial as a recipe file
(``best-recipe.json``), every trial as a table (``trials.md``, ``trials.csv``) and a plot
(``trials.png``: score against CPU minutes, and each parameter's importance)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .. import TrainConfig
from ..basics.atomic import atomic_path, write_text
from .recipe import write_recipe
from .score import MONITORED_DIGITS

SCORE_NAMES = {
    "rbm": "the RAISE end of the AIS bracket on the validation digits (nats per image)",
    "vae": "IWAE on the validation digits (nats per image)",
}


def _note(trial) -> str:
    attrs = trial.user_attrs
    note = attrs.get("failure") or attrs.get("pruned") or ""
    retried = trial.system_attrs.get("failed_trial")
    return f"{note} (retry of trial {retried})".strip() if retried is not None else note


def trial_rows(study) -> tuple[list[str], list[dict]]:
    """The columns and one row per trial, in trial order."""
    trials = study.get_trials(deepcopy=False)
    params = sorted({name for t in trials for name in t.params})
    columns = ["trial", "state", "score", "cpu_minutes", "epochs", *params, "worker", "note"]
    rows = []
    for t in trials:
        row = {
            "trial": t.number,
            "state": t.state.name.lower(),
            "score": t.value if t.state.name == "COMPLETE" else None,
            "cpu_minutes": t.user_attrs.get("cpu_minutes"),
            "epochs": t.user_attrs.get("epochs"),
            **{name: t.params.get(name) for name in params},
            "worker": t.user_attrs.get("worker"),
            "note": _note(t),
        }
        rows.append(row)
    return columns, rows


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 0.01 or abs(value) >= 1e4 else f"{value:.3f}"
    return str(value).replace("|", "/")


def markdown_table(columns: list[str], rows: list[dict]) -> str:
    head = "| " + " | ".join(c.replace("_", " ") for c in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body]) + "\n"


def csv_table(columns: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def importances(optuna, study) -> dict[str, float]:
    """Each parameter's importance (Optuna's default evaluator, PED-ANOVA), {} when the study has
    too few complete trials to say."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 2 or not any(t.params for t in complete):
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}


def write_plot(path: Path, rows: list[dict], weights: dict[str, float], title: str) -> None:
    """Score against CPU minutes (complete trials; the best one ringed) beside the importances."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["score"] is not None and r["cpu_minutes"] is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    left.scatter([r["cpu_minutes"] for r in done], [r["score"] for r in done], s=18)
    if done:
        best = max(done, key=lambda r: r["score"])
        left.scatter(
            [best["cpu_minutes"]], [best["score"]], s=90, facecolors="none", edgecolors="r"
        )
        left.annotate(f"trial {best['trial']}", (best["cpu_minutes"], best["score"]), fontsize=7)
    left.set_xlabel("training, CPU minutes")
    left.set_ylabel("validation score (nats)")
    left.set_title(title, fontsize=9)
    if weights:
        names = list(weights)[::-1]
        right.barh(names, [weights[n] for n in names])
        right.set_xlabel("importance (PED-ANOVA)")
    else:
        right.text(0.5, 0.5, "importances need 2 or more\ncompleted trials", ha="center")
        right.set_axis_off()
    right.set_title("parameter importances", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _best_recipe(study, settings, path: Path) -> dict | None:
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        return None
    best = max(complete, key=lambda t: t.value)
    config = TrainConfig.defaults_for(settings.kind, **best.user_attrs["settings"])
    source = {
        "study": study.study_name,
        "trial": best.number,
        "score": best.value,
        "score_name": SCORE_NAMES[settings.kind],
        "data": study.user_attrs.get("rbmvae", {}).get("data"),
        "cpu_minutes": best.user_attrs.get("cpu_minutes"),
        "summary": best.user_attrs.get("summary"),
    }
    return write_recipe(path, settings.kind, settings.model, config, source)


def export(optuna, study, settings, out: Path) -> dict:
    """Write the run directory's files; returns the study's summary with their paths."""
    columns, rows = trial_rows(study)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    weights = importances(optuna, study)
    files = {name: out / name for name in ("best-recipe.json", "trials.md", "trials.csv")}
    files["trials.png"] = out / "trials.png"
    recipe = _best_recipe(study, settings, files["best-recipe.json"])
    text = markdown_table(columns, rows)
    if weights:
        text += (
            "\nParameter importances (PED-ANOVA): "
            + ", ".join(f"{name} {value:.2f}" for name, value in weights.items())
            + "\n"
        )
    write_text(files["trials.md"], text)
    write_text(files["trials.csv"], csv_table(columns, rows))
    title = f"{study.study_name}: {settings.kind} {settings.model}"
    write_plot(files["trials.png"], rows, weights, title)
    if recipe is None:
        files.pop("best-recipe.json")
    return {
        "study": study.study_name,
        "counted": counts.get("complete", 0) + counts.get("pruned", 0),
        "states": counts,
        "best": None if recipe is None else recipe["source"] | {"settings": recipe["settings"]},
        "importances": weights,
        "files": {name: str(path) for name, path in files.items()},
        "monitored_digits": MONITORED_DIGITS,
    }
