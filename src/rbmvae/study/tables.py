"""The results tables of a study run, as Markdown, from its ``metrics.json``.

Three tables (``TABLES``): ``headline`` (each model's test log-likelihood, how it was estimated
and checked, and the published figure beside it, with a line naming the run), ``training``
(epochs, seconds and recipe per model) and ``inpainting`` (each method at each mask, beside the
baselines). :func:`update_markdown` rewrites the blocks of a Markdown file between
``<!-- rbmvae:results TABLE RUN -->`` and ``<!-- /rbmvae:results -->`` (``rbmvae results``).

Every number comes from the metrics; an AIS (or any) estimate whose own checks failed prints as
"unreliable", never as a number. Keys added to ``metrics.json`` over time (``commit``,
``peak_memory``, standard errors, the quadrature of a 2-D code) are used where present.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from .published import CITATIONS, DASH, model_label, published_cell, published_for

# ------------------------------------------------------------------------------------------------
# figures of the metrics


def _value(figure) -> float | None:
    """The number of a ``{"value", "unit"}`` figure (or a bare number); None if absent."""
    if isinstance(figure, dict):
        figure = figure.get("value")
    if isinstance(figure, bool) or not isinstance(figure, int | float):
        return None
    return float(figure) if math.isfinite(figure) else None


def _nats(figure, digits: int = 2) -> str:
    value = _value(figure)
    return DASH if value is None else f"{value:.{digits}f}"


def _with_error(part: dict, key: str) -> str:
    """``part[key]`` with its standard error (``part["standard_error"]``) where one is stored."""
    error = _value(part.get("standard_error"))
    text = _nats(part.get(key))
    return text if error is None else f"{text} ± {error:.2f}"


def _gap(figure, reference) -> float | None:
    """``figure - reference`` in nats, or None where either is missing."""
    value, base = _value(figure), _value(reference)
    return None if value is None or base is None else value - base


def _reliable(part: dict) -> bool:
    return part.get("reliable", True) is not False


# ------------------------------------------------------------------------------------------------
# the headline table


def _exact_cells(model: dict, likelihood: dict) -> tuple[str, str]:
    config = model.get("config", {})
    hidden, visible = config.get("n_hidden", 0), config.get("n_visible", 0)
    layer = "hidden" if hidden <= visible else "visible"
    text = f"exact: the 2^{min(hidden, visible)} {layer} states enumerated (Eq. 3.1)"
    ais = likelihood.get("ais")
    if ais:
        shown = _nats(ais["mean_log_likelihood"]) if _reliable(ais) else "unreliable"
        text += f"; AIS beside it: {shown} ({_effective(ais)})"
    return f"**{_nats(likelihood['exact']['mean_log_likelihood'])}**", text


def _effective(ais: dict) -> str:
    effective = _value(ais.get("effective_runs"))
    runs = ais.get("n_runs")
    return f"{effective:.0f} effective runs of {runs}" if effective is not None else f"{runs} runs"


def _ais_cells(likelihood: dict) -> tuple[str, str]:
    """The AIS figure and its checks; a figure that failed them shows as "unreliable" (with
    RAISE's conservative end, but not the bracket's other end, which is the failed figure)."""
    ais, reliable = likelihood["ais"], _reliable(likelihood["ais"])
    parts = [f"AIS, {ais.get('n_runs')} runs of {ais.get('n_betas', 0):,} betas (Eqs. 3.2-3.6)"]
    bracket = ais.get("bracket")
    if bracket and reliable:
        parts.append(f"RAISE bracket {_nats(bracket['low'])} to {_nats(bracket['high'])}")
    elif bracket:
        parts.append(f"RAISE's conservative end {_nats(bracket['low'])}")
    parts.append(_effective(ais))
    doubled = ais.get("doubled_betas")
    if doubled and _value(doubled.get("delta")) is not None:
        parts.append(f"doubling the betas moves it {_value(doubled['delta']):+.2f}")
    if not reliable:
        problems = "; ".join(ais.get("problems") or []) or "its checks failed"
        parts.append(f"fails its checks: {problems}")
        return "unreliable", "; ".join(parts)
    return f"**{_nats(ais['mean_log_likelihood'])}**", "; ".join(parts)


def _rbm_cells(model: dict, likelihood: dict) -> tuple[str, str]:
    if "exact" in likelihood:
        return _exact_cells(model, likelihood)
    if "ais" in likelihood:
        return _ais_cells(likelihood)
    return DASH, "not measured"


def _quadrature_check(check) -> str:
    if not isinstance(check, dict):
        return ""
    delta = _value(check.get("delta"))
    if delta is not None:
        grid = check.get("grid_size")
        where = f" (a {grid} x {grid} grid)" if grid else ""
        return f"; a finer grid{where} moves it {delta:+.3f}"
    return ""


def _vae_cells(model: dict, likelihood: dict) -> tuple[str, str]:
    iwae, elbo = likelihood.get("iwae"), likelihood.get("elbo")
    quadrature = likelihood.get("quadrature")
    others = []
    if elbo:
        others.append(f"ELBO {_with_error(elbo, 'mean')}")
    active = likelihood.get("active_units")
    if active:
        others.append(f"{_value(active.get('count')):.0f} of {active.get('of')} units active")
    if quadrature:
        grid, limit = quadrature.get("grid_size"), quadrature.get("limit")
        text = "quadrature over the code plane (Eq. 3.8"
        text += f"; {grid} x {grid} grid" if grid else ""
        text += f" on [-{limit:g}, {limit:g}]^2)" if isinstance(limit, int | float) else ")"
        text += _quadrature_check(quadrature.get("check"))
        if iwae:
            text += f"; IWAE (K = {iwae.get('k', 0):,}) beside it: "
            text += _with_error(iwae, "mean_log_likelihood")
            gap = _gap(iwae.get("mean_log_likelihood"), quadrature.get("mean_log_likelihood"))
            text += f", {abs(gap):.2f} {'below' if gap < 0 else 'above'}" if gap is not None else ""
        text = "; ".join([text, *others])
        if not _reliable(quadrature):
            return "unreliable", text
        return f"**{_nats(quadrature['mean_log_likelihood'])}**", text
    if iwae:
        text = f"IWAE, K = {iwae.get('k', 0):,} (Eq. 3.7)"
        if _value(iwae.get("standard_error")) is not None:
            text += f", standard error {_value(iwae['standard_error']):.2f}"
        text = "; ".join([text, *others])
        if not _reliable(iwae):
            return "unreliable", text
        return f"**{_nats(iwae['mean_log_likelihood'])}**", text
    return DASH, "; ".join(others) or "not measured"


# How each model kind's headline cells are made: (figure, how it was estimated and checked).
HEADLINE_CELLS: dict[str, Callable[[dict, dict], tuple[str, str]]] = {
    "rbm": _rbm_cells,
    "vae": _vae_cells,
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _memory(figure) -> str:
    value = _value(figure)
    if value is None:
        return "not recorded"
    unit = figure.get("unit", "bytes") if isinstance(figure, dict) else "bytes"
    if unit != "bytes":
        return f"{value:g} {unit}"
    return f"{value / 2**30:.1f} GiB" if value >= 2**30 else f"{value / 2**20:.0f} MiB"


def _test_images(metrics: dict) -> str:
    """How many test digits the log-likelihoods used (per model kind where they differ), and
    how they were binarized."""
    counts, seed = {}, 0
    for model in metrics["models"].values():
        test = model.get("evaluation", {}).get("log_likelihood", {}).get("test_images")
        if test:
            counts.setdefault(test["n"], []).append(model.get("kind", "?").upper() + "s")
            seed = test.get("seed", seed)
    if not counts:
        return "the test digits"
    if len(counts) == 1:
        shown = f"{next(iter(counts)):,} test digits"
    else:
        kinds = [f"{n:,} ({' and '.join(dict.fromkeys(k))})" for n, k in counts.items()]
        shown = f"{' / '.join(kinds)} test digits"
    return f"{shown}, binarized with seed {seed}"


def run_line(metrics: dict) -> str:
    """One line naming the run: profile, data, commit, wall time, peak memory, workers."""
    settings = metrics.get("settings", {})
    dataset = metrics.get("dataset", {})
    commit = str(metrics.get("commit") or "")
    commit = commit[:12] if re.fullmatch(r"[0-9a-f]{13,}", commit) else commit
    commit = f"commit `{commit}`" if commit else "commit not recorded"
    workers = metrics.get("workers", {})
    processes = workers.get("processes")
    parallel = (
        f" in {processes} worker process(es) of {workers.get('threads_each')} thread(s) each"
        if processes
        else ""
    )
    data = dataset.get("name", settings.get("dataset", "?"))
    if "n_train" in dataset:
        data += f" ({dataset['n_train']:,} training digits)"
    return (
        f"Run: profile `{settings.get('profile', '?')}` on {data}, {commit}; "
        f"log-likelihoods in nats per image on {_test_images(metrics)}; wall time "
        f"{_duration(_value(metrics.get('seconds', {}).get('total')))}{parallel} on "
        f"{metrics.get('device', '?')}, peak memory {_memory(metrics.get('peak_memory'))}."
    )


def _markdown_table(columns: list[str], rows: list[list[str]], align: str) -> list[str]:
    bar = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join(bar[a] for a in align) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def headline_table(metrics: dict) -> str:
    """Every model's test log-likelihood with its estimator and checks, the published figures
    beside them with their citations, and the line naming the run."""
    rows, cited = [], set()
    for name, model in metrics["models"].items():
        likelihood = model.get("evaluation", {}).get("log_likelihood", {})
        make = HEADLINE_CELLS.get(model.get("kind"))
        figure, how = make(model, likelihood) if make else (DASH, "not measured")
        if (model.get("train_config") or {}).get("binarize") == "none":
            how += "; trained on grey pixel values as targets, scored on binary digits"
        rows.append([model_label(name, model), figure, how, published_cell(model)])
        cited |= {entry.source for entry in published_for(model)}
    columns = ["model", "test log-likelihood", "how it was estimated, and its checks", "published"]
    lines = _markdown_table(columns, rows, "lrll")
    lines += ["", run_line(metrics)]
    if cited:
        lines.append("")
        lines += [f"- [{n}] {CITATIONS[n]}" for n in sorted(cited)]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# the training table


def _rbm_recipe(config: dict) -> str:
    k = config.get("k", 1)
    method = str(config.get("method", "cd")).upper()
    rule = (
        f"{method}-{k}" if method != "PT" else f"parallel tempering, {config.get('chains')} chains"
    )
    if config.get("k_final"):
        rule = f"CD with k rising from {k} to {config['k_final']}"
    momentum, final = config.get("momentum"), config.get("final_momentum")
    moment = f"momentum {momentum:g}"
    if final is not None and final != momentum:
        moment += f", {final:g} from epoch {config.get('momentum_switch_epoch', 0) + 1}"
    return (
        f"{rule}, rate {config.get('learning_rate', 0):g} ({config.get('lr_schedule')}), {moment}, "
        f"batch {config.get('batch_size')}, weight decay {config.get('weight_decay', 0):g}"
    )


BINARIZED = {
    "none": "grey targets",
    "stochastic": "digits binarized afresh every epoch",
    "threshold": "digits thresholded at 0.5",
}


def _vae_recipe(config: dict) -> str:
    bound = (
        "the ELBO" if config.get("iwae_k", 1) <= 1 else f"the IWAE bound, k = {config['iwae_k']}"
    )
    optimizer = {"adam": "Adam", "sgd": "SGD"}.get(config.get("optimizer"), config.get("optimizer"))
    text = (
        f"{optimizer} on {bound}, rate {config.get('learning_rate', 0):g} "
        f"({config.get('lr_schedule')}), batch {config.get('batch_size')}"
    )
    if config.get("kl_warmup_epochs"):
        text += f", KL warm-up over {config['kl_warmup_epochs']:g} epochs"
    binarize = config.get("binarize")
    return f"{text}, {BINARIZED.get(binarize, binarize)}"


RECIPE_TEXT: dict[str, Callable[[dict], str]] = {"rbm": _rbm_recipe, "vae": _vae_recipe}


def training_table(metrics: dict) -> str:
    """Per model: epochs, its training and evaluation seconds, and its recipe."""
    rows = []
    for name, model in metrics["models"].items():
        config = model.get("train_config") or {}
        recipe = RECIPE_TEXT.get(model.get("kind"))
        evaluation = model.get("evaluation", {}).get("seconds", {}).get("total")
        rows.append(
            [
                model_label(name, model),
                str(model.get("epochs", DASH)),
                _duration(_value(model.get("training_seconds"))),
                _duration(_value(evaluation)),
                recipe(config) if recipe and config else DASH,
            ]
        )
    columns = ["model", "epochs", "training", "evaluation", "recipe"]
    workers = metrics.get("workers", {})
    note = (
        f"Each model's own seconds, on {workers.get('threads_each', '?')} thread(s) of "
        f"{metrics.get('device', '?')}; the models ran side by side in "
        f"{workers.get('processes', 1)} process(es)."
    )
    return "\n".join([*_markdown_table(columns, rows, "lrrrl"), "", note])


# ------------------------------------------------------------------------------------------------
# the inpainting table


def _inpainting_rows(metrics: dict) -> list[dict]:
    rows = list(metrics.get("baselines", {}).get("inpainting", {}).get("rows", []))
    for model in metrics["models"].values():
        rows += model.get("evaluation", {}).get("inpainting", {}).get("rows", [])
    return rows


# Each cell's three figures: (key, format, whether higher is better).
CELL_FIGURES = (
    ("mse", "{:.4f}", False),
    ("accuracy", "{:.1%}", True),
    ("conditional", "{:.1f}", True),
)


def _best(rows: list[dict], mask: str) -> dict[str, float]:
    best = {}
    for key, _, higher in CELL_FIGURES:
        values = [_value(r.get(key)) for r in rows if r.get("mask") == mask]
        values = [v for v in values if v is not None]
        if values:
            best[key] = max(values) if higher else min(values)
    return best


def _cell(row: dict | None, best: dict[str, float]) -> str:
    if row is None:
        return DASH
    parts = []
    for key, form, _ in CELL_FIGURES:
        value = _value(row.get(key))
        text = DASH if value is None else form.format(value)
        parts.append(f"**{text}**" if value is not None and value == best.get(key) else text)
    return " / ".join(parts)


def _mask_title(mask: str) -> str:
    return f"{mask} missing" if mask.endswith("%") else mask


def inpainting_table(metrics: dict) -> str:
    """Each method (baselines first) at each mask: squared error / classifier accuracy /
    conditional log-likelihood of the missing pixels, the best of each in bold."""
    rows = _inpainting_rows(metrics)
    if not rows:
        return "No inpainting was measured in this run."
    masks = list(dict.fromkeys(r.get("mask") or f"{r['fraction']:.0%}" for r in rows))
    for row in rows:
        row.setdefault("mask", f"{row['fraction']:.0%}")
    best = {mask: _best(rows, mask) for mask in masks}
    by_cell = {(r["method"], r["mask"]): r for r in rows}
    table = [
        [method] + [_cell(by_cell.get((method, mask)), best[mask]) for mask in masks]
        for method in dict.fromkeys(r["method"] for r in rows)
    ]
    columns = ["method", *(_mask_title(m) for m in masks)]
    lines = _markdown_table(columns, table, "l" + "r" * len(masks))
    inpainting = metrics.get("baselines", {}).get("inpainting") or next(
        (m["evaluation"]["inpainting"] for m in metrics["models"].values()
         if m.get("evaluation", {}).get("inpainting")),
        {},
    )  # fmt: skip
    settings, classifier = inpainting.get("settings", {}), inpainting.get("classifier", {})
    chains = settings.get("chains", 1)
    start = settings.get("start_fill", "training mean")
    start = f"from the {start}" if start == "training mean" else f"started with {start}"
    accuracy = classifier.get("test_accuracy")
    on_test = f", {accuracy:.2%} on the complete test set" if accuracy is not None else ""
    note = (
        f"The first {settings.get('n_images', '?'):,} test digits, the same masks for every row; "
        f"each model ran {chains} chain{'s' * (chains != 1)} per digit of "
        f"{settings.get('steps', '?')} sweeps {start} and averaged the last "
        f"{settings.get('average_last', '?')} (Eq. 5.9). Each cell: squared error per missing "
        "pixel against the grey digit / accuracy of the evaluation classifier "
        f"({classifier.get('name', 'fixed')}{on_test}) on the filled digits / conditional "
        "log-likelihood of the missing pixels given the observed ones, nats per image, on the "
        f"first {settings.get('conditional_images', '?')} digits (Eqs. 5.5-5.8; {DASH} where "
        "the method defines none). The best of each in bold."
    )
    return "\n".join([*lines, "", note])


# The tables by the name a marker gives them.
TABLES: dict[str, Callable[[dict], str]] = {
    "headline": headline_table,
    "training": training_table,
    "inpainting": inpainting_table,
}
