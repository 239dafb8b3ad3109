"""The project's Airflow connections and variables, made from its outputs.

- `<name>_postgres` (or [airflow] postgres_conn_id): conn_type postgres, the etl user;
- `<name>_workbucket` (or [airflow] bucket_conn_id): on S3 an `aws` connection with region_name,
  endpoint_url (when not AWS) and service_config.s3.bucket_name; on the local target an `fs`
  connection with extra.path;
- the variable `<name>_workfiles_url`: a URL ObjectStoragePath accepts (s3://<conn_id>@<bucket>/<prefix>
  or file:///...).
Rendered as Airflow reads them: env (AIRFLOW_CONN_<ID>='<json>' lines to source), json and yaml (what
`airflow connections import` takes), uri (conn_id=URI lines: Airflow's .env import format).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from ..secretstores import MASK


@dataclass(frozen=True)
class Connection:
    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    extra: dict | None = None

    def fields(self, *, show_secrets: bool) -> dict[str, Any]:
        d = {
            "conn_type": self.conn_type,
            "host": self.host,
            "port": self.port,
            "schema": self.schema,
            "login": self.login,
            "password": self.password if show_secrets or self.password is None else MASK,
            "extra": self.extra,
        }
        return {k: v for k, v in d.items() if v is not None}

    def uri(self, *, show_secrets: bool) -> str:
        if self.conn_type in ("fs", "aws") and not self.host:
            return f"{self.conn_type}://?{urlencode({'__extra__': json.dumps(self.extra or {})})}"
        auth = ""
        if self.login:
            pw = self.password if show_secrets or self.password is None else MASK
            auth = quote(self.login, safe="") + (":" + quote(pw, safe="") if pw else "") + "@"
        query = f"?{urlencode(self.extra)}" if self.extra else ""
        return f"{self.conn_type}://{auth}{self.host or ''}{':' + str(self.port) if self.port else ''}/{quote(self.schema or '')}{query}"


def connection_ids(config) -> tuple[str, str]:
    n = config.project.name
    return config.airflow.postgres_conn_id or f"{n}_postgres", config.airflow.bucket_conn_id or f"{n}_workbucket"


def build(config, outputs: dict[str, dict]) -> tuple[list[Connection], dict[str, str]]:
    """Connections and variables from the outputs (with secrets revealed)."""
    o = {k: v["value"] for k, v in outputs.items()}
    if "postgres_database" not in o:
        return [], {}
    pg_id, bucket_id = connection_ids(config)
    conns = []
    if "etl_user" in o:
        conns.append(
            Connection(
                pg_id,
                "postgres",
                host=o["postgres_host"],
                port=o["postgres_port"],
                schema=o["postgres_database"],
                login=o["etl_user"],
                password=o.get("etl_password") or MASK,  # not revealed: shown masked
                extra={k: o[f"postgres_{k}"] for k in ("sslmode", "sslrootcert") if o.get(f"postgres_{k}")} or None,
            )
        )
    else:  # adopted by import-terraform: the etl role comes with the first apply
        import logging

        logging.getLogger(__name__).warning(
            f"connection {pg_id}: the project's etl role does not exist yet; the first `airflow-infra apply` makes it"
        )
    variables: dict[str, str] = {}
    name = config.project.name
    if "bucket_path" in o:  # the local target: a directory
        conns.append(Connection(bucket_id, "fs", extra={"path": o["bucket_path"]}))
        variables[f"{name}_workfiles_url"] = o["bucket_url"]
    elif "bucket_name" in o:
        extra: dict[str, Any] = {
            "region_name": o["bucket_region"],
            "service_config": {"s3": {"bucket_name": o["bucket_name"]}},
        }
        if o.get("bucket_endpoint_url"):
            extra["endpoint_url"] = o["bucket_endpoint_url"]
        conns.append(Connection(bucket_id, "aws", extra=extra))
        prefix = o["bucket_url"].split("/", 3)[3] if o["bucket_url"].count("/") >= 3 else ""
        variables[f"{name}_workfiles_url"] = f"s3://{bucket_id}@{o['bucket_name']}/{prefix}"
    return conns, variables


def render(conns: list[Connection], variables: dict[str, str], fmt: str, *, show_secrets: bool) -> str:
    if fmt == "json":
        return (
            json.dumps({c.conn_id: c.fields(show_secrets=show_secrets) for c in conns}, indent=2, sort_keys=True) + "\n"
        )
    if fmt == "yaml":
        lines = []
        for c in conns:  # a small, fixed shape: YAML written by hand is JSON-compatible values under keys
            lines.append(f"{c.conn_id}:")
            lines += [f"  {k}: {json.dumps(v, sort_keys=True)}" for k, v in c.fields(show_secrets=show_secrets).items()]
        return "\n".join(lines) + "\n"
    if fmt == "uri":
        return "".join(f"{c.conn_id}={c.uri(show_secrets=show_secrets)}\n" for c in conns)
    # env: ready to source; Airflow reads AIRFLOW_CONN_* (JSON) and AIRFLOW_VAR_* from the environment
    out = []
    for c in conns:
        if not c.conn_id.replace("_", "").isalnum():
            from ..errors import ConfigError

            raise ConfigError(
                f"connection id {c.conn_id!r} cannot be an environment variable's name "
                "(Airflow looks up AIRFLOW_CONN_<ID>): use --format json or yaml and `airflow connections import`"
            )
        doc = json.dumps(c.fields(show_secrets=show_secrets), sort_keys=True).replace("'", "'\\''")
        out.append(f"AIRFLOW_CONN_{c.conn_id.upper().replace('-', '_')}='{doc}'")
    out += [f"AIRFLOW_VAR_{k.upper()}='{v}'" for k, v in sorted(variables.items())]
    return "\n".join(out) + "\n"
