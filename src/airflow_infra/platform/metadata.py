"""Airflow's metadata database: `airflow_platform`, a database and role of its own on the managed local
PostgreSQL (not SQLite: the LocalExecutor needs a real one), marked as ours by a comment; its password
in the home's secret store like every other."""

from __future__ import annotations

from urllib.parse import quote

from ..errors import LocalServerError
from ..localserver.server import LocalServer

NAME = "airflow_platform"
MARK = "airflow-infra platform: Airflow's metadata database"
PASSWORD = "platform/metadata"


def ensure(server: LocalServer) -> str:
    """The SQLAlchemy URL of the metadata database, made (or its password set again) as needed."""
    from psycopg import sql

    if not server.has_cluster():
        raise LocalServerError(
            f"no local PostgreSQL in {server.home}: run `airflow-infra up` in a project (or "
            "`airflow-infra local start`) first"
        )
    server.start()
    password = server.secrets.get_or_create(PASSWORD)
    with server.connect() as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (NAME,)
        ).fetchone()
        if row is not None and row[0] != MARK:
            raise LocalServerError(
                f"the local PostgreSQL has a database {NAME!r} not made by airflow-infra; "
                "rename or drop it, then run `airflow-infra platform up` again"
            )
        role = sql.Identifier(NAME)
        verb = "ALTER" if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (NAME,)).fetchone() else "CREATE"
        conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password)))
        if row is None:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(role, role))
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(role, sql.Literal(MARK)))
    return f"postgresql+psycopg://{NAME}:{quote(password, safe='')}@127.0.0.1:{server.port}/{NAME}"


def migrated(server: LocalServer) -> bool:
    """Whether the metadata database holds Airflow's schema (alembic's version table, with a version)."""
    with server.connect(NAME) as conn:
        row = conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()
        return bool(row and row[0] and conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0])
