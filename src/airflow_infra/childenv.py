"""The environment handed to every PostgreSQL program we run (the server, initdb, pg_dump, pg_restore).

Only what they need: never the caller's own environment, which may hold admin DSNs with passwords
or AWS keys that the server's account could then read from /proc/<pid>/environ.
"""

from __future__ import annotations

import os


def minimal_env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH") or os.defpath, "LC_ALL": "C", "LANG": "C"}
    env.update(extra)
    return env
