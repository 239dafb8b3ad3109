"""The environment handed to every PostgreSQL program we run (the server, initdb, pg_dump, pg_restore),
and the passfile that carries their password.

Only what they need: never the caller's own environment, which may hold admin DSNs with passwords
or AWS keys that the server's account could then read from /proc/<pid>/environ.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


def minimal_env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH") or os.defpath, "LC_ALL": "C", "LANG": "C"}
    env.update(extra)
    return env


@contextmanager
def passfile(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """env with its PGPASSWORD moved into a passfile of this run's own (0600, removed after): a
    child's environment is readable in /proc/<pid>/environ and lands in crash reports; libpq reads
    PGPASSFILE instead (https://www.postgresql.org/docs/current/libpq-pgpass.html)."""
    password = env.get("PGPASSWORD")
    if password is None:
        yield env
        return
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    with tempfile.TemporaryDirectory(prefix="airflow-infra-pgpass-") as folder:  # 0700, ours alone
        path = os.path.join(folder, "pgpass")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"*:*:*:*:{escaped}\n")
        yield {**{k: v for k, v in env.items() if k != "PGPASSWORD"}, "PGPASSFILE": path}
