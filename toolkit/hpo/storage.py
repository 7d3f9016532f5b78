"""Optuna storages for `toolkit hpo`: SQLite (one machine, one worker) or PostgreSQL (several
workers or nodes), with trial heartbeats so a killed worker's trial is failed and retried.

A server that cannot be reached, or refuses the password, is one line naming the host, after a
bounded connect timeout (CONNECT_TIMEOUT seconds unless the URL sets `?connect_timeout=`)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna

from toolkit.config.search_space import HpoConfig
from toolkit.errors import ToolkitError

CONNECT_TIMEOUT = 10  # seconds, for a server URL without its own connect_timeout
SQLITE_MANY_WORKERS = (
    "warning: --workers {n} with SQLite ({url}): Optuna advises against SQLite for parallel "
    "workers (one writer at a time, broken on NFS); use postgresql+psycopg://... for several"
)


class StorageError(ToolkitError):
    """The study's storage cannot be opened or reached."""


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def shown_url(url: str) -> str:
    """The URL with any password masked (error lines and logs never show it)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _server(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    except Exception:
        return "?"


def _engine_kwargs(url: str) -> dict[str, Any]:
    """Bounded connects for server databases; pre-ping so a dropped connection is replaced."""
    if is_sqlite(url) or "connect_timeout" in url:
        return {}
    if url.startswith(("postgresql", "mysql")):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}, "pool_pre_ping": True}
    return {}


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    text = " ".join(str(cause).split())  # libpq's messages span lines
    return (text or type(cause).__name__)[:300]


def open_storage_url(url: str, cfg: HpoConfig | None = None) -> optuna.storages.BaseStorage:
    """An RDB storage (with trial heartbeats when `cfg` is given); one line if it cannot open."""
    try:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the retry callback is "experimental"
            beats: dict[str, Any] = {}
            if cfg is not None:
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=cfg.max_retry)
                beats = {
                    "heartbeat_interval": cfg.heartbeat_interval,
                    "grace_period": cfg.grace_period,
                    "heartbeat_stale_trial_callback": retry,
                }
            return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url), **beats)
    except Exception as exc:
        name = type(getattr(exc, "orig", None) or exc).__name__
        if not is_sqlite(url) and name in ("OperationalError", "ConnectionTimeout"):
            raise StorageError(
                f"--storage {shown_url(url)}: cannot connect to the database server at "
                f"{_server(url)} ({_first_line(exc)})"
            ) from None
        raise StorageError(
            f"--storage {shown_url(url)}: cannot open it ({name}: {_first_line(exc)})"
        ) from None
