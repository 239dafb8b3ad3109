"""The ledger: which file (URL and version) went into which table, written in the same transaction as
the file's rows, so that a file is in a table once or not at all, whatever stops a load.

It lives in the project's database, in the schema airflow_infra, owned by the database's owner role
(the etl role, a member of it, writes to it). A transaction-scoped advisory lock per table and file
makes a second loader of the same file wait for the first, then find it recorded and skip it.

Each file goes in in a transaction of its own, whose id the ledger keeps: the rows it inserted carry it
as their xmin, which is how `--reload` finds and removes a file's earlier rows in append mode (and
refuses, changing nothing, when some of them were changed or removed since).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCHEMA = "airflow_infra"
TABLE = f"{SCHEMA}.loads"
_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {TABLE} (
    table_name text NOT NULL,
    table_oid oid NOT NULL,
    url text NOT NULL,
    version text NOT NULL,
    size bigint NOT NULL,
    checksum text NOT NULL,
    rows bigint NOT NULL,
    xact bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    loaded_by text NOT NULL DEFAULT current_user,
    PRIMARY KEY (table_name, url, version)
);
COMMENT ON TABLE {TABLE} IS 'airflow-infra load: each file loaded into each table, with its rows';
"""


def ensure(conn: Any) -> None:
    """The ledger, made by the database's owner role when missing (once, whoever else is at it)."""
    from psycopg import sql

    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('airflow-infra ledger', 0))")
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()[0]
        if exists:
            return
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()[0]
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))
        conn.execute(_DDL)


def lock(conn: Any, table: str, url: str) -> None:
    """Until the transaction ends: no other loader of url into table goes on."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{table}\n{url}",))


@dataclass(frozen=True)
class Entry:
    version: str
    size: int
    checksum: str
    rows: int
    xact: int


def entries(conn: Any, table: str, url: str) -> list[Entry]:
    """What the ledger has of url in table (as it is now: entries of a table dropped and made again
    under the same name were forgotten by forget_stale)."""
    rows = conn.execute(
        f"SELECT version, size, checksum, rows, xact FROM {TABLE} WHERE table_name = %s AND url = %s", (table, url)
    ).fetchall()
    return [Entry(v, int(sz), c, int(r), int(x)) for v, sz, c, r, x in rows]


def loaded(conn: Any, table: str, url: str, version: str) -> int | None:
    """The rows the file's version put into table, when it did."""
    return next((e.rows for e in entries(conn, table, url) if e.version == version), None)


def forget_stale(conn: Any, table: str) -> None:
    """Entries of an earlier table of this name (dropped, made again): its rows are gone with it."""
    conn.execute(
        f"DELETE FROM {TABLE} WHERE table_name = %s AND table_oid <> to_regclass(%s)::oid",
        (table, _regclass(conn, table)),
    )


def revise(conn: Any, table: str, url: str, old: str, new: str) -> None:
    """The same bytes under a new version (touched, copied again): the entry names the new one."""
    conn.execute(
        f"UPDATE {TABLE} SET version = %s WHERE table_name = %s AND url = %s AND version = %s", (new, table, url, old)
    )


def _regclass(conn: Any, table: str) -> str:
    from psycopg import sql

    schema, _, name = table.partition(".")
    return str(sql.Identifier(schema, name).as_string(conn))


def earlier(conn: Any, table: str, url: str) -> list[tuple[int, int]]:
    """(rows, transaction id) of each earlier load of url into table, forgotten (in the caller's
    transaction: kept again if it rolls back)."""
    rows = conn.execute(
        f"DELETE FROM {TABLE} WHERE table_name = %s AND url = %s RETURNING rows, xact", (table, url)
    ).fetchall()
    return [(int(r), int(x)) for r, x in rows]


def record(conn: Any, table: str, url: str, version: str, size: int, checksum: str, rows: int) -> None:
    conn.execute(
        f"INSERT INTO {TABLE} (table_name, table_oid, url, version, size, checksum, rows, xact) "
        "VALUES (%s, to_regclass(%s)::oid, %s, %s, %s, %s, %s, pg_current_xact_id()::text::bigint)",
        (table, _regclass(conn, table), url, version, size, checksum, rows),
    )


def held(conn: Any, table: str) -> set[tuple[str, str]]:
    """(url, version) of every file the ledger has in table."""
    rows = conn.execute(f"SELECT url, version FROM {TABLE} WHERE table_name = %s", (table,)).fetchall()
    return {(u, v) for u, v in rows}


def forget_table(conn: Any, table: str) -> None:
    """replace: the table's files are this load's alone from now on."""
    conn.execute(f"DELETE FROM {TABLE} WHERE table_name = %s", (table,))
