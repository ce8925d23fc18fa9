"""The study (``rbmvae reproduce``): every model of the comparison trained, evaluated, drawn and
reported into one run directory.

Where things are: :mod:`.settings` (:class:`StudySettings`, the profiles, ``--set`` overrides),
:mod:`.run` (training and evaluation with reuse, :func:`run_study`), :mod:`.figures` (every
figure, one function per model kind) and :mod:`.report` (the tables, ``report.html``, the
end-of-run summary, the README's figures).
"""

from .._version import __version__
from .report import export_figures, format_summary
from .run import run_study
from .settings import FULL, LITERATURE, PROFILES, QUICK, StudySettings, resolve_settings

__all__ = [
    "FULL",
    "LITERATURE",
    "PROFILES",
    "QUICK",
    "StudySettings",
    "__version__",
    "export_figures",
    "format_summary",
    "resolve_settings",
    "run_study",
]
