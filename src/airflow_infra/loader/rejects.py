"""Bad rows set aside (--max-errors N): a file's rows one record at a time, for a COPY that PostgreSQL
may refuse one row of, and the rows it refused with their reasons.

PostgreSQL's own parser judges every value (copy.py sends the records as CSV in savepoints, smaller
after a refusal, larger again after a success): what it takes is exactly what a plain COPY takes. This
path is taken only for a file the fast path could not load whole, so a clean file costs nothing more.
"""

from __future__ import annotations

import csv
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .results import Reject
from .table import LoadError


@dataclass(frozen=True)
class Record:
    """One row of a file as CSV for PostgreSQL's parser."""

    row: int  # counted from 1
    line: int | None  # the file's line it starts on (None: Parquet)
    data: bytes  # ends with a line break
    original: str | None = None  # the row as the file has it, where data is not (JSON lines)
    problem: str | None = None  # refused before PostgreSQL sees it (a line that is not JSON)


class Rejects:
    """A file's rows set aside, at most limit of them: one more is an error, and nothing of the file
    is loaded."""

    def __init__(self, url: str, limit: int, encoding: str = "utf8"):
        self.url, self.limit, self.encoding = url, limit, encoding
        self.rows: list[Reject] = []
        self.savepoints: list[int] = []  # the ids of the savepoints rows went in by (for --reload)

    def add(self, record: Record, column: str | None, value: str | None, reason: str) -> None:
        text = record.original or record.data.decode(self.encoding, "replace").rstrip("\r\n")
        text = text.replace("\x00", "\ufffd")  # text in PostgreSQL holds no NUL
        self.rows.append(Reject(self.url, record.row, record.line, column, value, reason, text))
        if len(self.rows) > self.limit:
            first = self.rows[0]
            where = f"line {first.line}" if first.line is not None else f"row {first.row}"
            raise LoadError(
                f"{self.url}: more than {self.limit:,} bad rows (--max-errors); the first, {where}"
                f"{f', column {first.column}' if first.column else ''}: {first.reason}; nothing of this file "
                "was loaded"
            )


def csv_records(stream: Any, quote: str, *, line: int | None, row: int = 0) -> Iterator[Record]:
    """stream's CSV records, a record ending at a line break outside quotes (as PostgreSQL's parser
    reads them; the quote doubled inside a quoted field counts twice). Blank lines are not rows (the
    fast path skips them too). line: the file's line the first record starts on (None: count rows)."""
    q = quote.encode()
    parts: list[bytes] = []
    odd = False
    start = line
    for raw in stream:
        parts.append(raw)
        if raw.count(q) % 2:
            odd = not odd
        if odd:
            continue
        data, n = b"".join(parts), len(parts)
        parts.clear()
        if data.strip(b"\r\n"):
            row += 1
            yield Record(row, start, data if data.endswith(b"\n") else data + b"\n")
        if start is not None:
            start += n
    if parts:  # a quote never closed: the rest is one record, which PostgreSQL refuses with its reason
        data = b"".join(parts)
        yield Record(row + 1, start, data if data.endswith(b"\n") else data + b"\n")


def arrow_records(batches: Iterator[Any]) -> Iterator[Record]:
    """Arrow batches (Parquet's, JSON lines') as CSV records, counted by row."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    from .copy import _as_text

    row = 0
    for batch in batches:
        sink = pa.BufferOutputStream()
        pacsv.write_csv(_as_text(batch), sink, pacsv.WriteOptions(include_header=False))
        for r in csv_records(io.BytesIO(sink.getvalue().to_pybytes()), '"', line=None, row=row):
            row = r.row
            yield r


_HEADER = ["file", "row", "line", "column", "value", "reason", "record"]


class RejectFile:
    """--reject-file: the rows set aside, as CSV with a header, a file's rows written once its load has
    committed (the ledger's airflow_infra.rejects keeps them too). Written under a temporary name and
    renamed at the end: a load stopped midway leaves the previous file, or none."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise LoadError(f"--reject-file {path}: is a directory; name a file")
        if not self.path.parent.is_dir():
            raise LoadError(f"--reject-file {path}: its folder {self.path.parent} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        self._tmp = Path(tmp)
        self._f = os.fdopen(fd, "w", newline="", encoding="utf-8")
        self._w = csv.writer(self._f)
        self._w.writerow(_HEADER)
        self._lock = threading.Lock()
        self.written = 0

    def write(self, rejects: tuple[Reject, ...]) -> None:
        with self._lock:
            for r in rejects:
                self._w.writerow([r.url, r.row, r.line or "", r.column or "", r.value or "", r.reason, r.record])
            self.written += len(rejects)

    def close(self) -> None:
        self._f.close()
        self._tmp.replace(self.path)

    def discard(self) -> None:
        self._f.close()
        self._tmp.unlink(missing_ok=True)
