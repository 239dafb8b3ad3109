"""A secrets backend for Airflow 3 (`[secrets] backend = airflow_infra.airflow.secrets.AirflowInfraBackend`,
`backend_kwargs = {"registry": "/path/to/projects.csv"}`): every registered project's connections and
variables (the ids `airflow-infra connections` gives) read from the project's state and secret store at
lookup time. No password is copied into Airflow's database, and a `rotate` holds from the next lookup.

A project is found by its registry row's Config, else by an airflow-infra.toml in a repository on this
machine. Importable only where Airflow is (Airflow's processes, in the platform's environment).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from airflow.secrets.base_secrets import BaseSecretsBackend  # type: ignore[import-not-found]

log = logging.getLogger(__name__)


def project_dirs(registry: str | Path) -> list[Path]:
    from ..registry import config_dir, read
    from .bundles import local_directory

    out = []
    for e in read(registry):
        d = config_dir(registry, e) or local_directory(e.clone_url)
        if d is not None and (d / "airflow-infra.toml").is_file():
            out.append(d)
    return out


def lookup(registry: str | Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """({conn_id: Airflow's JSON form}, {variable: value}) of every registered project with outputs."""
    from ..airflow.connections import build
    from ..commands import load, outputs

    conns: dict[str, dict[str, Any]] = {}
    variables: dict[str, str] = {}
    for d in project_dirs(registry):
        try:
            project = load(d)
            found, values = build(project.config, outputs(project, reveal=True))
        except Exception as exc:  # one project's trouble never hides the others' connections
            log.warning("airflow-infra: %s: %s", d, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            continue
        conns.update({c.conn_id: c.fields(show_secrets=True) for c in found})
        variables.update(values)
    return conns, variables


class AirflowInfraBackend(BaseSecretsBackend):
    def __init__(self, registry: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.registry = registry

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        conn = lookup(self.registry)[0].get(conn_id)
        return json.dumps(conn) if conn is not None else None

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        return lookup(self.registry)[1].get(key)
