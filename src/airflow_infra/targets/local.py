"""The embedded local target: a directory as bucket, a database on the managed local PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Config
from ..local_server import LocalServer
from ..providers.localdir import LocalBucketProvider
from ..providers.postgres import DatabaseProvider, PgAdmin, RoleProvider, SchemaProvider
from ..resources import Resource
from ..secret_store import SecretStore
from ..state.base import State


class LocalTarget:
    def __init__(self, config: Config, home: Path):
        self.config = config
        self.home = home
        self.server = LocalServer(home, pg_bindir=config.target.pg_bindir)
        self.secrets = SecretStore(home)
        self._admin: PgAdmin | None = None

    # -- what the project wants ------------------------------------------------------------
    def desired(self) -> list[Resource]:
        n = self.config.project.name
        owner, etl, reader = f"{n}_owner", f"{n}_etl", f"{n}_reader"
        bucket = self.config.bucket.path or str(self.home / "buckets" / n)
        roles = ("postgres_role.owner", "postgres_role.etl", "postgres_role.reader")
        out = [
            Resource("local_bucket", "workfiles", {"path": str(Path(bucket).expanduser().resolve())}),
            Resource("postgres_role", "owner", {"name": owner, "login": False, "member_of": [], "password_ref": None}),
            Resource("postgres_role", "etl", {"name": etl, "login": True, "member_of": [owner],
                                              "password_ref": f"local/{etl}"}, ("postgres_role.owner",)),
            Resource("postgres_role", "reader", {"name": reader, "login": True, "member_of": [],
                                                 "password_ref": f"local/{reader}"}),
            Resource("postgres_database", "main", {"name": n, "owner": owner, "connect": sorted([etl, reader]),
                                                   "public_access": False}, roles),
        ]
        for s in self.config.database.schemas:
            out.append(Resource("postgres_schema", s, {"name": s, "database": n, "owner": owner, "readers": [reader],
                                                       "default_select": sorted([etl, owner])},
                                ("postgres_database.main", *roles)))
        return out

    # -- how to reach it -------------------------------------------------------------------
    def admin(self) -> PgAdmin:
        if self._admin is None:
            self._admin = PgAdmin(self.server.connect, project=self.config.project.name, secrets=self.secrets,
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
    def outputs(self, state: State) -> dict[str, dict]:
        """Terraform's output shape: {name: {"value": ..., "sensitive": bool}}; empty before apply."""
        res = state.resources
        if "postgres_database.main" not in res:
            return {}
        from urllib.parse import quote

        db = res["postgres_database.main"].attrs["name"]
        etl, reader = res.get("postgres_role.etl"), res.get("postgres_role.reader")
        info = self.server.info() or {}
        host, port = "127.0.0.1", info.get("port")
        out: dict[str, Any] = {
            "postgres_host": (host, False),
            "postgres_port": (port, False),
            "postgres_database": (db, False),
            "schemas": (sorted(r.attrs["name"] for r in res.values() if r.type == "postgres_schema"), False),
        }
        if "local_bucket.workfiles" in res:
            out["bucket_url"] = (Path(res["local_bucket.workfiles"].attrs["path"]).as_uri(), False)
            out["bucket_path"] = (res["local_bucket.workfiles"].attrs["path"], False)
        for label, role in (("etl", etl), ("reader", reader)):
            if role is not None:
                out[f"{label}_user"] = (role.attrs["name"], False)
                out[f"{label}_password"] = (self.secrets.get(role.attrs["password_ref"]), True)
        if etl is not None:
            pw = self.secrets.get(etl.attrs["password_ref"]) or ""
            out["postgres_uri"] = (f"postgresql://{quote(etl.attrs['name'])}:{quote(pw, safe='')}@{host}:{port}/{quote(db)}", True)
        return {k: {"value": v, "sensitive": s} for k, (v, s) in sorted(out.items())}
