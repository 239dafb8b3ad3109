"""The table a load goes into: its columns as the catalog has them, matched to a file's by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, ProviderError
from .sources import SourceFile


class LoadError(ProviderError):
    """A file that could not be loaded: nothing of it was committed."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # pg_type.typname
    required: bool  # NOT NULL without a default: a file must have it


def sessions(
    *, host: str, port: int | str, dbname: str, user: str, password: str | None, tls: dict[str, str]
) -> Callable[[], Any]:
    """Sessions of a project's etl role (never an admin's), in autocommit: a load's transactions are its
    own, in UTC (a value without a zone means the same on every path). The password goes to libpq as a
    parameter, never into a string anyone prints."""
    params: dict[str, Any] = {
        "host": host,
        "port": port,
        "dbname": dbname,
        "user": user,
        "password": password,
        "connect_timeout": 10,
        "application_name": "airflow-infra load",
        "options": "-c TimeZone=UTC",
        **tls,
    }

    def connect() -> Any:
        import psycopg

        from ..pgerrors import translated

        with translated(f"cannot connect to {dbname} as {user}", connecting=True):
            return psycopg.connect(**params, autocommit=True)

    return connect


def split_table(table: str) -> tuple[str, str]:
    schema, dot, name = table.partition(".")
    if not dot or not schema or not name or "." in name:
        raise ConfigError(f"TABLE {table!r}: name it as schema.table")
    return schema, name


def quoted(conn: Any, table: str) -> str:
    """schema.table quoted, for to_regclass()."""
    from psycopg import sql

    return str(sql.Identifier(*split_table(table)).as_string(conn))


def as_owner(conn: Any) -> None:
    """The rest of the transaction as the database's owner role (the etl role is a member): what it
    makes, the reader's default privileges cover."""
    from psycopg import sql

    owner = conn.execute(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
    ).fetchone()[0]
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))


def columns(conn: Any, table: str) -> list[Column]:
    from psycopg import sql

    schema, name = split_table(table)
    rows = conn.execute(
        """SELECT a.attname, t.typname, a.attnotnull AND NOT a.atthasdef AND a.attidentity = ''
           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
           WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""",
        (sql.Identifier(schema, name).as_string(conn),),
    ).fetchall()
    if not rows:
        raise ConfigError(f"TABLE {table!r}: no such table in the project's database (or no access to it)")
    return [Column(n, t, bool(r)) for n, t, r in rows]


def _matched(file: SourceFile, names: list[str], cols: list[Column], table: str, ignore: bool = False) -> list[Column]:
    """The table's columns in the file's order; a file column the table lacks (unless ignored: left out),
    or a required column the file lacks, is an error naming it."""
    by_name = {c.name: c for c in cols}
    extra = [n for n in names if n not in by_name]
    if extra and ignore:
        names = [n for n in names if n in by_name]
    elif extra:
        raise LoadError(
            f"{file.url}: column {extra[0]!r} is not a column of {table} (--ignore-extra-columns leaves such "
            "columns out); nothing of it was loaded"
        )
    missing = [c.name for c in cols if c.required and c.name not in names]
    if missing:
        raise LoadError(f"{file.url}: {table}.{missing[0]} is NOT NULL and the file has no such column")
    return [by_name[n] for n in names]
