"""Where airflow-infra keeps machine-level things: AIRFLOW_INFRA_HOME.

It holds the local PostgreSQL server (postgres/), generated secrets (secrets.json, mode 0600),
local buckets (buckets/) and backups (backups/). Default: the platformdirs user data dir; for root,
/var/lib/airflow-infra, because the local PostgreSQL then runs as an unprivileged account that
could not traverse /root.
"""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    env = os.environ.get("AIRFLOW_INFRA_HOME")
    if env:
        return Path(env).expanduser().resolve()
    if os.geteuid() == 0:
        return Path("/var/lib/airflow-infra")
    import platformdirs

    return Path(platformdirs.user_data_dir("airflow-infra", appauthor=False))


def ensure_dir(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    return path


def existing_home() -> Path:
    """The home, which must exist: only `up`, `init` and `local start` make it, so that a mistyped
    AIRFLOW_INFRA_HOME is an error here rather than a new, empty world (and a new PostgreSQL)."""
    home = home_dir()
    if not home.is_dir():
        from .errors import ConfigError

        var = os.environ.get("AIRFLOW_INFRA_HOME")
        where = f"AIRFLOW_INFRA_HOME={var}" if var else f"the home {home} (AIRFLOW_INFRA_HOME is not set)"
        raise ConfigError(
            f"{where}: no such directory, so nothing was made there yet; `airflow-infra up`, `init` "
            "or `local start` makes it (or set AIRFLOW_INFRA_HOME to the home you meant)"
        )
    return home
