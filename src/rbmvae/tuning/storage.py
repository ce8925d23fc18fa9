"""Optuna, imported only when a study runs, and the study's storage: an SQLite file in the run
directory by default, or any SQLAlchemy URL (``postgresql://USER:PASSWORD@HOST:PORT/DB``, psycopg
3 as SQLAlchemy's default PostgreSQL driver) that workers on many machines share."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from ..basics.errors import ConfigError

INSTALL_HINT = "rbmvae tune needs Optuna: pip install 'rbmvae[tune]'"
SCHEMA_ATTEMPTS = 5
URL_FORMS = "sqlite:///FILE or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def require_optuna():
    """The ``optuna`` module, or a one-line ConfigError saying what to install."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return optuna


def default_url(out: Path) -> str:
    """The embedded default: ``sqlite:///OUT/study.db``."""
    return f"sqlite:///{Path(out) / 'study.db'}"


def shown_url(url: str) -> str:
    """``url`` with its password hidden, for messages and reports."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return url


def _check_url(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"storage {url!r} is not a database URL; give {URL_FORMS}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        directory = Path(parsed.database).parent
        if not directory.is_dir():
            raise ConfigError(f"storage {shown_url(url)}: no directory {directory} for the file")


def _reason(error: Exception) -> str:
    """The first line of a database error, without SQLAlchemy's background link."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text[0] if text else type(error).__name__


def open_storage(url: str, heartbeat: int, grace: int, retries: int):
    """Optuna's RDB storage at ``url`` with heartbeats every ``heartbeat`` s: a trial whose worker
    stopped beating for ``grace`` s is failed by the next worker that looks, and its parameters
    are tried again up to ``retries`` times (Optuna's ``RetryHeartbeatStaleTrialCallback``). A
    URL that is not a database, a driver not installed or a server not reached: a one-line
    ConfigError."""
    optuna = require_optuna()
    _check_url(url)
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            return _rdb_storage(optuna, url, heartbeat, grace, retries)
        except Exception as error:  # noqa: BLE001 - sorted out below
            # workers starting together on a new database race to create its tables: the ones
            # that lose find them made, and open it again
            if attempt + 1 < SCHEMA_ATTEMPTS and any(
                text in str(error) for text in ("already exists", "UNIQUE constraint", "duplicate")
            ):
                time.sleep(0.2 * (attempt + 1))
                continue
            _refuse(url, error)


def _rdb_storage(optuna, url: str, heartbeat: int, grace: int, retries: int):
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():  # heartbeats and retries are "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storages = optuna.storages
        retry = storages.RetryHeartbeatStaleTrialCallback(retries) if retries else None
        return storages.RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=heartbeat,
            grace_period=grace,
            heartbeat_stale_trial_callback=retry,
        )


def _refuse(url: str, error: Exception):
    """A one-line ConfigError for an error opening the storage."""
    if isinstance(error, ModuleNotFoundError):
        raise ConfigError(
            f"storage {shown_url(url)}: its database driver is not installed ({error.name}); "
            "for postgresql:// install psycopg: pip install 'rbmvae[tune]'"
        ) from None
    raise ConfigError(f"storage {shown_url(url)}: cannot open it: {_reason(error)}") from None
