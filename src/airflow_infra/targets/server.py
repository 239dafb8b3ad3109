"""The server target: a bucket on any S3-compatible store, a database on an existing PostgreSQL.

The admin connection string comes from the environment variable that [database] admin_dsn_env
names, never from a file; the PostgreSQL resources are the very ones of the local target.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..outputs import database_outputs, shaped
from ..pgerrors import checked_dsn, translated
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


class ServerTarget:
    def __init__(self, config: Config, home: Path):
        self.config = config
        self.home = home
        self.secrets = make_store(config, home)
        self._admin: PgAdmin | None = None
        self._s3 = None
        if len(config.bucket_name) > 63:
            raise ConfigError(f"[bucket] name: the default {config.bucket_name!r} is longer than 63 characters: "
                              "set [bucket] name")

    # -- the admin connection -------------------------------------------------------------
    def _dsn(self) -> str:
        env = self.config.database.admin_dsn_env
        dsn = os.environ.get(env)
        if not dsn:
            raise ConfigError(f"[database] admin_dsn_env: the environment variable {env} is not set; it must hold the "
                              "admin connection string of the PostgreSQL server (e.g. postgresql://admin@db:5432/postgres)")
        return checked_dsn(dsn, env)

    def _server_info(self) -> dict[str, Any]:
        from psycopg.conninfo import conninfo_to_dict

        dsn = self._dsn()
        try:
            info = conninfo_to_dict(dsn)
        except Exception:
            raise ConfigError(f"{self.config.database.admin_dsn_env}: not a valid PostgreSQL connection string") from None
        return {"host": str(info.get("host") or "localhost"), "port": int(info.get("port") or 5432)}

    def _connect(self, dbname: str) -> Any:
        import psycopg

        with translated(f"cannot connect to {self._server_label()} (database {dbname!r})", connecting=True):
            return psycopg.connect(self._dsn(), dbname=dbname, autocommit=True, connect_timeout=10)

    def _server_label(self) -> str:
        return f"the PostgreSQL server of {self.config.database.admin_dsn_env}"

    def _pool_key(self) -> str:
        import hashlib

        return "server:" + hashlib.sha256(self._dsn().encode()).hexdigest()  # the DSN holds a password

    def admin(self) -> PgAdmin:
        if self._admin is None:
            import shutil

            def bindir() -> Path:
                pg_dump = shutil.which("pg_dump")
                if pg_dump is None:
                    from ..local_server import find_bindir

                    return find_bindir(self.config.target.pg_bindir)
                return Path(pg_dump).parent

            def client_env() -> dict[str, str]:
                from psycopg.conninfo import conninfo_to_dict

                from ..childenv import minimal_env

                with translated(self.config.database.admin_dsn_env, error=ConfigError, connecting=True):
                    info = conninfo_to_dict(self._dsn())
                keys = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
                        "sslmode": "PGSSLMODE"}
                return minimal_env(**{keys[k]: str(v) for k, v in info.items() if k in keys})

            self._admin = PgAdmin(self._connect, server=self._pool_key(), project=project_label(self.config), secrets=self.secrets,
                                  bindir=bindir, client_env=client_env)
        return self._admin

    def s3(self) -> Any:
        # Made once (providers() calls this before any reader thread starts).
        if self._s3 is None:
            try:
                from ..aws_clients import s3_client
            except ImportError:
                raise ConfigError("[target] kind = \"server\" needs boto3: pip install 'airflow-infra[s3]'") from None

            c, b = self.config, self.config.bucket
            self._s3 = s3_client(region=c.bucket_region, endpoint_url=b.endpoint_url, addressing_style=b.addressing_style)
        return self._s3

    @property
    def _secret_prefix(self) -> str:
        s = self._server_info()
        return f"server/{s['host']}:{s['port']}"

    # -- what the project wants -------------------------------------------------------------
    def desired(self) -> list[Resource]:
        from ..providers.s3 import desired_settings

        c, b = self.config, self.config.bucket
        if b.prefix:
            bucket = Resource("s3_prefix", "workfiles", {"bucket": c.bucket_name, "prefix": b.prefix, "region": c.bucket_region})
        else:
            tags = {"ManagedBy": "airflow-infra", "Project": c.project.name, "Environment": c.project.environment}
            bucket = Resource("s3_bucket", "workfiles", {
                "name": c.bucket_name, "region": c.bucket_region,
                **desired_settings(sse=b.sse, kms_key_id=b.kms_key_id, noncurrent_days=b.noncurrent_days,
                                   tmp_expire_days=b.tmp_expire_days, tags=tags, tls_only=b.tls_only)})
        return [bucket, *database_resources(c.project.name, c.database.schemas, secret_prefix=self._secret_prefix,
                                                  database=c.database_name)]

    def providers(self) -> dict[str, Any]:
        from ..providers.s3 import S3BucketProvider, S3PrefixProvider

        admin = self.admin()
        admin.check_privileges()  # now, before anything is read or made
        self.s3()
        p, backup = self.config.project, self.config.bucket.backup
        owner: dict[str, Any] = {"project": p.name, "environment": p.environment, "backup_to": backup}
        ps = [S3BucketProvider(self.s3, **owner), S3PrefixProvider(self.s3, **owner),
              RoleProvider(admin), DatabaseProvider(admin), SchemaProvider(admin)]
        return {p.type: p for p in ps}

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()

    # -- what it gives ---------------------------------------------------------------------
    def outputs(self, state: State, *, reveal: bool = True) -> dict[str, dict[str, Any]]:
        c = self.config
        server = self._server_info()
        out = database_outputs(state, self.secrets, host=c.database.host or server["host"],
                               port=c.database.port or server["port"], reveal=reveal)
        return shaped(self._with_bucket_outputs(state, out))

    def _with_bucket_outputs(self, state: State, out: dict[str, Any]) -> dict[str, Any]:
        c = self.config
        bucket = state.resources.get("s3_bucket.workfiles") or state.resources.get("s3_prefix.workfiles")
        if out and bucket is not None:
            name = bucket.attrs.get("name") or bucket.attrs["bucket"]
            out["bucket_url"] = (f"s3://{name}/{bucket.attrs.get('prefix', '')}", False)
            out["bucket_name"] = (name, False)
            out["bucket_region"] = (c.bucket_region, False)
            endpoint = c.bucket.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            if endpoint:
                out["bucket_endpoint_url"] = (endpoint, False)
        return out
