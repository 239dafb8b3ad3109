"""The ledger: which file (URL and version) went into which table, written in the same transaction as
the file's rows, so that a file is in a table once or not at all, whatever stops a load.

It lives in the project's database, in the schema airflow_infra, owned by the database's owner role
(the etl role, a member of it, writes to it). A transaction-scoped advisory lock per table and file
makes a second loader of the same file wait for the first, then find it recorded and skip it.

Each file goes in in a transaction of its own, whose id the ledger keeps: the rows it inserted carry it
as their xmin, which is how `--reload` finds and removes a file's earlier rows in append mode (and
refuses, changing nothing, when some of them were changed or removed since). Rows that went in inside
savepoints (--max-errors) carry the savepoints' ids, which the ledger keeps too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .results import Reject
from .table import as_owner

SCHEMA = "airflow_infra"
TABLE = f"{SCHEMA}.loads"
REJECTS = f"{SCHEMA}.rejects"
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
ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS savepoints bigint[] NOT NULL DEFAULT '{{}}';
CREATE TABLE IF NOT EXISTS {REJECTS} (
    table_name text NOT NULL,
    url text NOT NULL,
    version text NOT NULL,
    file_row bigint NOT NULL,
    file_line bigint,
    column_name text,
    value text,
    reason text NOT NULL,
    record text NOT NULL,
    PRIMARY KEY (table_name, url, version, file_row),
    FOREIGN KEY (table_name, url, version) REFERENCES {TABLE} ON DELETE CASCADE ON UPDATE CASCADE
);
COMMENT ON TABLE {REJECTS} IS 'airflow-infra load --max-errors: the rows set aside, with their reasons';
"""


def ensure(conn: Any) -> None:
    """The ledger, made by the database's owner role when missing (once, whoever else is at it)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('airflow-infra ledger', 0))")
        exists = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL AND EXISTS (SELECT FROM pg_attribute WHERE attrelid = "
            "to_regclass(%s) AND attname = 'savepoints')",
            (REJECTS, TABLE),
        ).fetchone()[0]
        if exists:  # (a ledger made before rows were set aside gains what that needs)
            return
        as_owner(conn)
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


def earlier(conn: Any, table: str, url: str) -> list[tuple[int, list[int]]]:
    """(rows, the ids of the transaction and savepoints they went in by) of each earlier load of url into
    table, forgotten (in the caller's transaction: kept again if it rolls back)."""
    rows = conn.execute(
        f"DELETE FROM {TABLE} WHERE table_name = %s AND url = %s RETURNING rows, xact, savepoints", (table, url)
    ).fetchall()
    return [(int(r), [int(x), *map(int, s)]) for r, x, s in rows]


def record(
    conn: Any,
    table: str,
    url: str,
    version: str,
    size: int,
    checksum: str,
    rows: int,
    savepoints: list[int] | None = None,
) -> None:
    conn.execute(
        f"INSERT INTO {TABLE} (table_name, table_oid, url, version, size, checksum, rows, xact, savepoints) "
        "VALUES (%s, to_regclass(%s)::oid, %s, %s, %s, %s, %s, pg_current_xact_id()::text::bigint, %s)",
        (table, _regclass(conn, table), url, version, size, checksum, rows, savepoints or []),
    )


def record_rejects(conn: Any, table: str, url: str, version: str, rejects: tuple[Reject, ...]) -> None:
    """The file's rows set aside, beside its entry (and gone with it: forgotten, reloaded, replaced)."""
    if not rejects:
        return
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {REJECTS} (table_name, url, version, file_row, file_line, column_name, value, reason, record) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(table, url, version, r.row, r.line, r.column, r.value, r.reason, r.record) for r in rejects],
        )


def rejects_of(conn: Any, table: str, url: str, version: str) -> tuple[Reject, ...]:
    rows = conn.execute(
        f"SELECT file_row, file_line, column_name, value, reason, record FROM {REJECTS} "
        "WHERE table_name = %s AND url = %s AND version = %s ORDER BY file_row",
        (table, url, version),
    ).fetchall()
    return tuple(Reject(url, int(r), None if ln is None else int(ln), c, v, why, rec) for r, ln, c, v, why, rec in rows)


def held(conn: Any, table: str) -> set[tuple[str, str]]:
    """(url, version) of every file the ledger has in table."""
    rows = conn.execute(f"SELECT url, version FROM {TABLE} WHERE table_name = %s", (table,)).fetchall()
    return {(u, v) for u, v in rows}


def forget_table(conn: Any, table: str) -> None:
    """replace: the table's files are this load's alone from now on."""
    conn.execute(f"DELETE FROM {TABLE} WHERE table_name = %s", (table,))
