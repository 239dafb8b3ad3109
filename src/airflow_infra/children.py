"""The environment handed to every PostgreSQL program we run (the server, initdb, pg_dump, pg_restore),
and the passfile that carries their password.

Only what they need: never the caller's own environment, which may hold admin DSNs with passwords
or AWS keys that the server's account could then read from /proc/<pid>/environ.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def minimal_env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH") or os.defpath, "LC_ALL": "C", "LANG": "C"}
    env.update(extra)
    return env


@contextmanager
def passfile(env: dict[str, str]) -> Iterator[tuple[dict[str, str], tuple[int, ...]]]:
    """(env with its PGPASSWORD moved into a passfile, the descriptors the child must inherit): a
    child's environment is readable in /proc/<pid>/environ and lands in crash reports. The passfile
    is an anonymous file in memory (memfd, 0600) that the child reads as /proc/self/fd/N: nothing is
    on any disk, and it is gone with the last process that holds it, however that process ends."""
    password = env.get("PGPASSWORD")
    if password is None:
        yield env, ()
        return
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    fd = os.memfd_create("airflow-infra-pgpass", 0)  # no MFD_CLOEXEC: the child inherits it (pass_fds)
    try:
        os.fchmod(fd, 0o600)  # libpq ignores a passfile others may read
        os.write(fd, f"*:*:*:*:{escaped}\n".encode())
        yield {**{k: v for k, v in env.items() if k != "PGPASSWORD"}, "PGPASSFILE": f"/proc/self/fd/{fd}"}, (fd,)
    finally:
        os.close(fd)
