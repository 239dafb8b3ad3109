"""Bad rows set aside (--max-errors N): a file's rows one record at a time, for a COPY that PostgreSQL
may refuse one row of, and the rows it refused with their reasons.

PostgreSQL's own parser judges every value (copy.py sends the records as CSV in savepoints, smaller
after a refusal, larger again after a success): what it takes is exactly what a plain COPY takes. This
path is taken only for a file the fast path could not load whole, so a clean file costs nothing more.
"""

from __future__ import annotations

import csv
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

    def kept(self) -> tuple[Reject, ...]:
        """The rows set aside, in the file's order."""
        return tuple(sorted(self.rows, key=lambda r: r.row))

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


RECORD_LIMIT = 64 << 20  # bytes one record may hold: past it, a quote was never closed


def csv_records(stream: Any, quote: str, *, line: int | None, row: int = 0, url: str = "") -> Iterator[Record]:
    """stream's CSV records, a record ending at a line break outside quotes (as PostgreSQL's parser
    reads them: a quote anywhere in a field opens or closes a quoted part; the quote doubled inside a
    quoted field counts twice). Blank lines are not rows (the fast path skips them too); a line of
    `\\.` alone, which PostgreSQL's COPY takes for the end of its data, is set aside. A quote never
    closed is an error naming the line it opened on (PostgreSQL would refuse the whole file), as is a
    record past RECORD_LIMIT. line: the file's line the first record starts on (None: count rows)."""
    q = quote.encode()
    parts: list[bytes] = []
    held = 0
    odd = False
    start = line
    for raw in stream:
        if not parts and b"\r" in raw.rstrip(b"\r\n"):
            raise LoadError(
                f"{url}: line {start or row + 1}: its lines end in a carriage return alone (classic Mac); setting "
                "rows aside (--max-errors) needs line feeds: convert it (tr '\\r' '\\n') or load it without"
            )
        parts.append(raw)
        held += len(raw)
        if raw.count(q) % 2:
            odd = not odd
        if odd:
            if held > RECORD_LIMIT:
                break
            continue
        data, n = b"".join(parts), len(parts)
        parts.clear()
        held = 0
        if data.strip(b"\r\n"):
            row += 1
            end = data if data.endswith(b"\n") else data + b"\n"
            marker = data.rstrip(b"\r\n") == b"\\."
            yield Record(
                row,
                start,
                end,
                problem="a line of \\. alone, which COPY reads as the end of the data" if marker else None,
            )
        if start is not None:
            start += n
    if parts:
        where = f"line {start}" if start is not None else f"row {row + 1}"
        raise LoadError(
            f"{url}: {where}: a quote opened there is never closed (or a field runs past {RECORD_LIMIT >> 20} MB); "
            "PostgreSQL would read the rest of the file as one field; nothing of this file was loaded"
        )


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

    def __init__(self, path: str | Path, sources: list[str]):
        self.path = Path(path).expanduser().resolve()
        if self.path.is_dir():
            raise LoadError(f"--reject-file {path}: is a directory; name a file")
        if not self.path.parent.is_dir():
            raise LoadError(f"--reject-file {path}: its folder {self.path.parent} does not exist")
        if self.path.as_uri() in sources:
            raise LoadError(f"--reject-file {path}: is one of the files being loaded; name another file")
        self._tmp = self.path.with_name(f".{self.path.name}.airflow-infra-tmp")  # one name: a kill leaves one
        try:
            self._f = open(self._tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise LoadError(f"--reject-file {path}: cannot be written: {exc.strerror or exc}") from None
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
