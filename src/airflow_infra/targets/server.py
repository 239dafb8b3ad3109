"""The server target: a bucket on any S3-compatible store, a database on an existing PostgreSQL.

The admin connection string comes from the environment variable that [database] admin_dsn_env
names, never from a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..outputs import shaped
from ..pgerrors import checked_dsn
from ..providers.base import Provider
from ..resources import Resource
from ..state.base import State
from .base import Target
from .bucket import S3Workfiles
from .database import DsnServer


class ServerTarget(Target):
    def __init__(self, config: Config, home: Path, *, lock_timeout: float = 0.0):
        super().__init__(config, home, lock_timeout=lock_timeout)
        env = config.database.admin_dsn_env
        self.bucket = S3Workfiles(config)
        self.server = DsnServer(
            self._dsn, name=env, label=f"the PostgreSQL server of {env}", pg_bindir=config.target.pg_bindir
        )
        self.database = self.server.database(config, self.secrets, lock_timeout=self.lock_timeout)

    def _dsn(self) -> str:
        env = self.config.database.admin_dsn_env
        dsn = os.environ.get(env)
        if not dsn:
            raise ConfigError(
                f"[database] admin_dsn_env: the environment variable {env} is not set; it must hold the "
                "admin connection string of the PostgreSQL server (e.g. postgresql://admin@db:5432/postgres)"
            )
        return checked_dsn(dsn, env)

    def desired(self) -> list[Resource]:
        return [*self.bucket.resources(), *self.database.resources()]

    def providers(self, lineage: str) -> dict[str, Provider]:
        self.database.admin().check_privileges()  # now, before anything is read or made
        owner = self.owner(lineage)
        return {p.type: p for p in (*self.bucket.providers(owner), *self.database.providers(owner))}

    def bucket_client(self) -> Any:
        return self.bucket.client()

    def close(self) -> None:
        self.database.close()

    def outputs(self, state: State, *, reveal: bool = True) -> dict[str, dict[str, Any]]:
        host, port = self.server.address()
        out = self.database.outputs(state, host=host, port=port, reveal=reveal)
        return shaped({**out, **self.bucket.outputs(state)} if out else {})
