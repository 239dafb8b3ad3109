"""A secrets backend for Airflow 3 (`[secrets] backend = airflow_infra.airflow.secrets.AirflowInfraBackend`,
`backend_kwargs = {"registry": "/path/to/projects.csv"}`): every registered project's connections and
variables (the ids `airflow-infra connections` gives) read from the project's state and secret store at
lookup time (catalog.py). No password is copied into Airflow's database.

Names are the projects': a name one project claims is served under that project only, a name two claim
to nobody. Where the backend can tell which DAG asks — in a task, by the task's own bundle; while a DAG
file is parsed, by the file on the call stack — a project's names go to that project's DAGs only, and
another project's are refused with AirflowSecretsBackendAccessDenied (so Airflow does not go on to ask
the api-server, which would serve them). Where it cannot (the api-server answering the execution API,
a trigger), it serves every project's names: Airflow gives every task every connection its servers can
read, and tasks run as the platform's own account. See the README's "Isolation between projects".

Importable only where Airflow is (Airflow's processes, in the platform's environment).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from airflow.secrets.base_secrets import BaseSecretsBackend  # type: ignore[import-not-found]

from .catalog import Catalog

try:  # Airflow >= 3.2: an answer the dispatcher does not look past
    from airflow.sdk.exceptions import AirflowSecretsBackendAccessDenied as _Denied  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - older Airflow: the task sees a failed lookup
    _Denied = PermissionError

NO_PROJECT = ""  # a DAG that is not a registered project's: it gets no project's names


def _airflow_paths() -> tuple[Path, Path | None]:
    """(where git bundles are cloned, the DAG folder `dags sync` publishes into), as this Airflow says."""
    try:
        from airflow.configuration import conf  # type: ignore[import-not-found]

        storage = conf.get("dag_processor", "dag_bundle_storage_path", fallback=None)
        dags = conf.get("core", "dags_folder", fallback=None)
    except Exception:
        storage = dags = None
    return (
        Path(storage) if storage else Path(tempfile.gettempdir(), "airflow", "dag_bundles"),
        Path(os.path.realpath(dags)) if dags else None,
    )


def _in_a_dag_process() -> bool:
    """A task, a DAG file's parse or a trigger: a process that talks to its supervisor, runs DAG code."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


def _task_bundle() -> str | None:
    """The bundle of the task instance running in this process, when there is one."""
    try:
        from airflow.sdk.definitions._internal.contextmanager import _CURRENT_CONTEXT  # type: ignore[import-not-found]

        ti = _CURRENT_CONTEXT[-1]["ti"] if _CURRENT_CONTEXT else None
        return str(ti.bundle_instance.name) if ti is not None else None
    except Exception:
        return None


def _roots(catalog: Catalog, read: tuple) -> list[tuple[Path, str]]:
    """(folder, project) of every place a project's DAG files are, longest first: its working tree, its
    git bundle's clones, its revisions published by `dags sync` into Airflow's own DAG folder."""
    storage, dags = _airflow_paths()
    out = []
    for name, trees in catalog.roots(read).items():
        out += [(t, name) for t in trees] + [(storage / name, name)]
        if dags is not None:
            out.append((dags / ".airflow-infra" / "revisions" / name, name))
    return sorted(out, key=lambda r: len(r[0].parts), reverse=True)


def _project_of(path: str, roots: list[tuple[Path, str]]) -> str | None:
    """The project whose DAG files hold path: the innermost of the folders that hold it (a project's
    working tree may hold anything, another project's name in a folder's name included)."""
    try:
        real = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return None
    return next((name for root, name in roots if real.is_relative_to(root)), None)


def asking_project(catalog: Catalog, read: tuple) -> str | None:
    """Which project's DAG asks: a project's name, NO_PROJECT (a DAG of no project), or None (not known:
    a server component, a trigger)."""
    if not _in_a_dag_process():
        return None
    roots = _roots(catalog, read)
    bundle = _task_bundle()
    if bundle in {name for _, name in roots}:
        return bundle
    frame = sys._getframe(1)
    while frame is not None:  # the innermost DAG file on the stack: the one asking
        found = _project_of(frame.f_code.co_filename, roots)
        if found is not None:
            return found
        frame = frame.f_back  # type: ignore[assignment]
    return NO_PROJECT if bundle is not None else None


class AirflowInfraBackend(BaseSecretsBackend):
    def __init__(self, registry: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.catalog = Catalog(registry)

    def _check(self, kind: str, name: str, owner: str, read: tuple) -> None:
        asker = asking_project(self.catalog, read)
        if asker is not None and asker != owner:
            who = f"project {asker}" if asker else "a DAG of no registered project"
            raise _Denied(f"{kind} {name!r} belongs to project {owner}: {who} may not read it")

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        from ..claims import CONNECTION

        read = self.catalog.read()  # one read of the registry and configs for the whole lookup
        owner = self.catalog.owner(CONNECTION, conn_id, read)  # checked before anything of the owner's is read
        if owner is None:
            return None
        self._check("connection", conn_id, owner, read)
        found = self.catalog.connection(conn_id, read)
        return json.dumps(found[1]) if found is not None else None

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        from ..claims import VARIABLE

        read = self.catalog.read()
        owner = self.catalog.owner(VARIABLE, key, read)
        if owner is None:
            return None
        self._check("variable", key, owner, read)
        found = self.catalog.variable(key, read)
        return found[1] if found is not None else None
