"""The text form of an evaluation report (``rbmvae evaluate`` without ``--json``)."""

from __future__ import annotations

from .scoring import InpaintingTable
from .sections import _number


def _exact_line(part: dict, report: dict) -> str:
    return (
        f"  exact  log p(v) {part['mean_log_likelihood']['value']:10.3f}   "
        f"log Z {part['log_z']['value']:.3f}   ({part['method']}; "
        f"{part['seconds']['value']:.1f} s)"
    )


def _ais_line(part: dict, report: dict) -> str:
    runs = (
        f"({part['n_runs']} runs, {part['n_betas']} betas, effective runs "
        f"{part['effective_runs']['value']:.1f}; {part['seconds']['value']:.1f} s)"
    )
    checks = []
    if "bracket" in part:
        bracket = part["bracket"]
        checks.append(
            f"RAISE bracket [{_number(bracket['low'])}, {_number(bracket['high'])}] "
            f"({part['raise']['n_images']} images)"
        )
    if "doubled_betas" in part:
        checks.append(f"doubled betas move it {part['doubled_betas']['delta']['value']:+.3f}")
    checks = ("\n         " + "; ".join(checks)) if checks else ""
    if not part["reliable"]:
        problems = "; ".join(part.get("problems") or ["effective runs below 10%"])
        return (
            f"  AIS    log p(v)  unreliable   {runs}\n"
            f"         {problems}: log Z is likely underestimated and log p(v) too high; "
            f"use more betas or runs{checks}"
        )
    return (
        f"  AIS    log p(v) {part['mean_log_likelihood']['value']:10.3f} "
        f"[{_number(part['mean_log_likelihood_low'])}, "
        f"{_number(part['mean_log_likelihood_high'])}]   "
        f"log Z {part['log_z']['value']:.3f}   {runs}{checks}"
    )


def _error(part: dict) -> str:
    """`` +- s.e.`` where the part records a standard error (older reports do not)."""
    value = (part.get("standard_error") or {}).get("value")
    return f" +- {value:.3f}" if value is not None else ""


def _elbo_line(part: dict, report: dict) -> str:
    return (
        f"  ELBO            {part['mean']['value']:10.3f}{_error(part)}   "
        f"({part['seconds']['value']:.1f} s)"
    )


def _iwae_line(part: dict, report: dict) -> str:
    return (
        f"  IWAE   log p(x) {part['mean_log_likelihood']['value']:10.3f}{_error(part)}   "
        f"(K = {part['k']}; {part['seconds']['value']:.1f} s)"
    )


def _quadrature_line(part: dict, report: dict) -> str:
    check = part.get("check")
    finer = (
        f"; a {2 * part['grid_size'] - 1}-point grid moves it "
        f"{check['finer_minus_grid']['value']:+.4f} on {check['images']} images"
        if check
        else ""
    )
    return (
        f"  quadrature      {part['mean_log_likelihood']['value']:10.3f}{_error(part)}   "
        f"({part['grid_size']}^2 grid; IWAE minus quadrature "
        f"{part['iwae_minus_quadrature']['value']:+.3f}{finer}; {part['seconds']['value']:.1f} s)"
    )


def _active_line(part: dict, report: dict) -> str:
    return (
        f"  active units    {part['count']['value']} of {part['of']} "
        f"(posterior-mean variance > {report['settings']['active_threshold']})"
    )


# One text line per part of the log-likelihood section, in this order.
_LIKELIHOOD_LINES = {
    "exact": _exact_line,
    "ais": _ais_line,
    "elbo": _elbo_line,
    "iwae": _iwae_line,
    "quadrature": _quadrature_line,
    "active_units": _active_line,
}


def _inpainting_lines(inpainting: dict) -> list[str]:
    settings = inpainting["settings"]
    classifier = inpainting["classifier"]
    chains = settings.get("chains", 1)
    plain = [
        {k: v["value"] if isinstance(v, dict) else v for k, v in r.items()}
        for r in inpainting["rows"]
    ]
    return [
        f"inpainting {settings['n_images']} test images ({chains} chain{'s' * (chains > 1)} per "
        f"image of {settings['steps']} sweeps, last {settings['average_last']} averaged, start: "
        f"{settings.get('start_fill', 'training mean')}, seed {settings['seed']}); MSE and BCE "
        f"per missing pixel, BCE clipped at {settings['bce_clip']:g}",
        f"classifier: {classifier['name']}, test accuracy {classifier['test_accuracy']:.1%} "
        f"({classifier['accuracy_on_complete_images']:.1%} on these images complete)",
        InpaintingTable(plain, settings, classifier).format(),
    ]


def format_report(report: dict) -> str:
    """The report of :func:`evaluate` as text: log-likelihoods, the inpainting table, timings.

    An AIS estimate whose own diagnostic (the effective number of runs) fails is printed as
    "unreliable", not as a number.
    """
    model = report.get("model")
    data = report["dataset"]
    where = f"on {data['name']} (device {report['device']})"
    if model is None:
        lines = [f"baselines {where}"]
    else:
        lines = [f"{model['kind']} {model['config']} from {model['dir']} {where}"]
        lines += [f"warning: {text}" for text in report.get("warnings", [])]
    likelihood = report.get("log_likelihood")
    if likelihood:
        test = likelihood["test_images"]
        lines.append(
            f"test log-likelihood, nats per image, on {test['n']} test images binarized "
            f"stochastically with seed {test['seed']}:"
        )
        for key, line in _LIKELIHOOD_LINES.items():
            if key in likelihood:
                lines.append(line(likelihood[key], report))
    if report.get("inpainting"):
        lines += _inpainting_lines(report["inpainting"])
    timing = ", ".join(f"{part} {fig['value']:.1f} s" for part, fig in report["seconds"].items())
    lines.append(f"time: {timing}")
    return "\n".join(lines)
