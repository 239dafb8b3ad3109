"""The embedded local target: a directory as bucket, a database on the managed local PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Config
from ..local_server import LocalServer
from ..outputs import database_outputs, shaped
from ..providers.localdir import LocalBucketProvider
from ..providers.postgres import (
    DatabaseProvider,
    PgAdmin,
    RoleProvider,
    SchemaProvider,
    database_resources,
    project_label,
)
from ..resources import Resource
from ..secretstores import make_store
from ..state.base import State


class LocalTarget:
    def __init__(self, config: Config, home: Path):
        self.config = config
        self.home = home
        self.server = LocalServer(home, pg_bindir=config.target.pg_bindir)
        self.secrets = make_store(config, home)
        self._admin: PgAdmin | None = None

    # -- what the project wants ------------------------------------------------------------
    def desired(self) -> list[Resource]:
        n = self.config.project.name
        bucket = self.config.bucket.path or str(self.home / "buckets" / n)
        return [
            Resource("local_bucket", "workfiles", {"path": str(Path(bucket).expanduser().resolve()), "private": True}),
            *database_resources(n, self.config.database.schemas, secret_prefix="local", database=self.config.database_name),
        ]

    # -- how to reach it -------------------------------------------------------------------
    def admin(self) -> PgAdmin:
        if self._admin is None:
            self._admin = PgAdmin(self.server.connect, server=f"local:{self.home}", project=project_label(self.config), secrets=self.secrets,
                                  bindir=lambda: self.server.bindir, client_env=self.server.client_env)
        return self._admin

    def providers(self) -> dict[str, Any]:
        admin = self.admin()
        ps = [LocalBucketProvider(self.config.project.name), RoleProvider(admin), DatabaseProvider(admin), SchemaProvider(admin)]
        return {p.type: p for p in ps}

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()

    # -- what it gives ---------------------------------------------------------------------
    def outputs(self, state: State, *, reveal: bool = True) -> dict[str, dict[str, Any]]:
        """Terraform's output shape: {name: {"value": ..., "sensitive": bool}}; empty before apply."""
        out = database_outputs(state, self.secrets, host="127.0.0.1", port=(self.server.info() or {}).get("port"),
                               reveal=reveal)
        bucket = state.resources.get("local_bucket.workfiles")
        if out and bucket is not None:
            out["bucket_url"] = (Path(bucket.attrs["path"]).as_uri(), False)
            out["bucket_path"] = (bucket.attrs["path"], False)
        return shaped(out)
