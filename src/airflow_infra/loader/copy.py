"""One file's rows into a table, in the caller's transaction: binary COPY of what Arrow parsed (encoded
in a thread of its own while the previous batch is sent), or CSV for the server's own parser."""

from __future__ import annotations

import itertools
import queue
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

from ..pgerrors import RowRefused, refused_rows
from .jsonl import json_as_csv, json_records
from .readers import CsvOptions, csv_header, decompressed, skip_bom
from .rejects import Record, Rejects, arrow_records, csv_records
from .sources import Readable, SourceFile, chunks
from .table import Column, LoadError, _matched, split_table

_PROGRESS: threading.local = threading.local()  # the running load's byte callback, per thread


class _Counted:
    """A file's bytes as stored, counted and checksummed as they are read (and reported to the load's
    on_bytes, for a progress bar)."""

    def __init__(self, raw: Readable):
        self._raw, self.bytes, self.crc = raw, 0, 0
        self._report: Callable[[int], None] | None = getattr(_PROGRESS, "on_bytes", None)

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.bytes += len(data)
        self.crc = zlib.crc32(data, self.crc)
        if self._report is not None:
            self._report(len(data))
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()

    @property
    def closed(self) -> bool:
        return bool(getattr(self._raw, "closed", False))


def _pipelined(produce: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """produce's items, made in a thread of their own while the caller sends the previous ones."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in produce:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # a thread's edge: handed to the caller, raised there
            q.put(("error", exc))

    t = threading.Thread(target=run, name="airflow-infra-load-encode", daemon=True)
    t.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


def _copy_binary(cur: Any, table: str, cols: list[Column], batches: Iterator[Any]) -> int:
    from psycopg import sql

    from . import binary

    types = [c.type for c in cols]
    order = binary.layout(types)  # the rows' layout: the COPY names its columns in that order
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
        sql.Identifier(*split_table(table)), sql.SQL(", ").join(sql.Identifier(cols[i].name) for i in order)
    )
    rows = 0

    def encoded() -> Iterator[tuple[int, Any]]:
        for batch in batches:
            yield batch.num_rows, binary.encode(batch, types)

    with cur.copy(stmt) as copy:
        copy.write(binary.HEADER)
        for n, data in _pipelined(encoded()):
            copy.write(data)
            rows += n
        copy.write(binary.TRAILER)
    return rows


def _encodable(cols: list[Column]) -> bool:
    from .binary import encodable  # numpy and pyarrow: only where the fast path is taken

    return encodable([c.type for c in cols])


def _copy_arrow(cur: Any, table: str, cols: list[Column], batches: Iterator[Any]) -> int:
    """Arrow batches into table: binary COPY where every column's type has an encoder, else written as
    CSV by Arrow for PostgreSQL's parser (numeric, uuid, arrays, ...: the server knows them best)."""
    from .binary import encodable

    if encodable([c.type for c in cols]):
        return _copy_binary(cur, table, cols, batches)

    def as_csv() -> Iterator[bytes]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        for batch in batches:
            sink = pa.BufferOutputStream()
            pacsv.write_csv(_as_text(batch), sink, pacsv.WriteOptions(include_header=False))
            yield sink.getvalue().to_pybytes()

    return _copy_csv(cur, table, cols, _pipelined(as_csv()), CsvOptions())


def _as_text(batch: Any) -> Any:
    """What Arrow writes as CSV the way PostgreSQL reads it: a duration as an interval (Arrow writes the
    bare number of its unit, which PostgreSQL would read as seconds); lists, structs and maps as JSON
    (which Arrow's CSV writer cannot write; in Python, value by value: nested columns are rare)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .binary import micro

    columns = []
    for col in batch.columns:
        if pa.types.is_duration(col.type):
            us = col.cast(pa.duration("us")).cast(pa.int64()).cast(pa.string())
            col = pc.binary_join_element_wise(us, pa.scalar("microseconds"), " ")
        elif pa.types.is_nested(col.type):
            col = pa.array([None if v is None else _json(v) for v in col.to_pylist()], pa.string())
        elif pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):  # bytea's hex input
            col = pa.array([None if v is None else "\\x" + v.hex() for v in col.to_pylist()], pa.string())
        columns.append(micro(col))
    return pa.record_batch(columns, names=batch.schema.names)


def _json(v: Any) -> str:
    import json

    def plain(x: Any) -> Any:
        if isinstance(x, list) and x and all(isinstance(i, tuple) and len(i) == 2 for i in x):
            return {str(k): plain(i) for k, i in x}  # a map's entries
        if isinstance(x, list):
            return [plain(i) for i in x]
        if isinstance(x, dict):
            return {k: plain(i) for k, i in x.items()}
        return x

    return json.dumps(plain(v), default=str, ensure_ascii=False)


def _copy_csv(
    cur: Any, table: str, cols: list[Column], body: Iterator[bytes], options: CsvOptions, *, header: bool = False
) -> int:
    """CSV for PostgreSQL's own parser; header: body starts with the header line (skipped by the server,
    and counted, so that the lines its errors name are the file's)."""
    from psycopg import sql

    stmt = sql.SQL(
        "COPY {} ({}) FROM STDIN (FORMAT csv, DELIMITER {}, QUOTE {}, NULL {}, ENCODING {}, HEADER {})"
    ).format(
        sql.Identifier(*split_table(table)),
        sql.SQL(", ").join(sql.Identifier(c.name) for c in cols),
        sql.Literal(options.delimiter),
        sql.Literal(options.quote),
        sql.Literal(options.null),
        sql.Literal(options.server_encoding),
        sql.SQL("true" if header else "false"),
    )
    with cur.copy(stmt) as copy:
        for block in body:
            copy.write(block)
    return int(cur.rowcount)


_CHUNK = 16384  # records per savepoint, at most, when rows may be set aside
_CHUNK_BYTES = 8 << 20


def _copy_rejecting(
    conn: Any, table: str, cols: list[Column], records: Iterator[Record], options: CsvOptions, rejects: Rejects
) -> int:
    """records into table, each try in a savepoint. A row is set aside only when PostgreSQL refuses it
    alone: after a refusal the rows before the line it names are tried, then that row alone (the line
    is a guess where records span lines: a wrong one costs a try, never a good row). Tries shrink after
    a refusal and grow again after each success."""
    from collections import deque

    pending: deque[Record] = deque()
    plan: list[int] = []  # the next tries' sizes, after a refusal
    size, rows, more = _CHUNK, 0, True

    conn.execute("CREATE TEMP TABLE IF NOT EXISTS airflow_infra_savepoints (x int)")

    def send(part: list[Record]) -> None:
        with refused_rows(), conn.transaction(), conn.cursor() as cur:
            took = _copy_csv(cur, table, cols, iter([b"".join(r.data for r in part)]), options)
            if took != len(part):  # (records are split as PostgreSQL splits them: never, unless a bug)
                raise LoadError(f"{table}: PostgreSQL took {took} rows of {len(part)} sent; nothing was loaded")
            # the rows carry the savepoint's id, not the transaction's: the ledger keeps it for --reload
            mark = cur.execute("INSERT INTO airflow_infra_savepoints VALUES (1) RETURNING xmin::text::bigint")
            rejects.savepoints.append(int(mark.fetchone()[0]))

    while True:
        held = sum(len(r.data) for r in pending)
        while more and len(pending) < size and held < _CHUNK_BYTES:
            r = next(records, None)
            if r is None:
                more = False
            elif r.problem is not None:
                rejects.add(r, None, None, r.problem)
            else:
                pending.append(r)
                held += len(r.data)
        if not pending:
            return rows
        part = [pending[i] for i in range(min(plan.pop(0) if plan else size, len(pending)))]
        try:
            send(part)
        except RowRefused as refused:
            if len(part) == 1:  # refused alone: set aside, with what PostgreSQL said of it
                rejects.add(part[0], refused.column, refused.value, refused.reason)
                pending.popleft()
                continue
            i = _refused_at(part, refused.line)
            plan = [i, 1] if i else [1]
            size = max(1, size // 4)
            continue
        rows += len(part)
        for _ in part:
            pending.popleft()
        if not plan:
            size = min(_CHUNK, size * 2)


def _refused_at(part: list[Record], line: int) -> int:
    """Which of part a COPY's error line most likely names. PostgreSQL counts a line break inside
    quotes as a line once it knows the data's line ending, that is from the second record on (and
    only the kind of break that ends its lines: \\n, or \\r of \\r\\n)."""
    crlf = part[0].data.endswith(b"\r\n")
    at = 0
    for i, r in enumerate(part):
        inside = r.data[: -2 if crlf else -1].count(b"\r" if crlf else b"\n") if i else 0
        at += 1 + inside
        if line <= at:
            return i
    return len(part) // 2  # past the end: halve


def _rejecting(
    conn: Any, file: SourceFile, table: str, cols: list[Column], fmt: str, options: CsvOptions, rejects: Rejects
) -> tuple[int, int, str, list[Column]]:
    """_copy_file's slow path: (rows, bytes as stored, checksum, the columns the file gave)."""
    with ExitStack() as stack:
        raw = _Counted(file.open())
        stack.callback(raw.close)
        stream = stack.enter_context(decompressed(file, raw)) if fmt != "parquet" else None
        if fmt == "csv":
            skip_bom(stream, options)
        rows, matched = _records_into(conn, file, stream, table, cols, fmt, options, rejects)
        for _ in chunks(raw):  # the checksum of the file as stored (Parquet: read from its copy)
            pass
        return rows, raw.bytes, f"crc32:{raw.crc:08x}", matched


def _records_into(
    conn: Any,
    file: SourceFile,
    stream: Any,
    table: str,
    cols: list[Column],
    fmt: str,
    options: CsvOptions,
    rejects: Rejects,
) -> tuple[int, list[Column]]:
    """The file's rows through PostgreSQL's parser, one record at a time where it refuses one (the
    fast path could not load the file whole): (rows, the columns the file gave)."""
    if fmt == "parquet":
        from .readers import parquet_batches, parquet_columns, spooled

        names, pf = parquet_columns(spooled(file))
        matched = _matched(file, names, cols, table, options.ignore_extra)
        records = arrow_records(parquet_batches(pf, [c.name for c in matched]))
        return _copy_rejecting(conn, table, matched, records, CsvOptions(), rejects), matched
    if fmt == "jsonl":
        names, records = json_records(
            file, stream, lambda n: _matched(file, n, cols, table), LoadError, lenient=True, known=_known(cols, options)
        )
        matched = _matched(file, names, cols, table)
        return _copy_rejecting(conn, table, matched, records, CsvOptions(), rejects), matched
    first = 1
    if options.header:
        names, head = csv_header(stream, options)
        first += head.count(b"\n")
    else:
        names = [c.name for c in cols]
    matched = _matched(file, names, cols, table, options.ignore_extra)
    if len(matched) < len(names):  # columns left out: Arrow reads the rest as text, counted by row
        records = arrow_records(_as_strings(stream, names, matched, options))
        return _copy_rejecting(conn, table, matched, records, CsvOptions(), rejects), matched
    records = csv_records(stream, options.quote, line=first, url=file.url)
    return _copy_rejecting(conn, table, matched, records, options, rejects), matched


def _known(cols: list[Column], options: CsvOptions) -> set[str] | None:
    """--ignore-extra-columns: the names kept (the table's), else None (all of them, checked)."""
    return {c.name for c in cols} if options.ignore_extra else None


def _as_strings(stream: Any, names: list[str], matched: list[Column], options: CsvOptions) -> Iterator[Any]:
    """A CSV's kept columns as Arrow text, exactly as written (NULL and "" told apart), for PostgreSQL to
    parse: the path for a file with columns left out whose types the binary encoder lacks."""
    try:
        import pyarrow as pa
    except ImportError:
        raise LoadError("--ignore-extra-columns on a CSV needs pyarrow: pip install 'airflow-infra[load]'") from None
    from .readers import arrow_csv

    return arrow_csv(stream, names, {c.name: pa.large_string() for c in matched}, options)


def _jsonl_arrow(
    cur: Any, file: SourceFile, stream: Any, table: str, cols: list[Column], options: CsvOptions
) -> tuple[int, list[Column]]:
    """JSON lines parsed by Arrow, in batches: (rows, the columns the file gave)."""
    from .binary import ARROW_TYPES
    from .readers import jsonl_batches

    batches = jsonl_batches(stream, {c.name: ARROW_TYPES[c.type] for c in cols if c.type in ARROW_TYPES})
    first = next(batches, None)
    if first is None:
        return 0, []
    known = _known(cols, options)
    # a column no line of the first batch has is left to its default, as a CSV without it would be
    names = [
        n for n in first.schema.names if first.column(n).null_count < first.num_rows and (known is None or n in known)
    ]
    matched = _matched(file, names, cols, table)

    def all_batches() -> Iterator[Any]:
        import pyarrow as pa

        yield first.select(names)
        for b in batches:  # each batch in the first one's columns; a key first met later: an error
            later = [
                n
                for n in b.schema.names
                if n not in names and b.column(n).null_count < b.num_rows and (known is None or n in known)
            ]
            _matched(file, [*names, *later], cols, table)
            if later:
                raise LoadError(
                    f"{file.url}: key {later[0]!r} first has a value after line {first.num_rows:,}, "
                    "past the lines its columns are taken from; nothing of this file was loaded"
                )
            yield pa.record_batch(
                [b.column(n) if n in b.schema.names else pa.nulls(b.num_rows) for n in names], names=names
            )

    return _copy_arrow(cur, table, matched, all_batches()), matched


def _copy_file(
    conn: Any,
    file: SourceFile,
    table: str,
    cols: list[Column],
    fmt: str,
    options: CsvOptions,
    *,
    fast: bool,
    rejects: Rejects | None = None,
) -> tuple[int, int, str, list[Column]]:
    """The file's rows into table in conn's transaction: (rows, bytes as stored, checksum, the columns
    the file gave). rejects: rows PostgreSQL refuses are set aside there (the slow path), or, on the
    fast path, the first one raises RowRefused (the caller tries the slow path)."""
    if rejects is not None and not fast:
        return _rejecting(conn, file, table, cols, fmt, options, rejects)
    with ExitStack() as stack, conn.cursor() as cur:
        if rejects is not None:
            stack.enter_context(refused_rows())
        raw = _Counted(file.open())
        stack.callback(raw.close)
        if fmt == "parquet":
            from .readers import parquet_batches, parquet_columns, spooled

            path = spooled(file)
            names, pf = parquet_columns(path)
            matched = _matched(file, names, cols, table, options.ignore_extra)
            rows = _copy_arrow(cur, table, matched, parquet_batches(pf, [c.name for c in matched]))
            for _ in chunks(raw):  # the checksum of the file as stored
                pass
            return rows, raw.bytes, f"crc32:{raw.crc:08x}", matched
        stream = stack.enter_context(decompressed(file, raw))
        if fmt == "csv":
            skip_bom(stream, options)
        if fmt == "jsonl" and (not fast or not _encodable(cols) or any(c.type in ("json", "jsonb") for c in cols)):
            # numbers exact (not through float64), objects and arrays into json/jsonb as JSON text
            names, body = json_as_csv(
                file, stream, lambda n: _matched(file, n, cols, table), LoadError, _known(cols, options)
            )
            matched = _matched(file, names, cols, table)
            rows = _copy_csv(cur, table, matched, body, CsvOptions())
            return rows, raw.bytes, f"crc32:{raw.crc:08x}", matched
        if fmt == "jsonl":
            rows, matched = _jsonl_arrow(cur, file, stream, table, cols, options)
            return rows, raw.bytes, f"crc32:{raw.crc:08x}", matched
        head = b""
        if options.header:
            names, head = csv_header(stream, options)
            if not head:  # an empty file: no rows
                return 0, raw.bytes, f"crc32:{raw.crc:08x}", []
        else:
            names = [c.name for c in cols]
        matched = _matched(file, names, cols, table, options.ignore_extra)
        if fast and _encodable(matched):
            from .binary import CSV_TYPES
            from .readers import arrow_csv

            types = {c.name: CSV_TYPES[c.type] for c in matched}
            rows = _copy_binary(cur, table, matched, arrow_csv(stream, names, types, options))
        elif len(matched) < len(names):  # columns left out, types the encoder lacks: Arrow's text, parsed there
            rows = _copy_arrow(cur, table, matched, _as_strings(stream, names, matched, options))
        else:
            body = _no_end_marker(chunks(stream), file.url, 1 + head.count(b"\n"))
            rows = _copy_csv(cur, table, matched, itertools.chain([head], body), options, header=bool(head))
        return rows, raw.bytes, f"crc32:{raw.crc:08x}", matched


def _no_end_marker(blocks: Iterator[bytes], url: str, line: int) -> Iterator[bytes]:
    """blocks as they are, unless a line is `\\.` alone: PostgreSQL's COPY takes it for the end of the
    data and would drop the rows after it without a word (a line inside quotes is refused too). line:
    the file's line the first block starts on."""
    consumed = 0  # line breaks in the blocks before this one
    tail = b"\n"  # the end of what came before (a line starts the data)
    for block in blocks:
        seen = tail + block
        at = min((i for i in (seen.find(b"\n\\.\n"), seen.find(b"\n\\.\r\n")) if i >= 0), default=-1)
        if at >= 0:
            start = at + 1 - len(tail)  # where the marker's line starts, in block
            before = consumed + block[:start].count(b"\n") if start >= 0 else consumed - tail[at + 1 :].count(b"\n")
            raise LoadError(
                f"{url}: line {line + before}: a line of \\. alone, which PostgreSQL's COPY takes for the end of "
                "the data; nothing of this file was loaded"
            )
        consumed += block.count(b"\n")
        tail = seen[-3:]
        yield block


def _checksum(file: SourceFile) -> str:
    """The file's checksum as the ledger keeps it (its bytes as stored), read once more."""
    raw = _Counted(file.open())
    raw._report = None  # a second read: not progress
    try:
        for _ in chunks(raw):
            pass
    finally:
        raw.close()
    return f"crc32:{raw.crc:08x}"
