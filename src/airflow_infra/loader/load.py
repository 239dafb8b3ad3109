"""A load: files into one table of the project's database, each file in one transaction with its ledger
row (ledger.py), so that a file is loaded once, whole, or not at all.

The fast path parses the file on this side with Arrow (multi-threaded, typed as the table's columns) and
sends PostgreSQL's binary COPY format (binary.py): the server parses nothing. Parsing and encoding run in
a thread of their own while the previous batch is being sent. Without pyarrow, or for a column type the
encoder lacks, a CSV file goes through PostgreSQL's own CSV parser (COPY ... FORMAT csv) as it is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..pgerrors import RowRefused, failing
from . import MODES, ledger
from .copy import _PROGRESS, _checksum, _copy_file
from .create import drop_if_empty, in_use
from .readers import FILE_ERRORS, CsvOptions, arrow_errors, format_of, unreadable
from .rejects import RejectFile, Rejects
from .results import FileResult, LoadResult
from .sources import SourceFile
from .table import Column, LoadError, columns, quoted, split_table


def _remove_earlier(conn: Any, file: SourceFile, table: str) -> None:
    """Append mode's reload: the rows each earlier load of the file inserted (its transaction's xmin)
    are deleted first, all or nothing (LoadError when some were changed or deleted since)."""
    from psycopg import sql

    for rows, xacts in ledger.earlier(conn, table, file.url):
        gone = conn.execute(
            sql.SQL(
                "DELETE FROM {} WHERE xmin = ANY(ARRAY(SELECT (x %% 4294967296)::text::xid FROM unnest(%s::bigint[]) x))"
            ).format(sql.Identifier(*split_table(table))),
            (xacts,),
        ).rowcount
        if gone not in (rows, 0):  # 0: they are gone already (the table emptied): nothing to remove
            raise LoadError(
                f"{file.url}: its earlier load's {rows:,} rows in {table} are to be replaced (--reload, or the "
                f"file changed), but {gone:,} of them are there unchanged (the others were updated or deleted "
                "since); nothing was changed: remove them yourself first, or load into a table of its own"
            )


def _merge(conn: Any, file: SourceFile, table: str, cols: list[Column], key: list[str], staged: str) -> None:
    """upsert: the staged rows into table, INSERT ... ON CONFLICT (key) DO UPDATE; a key the file holds
    twice is an error naming it (PostgreSQL would refuse the statement without saying which)."""
    from psycopg import sql

    keys = sql.SQL(", ").join(sql.Identifier(k) for k in key)
    twice = conn.execute(
        sql.SQL("SELECT {k} FROM {s} GROUP BY {k} HAVING count(*) > 1 LIMIT 1").format(
            k=keys, s=sql.Identifier(*split_table(staged))
        )
    ).fetchone()
    if twice is not None:
        raise LoadError(
            f"{file.url}: the key ({', '.join(key)}) = ({', '.join(map(str, twice))}) is in the file more than "
            "once; nothing of this file was loaded"
        )
    names = [c.name for c in cols]
    updates = [n for n in names if n not in key]
    conn.execute(
        sql.SQL("INSERT INTO {t} ({c}) SELECT {c} FROM {s} ON CONFLICT ({k}) DO {action}").format(
            t=sql.Identifier(*split_table(table)),
            c=sql.SQL(", ").join(sql.Identifier(n) for n in names),
            s=sql.Identifier(*split_table(staged)),
            k=keys,
            action=sql.SQL("NOTHING")
            if not updates
            else sql.SQL("UPDATE SET ")
            + sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in updates),
        )
    )


def _into(
    conn: Any,
    file: SourceFile,
    table: str,
    cols: list[Column],
    fmt: str,
    options: CsvOptions,
    *,
    fast: bool,
    key: list[str] | None,
    rejects: Rejects | None,
) -> tuple[int, int, str]:
    """The file into table (append and replace), or through a staging table merged on key (upsert)."""
    if key is None:
        return _copy_file(conn, file, table, cols, fmt, options, fast=fast, rejects=rejects)[:3]
    from psycopg import sql

    staged = "pg_temp.airflow_infra_staged"
    conn.execute("DROP TABLE IF EXISTS pg_temp.airflow_infra_staged")
    conn.execute(
        # its CHECK constraints too: a row that breaks one is refused (or set aside) in the COPY, with its line
        sql.SQL(
            "CREATE TEMP TABLE airflow_infra_staged (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) ON COMMIT DROP"
        ).format(sql.Identifier(*split_table(table)))
    )
    rows, size, checksum, given = _copy_file(conn, file, staged, cols, fmt, options, fast=fast, rejects=rejects)
    missing = [k for k in key if k not in {c.name for c in given}]
    if missing:
        raise LoadError(f"{file.url}: has no column {missing[0]!r}, which is upsert's key; nothing of it was loaded")
    _merge(conn, file, table, given, key, staged)  # a column the file lacks keeps each row's value
    return rows, size, checksum


def _one(
    connect: Callable[[], Any],
    file: SourceFile,
    table: str,
    cols: list[Column],
    fmt: str,
    options: CsvOptions,
    *,
    reload: bool,
    fast: bool,
    key: list[str] | None = None,
    max_errors: int = 0,
) -> FileResult:
    """append and upsert: the file in a transaction of its own, with its ledger row (and the rows set
    aside, max_errors at most)."""
    started = time.monotonic()
    rejects = Rejects(file.url, max_errors, options.encoding) if max_errors else None

    def failed(detail: str) -> LoadError:
        return LoadError(f"{file.url}: {detail}; nothing of this file was loaded")

    with connect() as conn:
        try:
            with failing(failed), conn.transaction():
                ledger.lock(conn, table, file.url)
                had = ledger.entries(conn, table, file.url)
                this = next((e for e in had if e.version == file.version), None)
                if this is None and had and not reload:  # a new version: the same bytes (touched, copied)?
                    same = [e for e in had if e.size == file.size]
                    this = next((e for e in same if e.checksum == _checksum(file)), None) if same else None
                    if this is not None:
                        ledger.revise(conn, table, file.url, this.version, file.version)
                if this is not None and not reload:
                    earlier = ledger.rejects_of(conn, table, file.url, file.version)
                    return FileResult(
                        file.url, this.rows, file.size, time.monotonic() - started, skipped=True, rejects=earlier
                    )
                if had and key is None:  # reloaded, or changed: its earlier rows go first, all or nothing
                    _remove_earlier(conn, file, table)
                elif had:
                    ledger.earlier(conn, table, file.url)  # upserted again: its rows are replaced in place
                rows, size, checksum = _into(conn, file, table, cols, fmt, options, fast=fast, key=key, rejects=rejects)
                ledger.record(
                    conn, table, file.url, file.version, size, checksum, rows, rejects.savepoints if rejects else None
                )
                if rejects is not None:
                    ledger.record_rejects(conn, table, file.url, file.version, rejects.kept())
        except FILE_ERRORS as exc:
            raise LoadError(f"{file.url}: {unreadable(exc)}; nothing of this file was loaded") from None
        except _retried() as exc:
            # PostgreSQL's own parser says where (the line, the column, the value), or sets the row aside
            if fast and (fmt == "csv" or rejects is not None):
                return _one(
                    connect, file, table, cols, fmt, options, reload=reload, fast=False, key=key, max_errors=max_errors
                )
            raise LoadError(f"{file.url}: {str(exc).splitlines()[0]}; nothing of this file was loaded") from None
    return FileResult(file.url, rows, size, time.monotonic() - started, rejects=rejects.kept() if rejects else ())


def _replace(
    connect: Callable[[], Any],
    files: list[SourceFile],
    table: str,
    cols: list[Column],
    formats: dict[str, str],
    options: CsvOptions,
    *,
    reload: bool,
    fast: bool,
    max_errors: int = 0,
) -> list[FileResult]:
    """replace: the table's rows become the files' rows in one transaction. Readers see the old rows
    until it commits, then the new ones (DELETE, not TRUNCATE: no reader's snapshot ever sees the table
    empty, and views on it keep working). Nothing is done when the ledger says the table holds exactly
    these files' versions already (reload: it is done anyway)."""
    from psycopg import sql

    def failed(detail: str) -> LoadError:
        return LoadError(f"{table}: {detail}; the table was left as it was")

    with connect() as conn:
        try:
            with failing(failed), conn.transaction():
                ledger.lock(conn, table, "")  # the whole table: one replace at a time
                held = ledger.held(conn, table)
                if not reload and held == {(f.url, f.version) for f in files}:
                    return [
                        FileResult(
                            f.url,
                            ledger.loaded(conn, table, f.url, f.version) or 0,
                            f.size,
                            0.0,
                            skipped=True,
                            rejects=ledger.rejects_of(conn, table, f.url, f.version),
                        )
                        for f in files
                    ]
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(*split_table(table))))
                ledger.forget_table(conn, table)
                out = []
                for f in files:
                    t0 = time.monotonic()
                    rejects = Rejects(f.url, max_errors, options.encoding) if max_errors else None
                    rows, size, checksum, _ = _copy_file(
                        conn, f, table, cols, formats[f.url], options, fast=fast, rejects=rejects
                    )
                    ledger.record(
                        conn, table, f.url, f.version, size, checksum, rows, rejects.savepoints if rejects else None
                    )
                    kept = rejects.kept() if rejects else ()
                    ledger.record_rejects(conn, table, f.url, f.version, kept)
                    out.append(FileResult(f.url, rows, size, time.monotonic() - t0, rejects=kept))
        except FILE_ERRORS as exc:
            raise LoadError(f"{table}: {unreadable(exc)}; the table was left as it was") from None
        except _retried() as exc:
            if fast:
                return _replace(
                    connect, files, table, cols, formats, options, reload=reload, fast=False, max_errors=max_errors
                )
            raise LoadError(f"{table}: {str(exc).splitlines()[0]}; the table was left as it was") from None
    return out


def _check_key(conn: Any, table: str, cols: list[Column], key: list[str]) -> None:
    """upsert's key: columns of the table with a unique index or constraint on exactly them."""
    names = {c.name for c in cols}
    unknown = [k for k in key if k not in names]
    if unknown:
        raise ConfigError(f"--key {unknown[0]!r}: not a column of {table}")
    found = conn.execute(
        """SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indpred IS NULL
           AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
                WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) = %s""",
        (quoted(conn, table), sorted(key)),
    ).fetchone()
    if found is None:
        raise ConfigError(
            f"--key {','.join(key)}: {table} has no unique index or constraint on exactly ({', '.join(key)}), which "
            f"upsert needs: CREATE UNIQUE INDEX ON {table} ({', '.join(key)})"
        )


def _retried() -> tuple[type[BaseException], ...]:
    """What the fast path may meet that PostgreSQL's own parser words better, or sets aside."""
    return (RowRefused, *arrow_errors())


def _fast() -> bool:
    try:
        import numpy  # noqa: F401
        import pyarrow
    except ImportError:
        return False
    # the system's allocator gives freed batches back; Arrow's own keeps them (tens of MB more at peak)
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    return True


def _check(table: str, mode: str, key: list[str] | None, max_errors: int, reject_file: object) -> None:
    """The arguments, before anything is read or written."""
    if mode not in MODES:
        raise ConfigError(f"--mode {mode!r}: one of {', '.join(MODES)}")
    schema = split_table(table)[0]
    if schema == ledger.SCHEMA:
        raise ConfigError(
            f"TABLE {table!r}: the schema {ledger.SCHEMA} holds the ledger; load into a table of your own"
        )
    if schema.startswith("pg_") or schema == "information_schema":
        raise ConfigError(f"TABLE {table!r}: a table of the project's own schemas, not of {schema}")
    if (mode == "upsert") != bool(key):
        raise ConfigError("--key: upsert's key (COL[,COL]), given with --mode upsert and only with it")
    if max_errors < 0:
        raise ConfigError(f"--max-errors {max_errors}: 0 or more (bad rows set aside per file)")
    if reject_file is not None and not max_errors:
        raise ConfigError("--reject-file: given with --max-errors N (how many bad rows a file may set aside)")


def load_files(
    connect: Callable[[], Any],
    files: list[SourceFile],
    table: str,
    *,
    format: str | None = None,
    mode: str = "append",
    reload: bool = False,
    jobs: int = 1,
    options: CsvOptions | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    key: list[str] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    max_errors: int = 0,
    reject_file: str | Path | None = None,
    create: bool = False,
    types: Mapping[str, str] | Iterable[str] = (),
) -> LoadResult:
    """Each file into table, in its own transaction with its ledger row, jobs files at a time (append,
    upsert on key); or all of them in one transaction in place of the table's rows (replace).
    max_errors: rows PostgreSQL refuses, per file, set aside (kept in the ledger, written to
    reject_file) rather than stopping the file. create: the table made from the first file's columns
    when it does not exist (types: COL -> TYPE over what the file says), dropped again when nothing
    could be loaded into it."""
    _check(table, mode, key, max_errors, reject_file)
    if types and not create:
        raise ConfigError("--type: given with --create (the types of the table it makes)")
    from .create import declared

    types = declared(types)  # their shape checked before anything is read or made
    options = options or CsvOptions()
    fast = _fast()
    started = time.monotonic()
    formats = {f.url: format_of(f, format) for f in files}  # every name judged before anything is loaded
    if not fast and any(v != "csv" for v in formats.values()):
        raise ConfigError("loading Parquet or JSON lines needs pyarrow: pip install 'airflow-infra[load]'")
    with connect() as conn:  # held for the whole load: it says the table is in use (create.py)
        ledger.ensure(conn)
        in_use(conn, table)
        made = create and _created(conn, files[0], table, formats[files[0].url], options, types, mode)
        try:
            cols = columns(conn, table)
            ledger.forget_stale(conn, table)
            if key:
                _check_key(conn, table, cols, key)
            result = _load(
                connect,
                files,
                table,
                cols,
                formats,
                options,
                mode,
                reload,
                jobs,
                on_file,
                key,
                on_bytes,
                max_errors,
                reject_file,
                fast,
            )
        except BaseException:
            if made:  # nothing of it stays but what committed: a table with no rows goes again
                drop_if_empty(conn, table)
            raise
    return LoadResult(table, result, time.monotonic() - started, created=made)


def _created(
    conn: Any,
    first: SourceFile,
    table: str,
    fmt: str,
    options: CsvOptions,
    types: Mapping[str, str] | Iterable[str],
    mode: str,
) -> bool:
    """--create: the table made from first's columns, unless it exists (True: made now)."""
    from .create import create, declared, definition

    if conn.execute("SELECT to_regclass(%s)", (quoted(conn, table),)).fetchone()[0] is not None:
        return False
    if mode == "upsert":
        raise ConfigError(
            f"--create --mode upsert: {table} does not exist, and a table made from a file has no unique key for "
            "upsert; make it yourself (with its key), or load with --mode append"
        )
    return create(conn, table, definition(first, fmt, options, declared(types)))


def _load(
    connect: Callable[[], Any],
    files: list[SourceFile],
    table: str,
    cols: list[Column],
    formats: dict[str, str],
    options: CsvOptions,
    mode: str,
    reload: bool,
    jobs: int,
    on_file: Callable[[FileResult], None] | None,
    key: list[str] | None,
    on_bytes: Callable[[int], None] | None,
    max_errors: int,
    reject_file: str | Path | None,
    fast: bool,
) -> list[FileResult]:
    _PROGRESS.on_bytes = on_bytes
    out = RejectFile(reject_file, [f.url for f in files]) if reject_file is not None else None

    def said(done: FileResult) -> FileResult:
        if out is not None:
            out.write(done.rejects)
        if on_file is not None:
            on_file(done)
        return done

    try:
        if mode == "replace":
            results = _replace(
                connect, files, table, cols, formats, options, reload=reload, fast=fast, max_errors=max_errors
            )
            return [said(done) for done in results]

        stop = threading.Event()

        def run(file: SourceFile) -> FileResult | None:
            if stop.is_set():  # a file failed: no other is started (those under way finish)
                return None
            _PROGRESS.on_bytes = on_bytes  # this worker thread's
            try:
                done = _one(
                    connect,
                    file,
                    table,
                    cols,
                    formats[file.url],
                    options,
                    reload=reload,
                    fast=fast,
                    key=key,
                    max_errors=max_errors,
                )
            except BaseException:
                stop.set()
                raise
            return said(done)

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(run, f) for f in files]
        failures = [e for e in (f.exception() for f in futures) if e is not None]
        if failures:
            loaded = sum(1 for f in futures if f.exception() is None and f.result() is not None)
            started = sum(1 for f in futures if f.exception() is not None or f.result() is not None)
            if len(files) == 1 or not isinstance(failures[0], LoadError):
                raise failures[0]
            raise LoadError(
                f"{failures[0]} ({loaded} other file(s) loaded, {len(files) - started} not started: run the load "
                "again for them)"
            ) from None
        return [r for r in (f.result() for f in futures) if r is not None]
    finally:
        if out is not None:
            out.close()  # the rows of every file that committed, whatever stopped the others
