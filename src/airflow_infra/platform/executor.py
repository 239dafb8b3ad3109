"""The platform's executor: Airflow's LocalExecutor, whose workers (and so every task they fork) run without
the platform's keys. The scheduler needs the metadata database's URL, the Fernet key and the JWT secret;
a worker needs none of them — Airflow 3's task runner talks to the api-server with the token each
workload carries — so each worker drops them from its environment before it takes a task.

Airflow forks the workers from the scheduler, so what the scheduler holds in memory is copied into them:
this keeps the keys out of a task's environment (what a task hands to a child process, prints, or logs),
not out of reach of code that reads its own process's memory or this account's files. The README's
"Isolation between projects" says what one Airflow can and cannot keep apart.

Importable only where Airflow is: `[core] executor = airflow_infra.platform.executor.LocalExecutor`.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.executors import local_executor  # type: ignore[import-not-found]

# What the platform gives its components (airflowcfg.COMPONENT_KEYS) that no task may hold.
PLATFORM_KEYS = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
)

_airflows_worker = local_executor._run_worker


def _run_worker(*args: Any, **kwargs: Any) -> Any:
    """Airflow's worker loop, in a process that holds none of the platform's keys."""
    for key in PLATFORM_KEYS:
        os.environ.pop(key, None)
    try:  # the Fernet key, read once by the scheduler and cached: not in a worker's memory either
        from airflow.models.crypto import get_fernet  # type: ignore[import-not-found]

        get_fernet.cache_clear()
    except (ImportError, AttributeError):
        pass
    return _airflows_worker(*args, **kwargs)


class LocalExecutor(local_executor.LocalExecutor):
    def start(self) -> None:
        # _spawn_worker starts the module's _run_worker: ours, for this executor's workers
        local_executor._run_worker = _run_worker
        super().start()
