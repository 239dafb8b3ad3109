"""JSON lines as CSV for PostgreSQL's parser, in Python: where Arrow's JSON reader would change a value
(numbers through float64, objects and arrays refused for json and jsonb columns). Numbers go as written,
objects and arrays as JSON text. The columns are the keys the first LINES lines give a value; a key met
later with a value is an error, as on the Arrow path."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from .rejects import Record
from .sources import SourceFile

LINES = 16384


def _decode(line: bytes) -> dict[str, Any] | str:
    """The line's object, or what is wrong with it."""
    try:
        doc = json.loads(line, parse_float=Decimal, parse_int=Decimal)
    except ValueError as exc:
        return f"not JSON ({exc})"
    return doc if isinstance(doc, dict) else "not a JSON object"


def _dump(v: Any) -> str:
    """v as JSON, its numbers as they were written (json.dumps would quote a Decimal)."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_dump(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_dump(x) for x in v) + "]"
    if isinstance(v, Decimal):
        return str(v)
    return json.dumps(v)


def _field(v: Any) -> str:
    """A CSV field PostgreSQL reads back as v: NULL unquoted and empty, anything else quoted."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, dict | list):
        v = _dump(v)
    return '"' + str(v).replace('"', '""') + '"'


class _Lines:
    """JSON lines as CSV records in the columns the first LINES lines give a value."""

    def __init__(
        self,
        file: SourceFile,
        check: Callable[[list[str]], object],
        error: Callable[[str], Exception],
        known: set[str] | None = None,
    ):
        self.file, self.check, self.error = file, check, error
        self.keep = known  # the keys kept (None: all)
        self.lenient = False
        self.names: list[str] = []
        self.known: set[str] = set()
        self.row = 0

    def wanted(self, key: str) -> bool:
        return self.keep is None or key in self.keep

    def parsed(self, line: bytes, at: int) -> dict[str, Any] | str:
        doc = _decode(line)
        if isinstance(doc, str) and not self.lenient:
            raise self.error(f"{self.file.url}: line {at}: {doc}; nothing of this file was loaded")
        return doc

    def record(self, at: int, line: bytes, doc: dict[str, Any] | str) -> Record:
        self.row += 1
        original = line.decode("utf-8", "replace").rstrip("\r\n")
        if isinstance(doc, dict):
            later = [k for k, v in doc.items() if k not in self.known and v is not None and self.wanted(k)]
            if later:
                self.check([*self.names, *later])
                doc = f"key {later[0]!r} first has a value past the lines its columns are taken from"
                if not self.lenient:
                    raise self.error(f"{self.file.url}: line {at}: {doc}; nothing of this file was loaded")
        if isinstance(doc, str):
            return Record(self.row, at, b"", original, doc)
        data = (",".join(_field(doc.get(k)) for k in self.names) + "\n").encode()
        return Record(self.row, at, data, original)

    def read(self, stream: Any) -> Iterator[Record]:
        head: list[tuple[int, bytes, dict[str, Any] | str]] = []
        n = 0
        for n, line in enumerate(stream, 1):  # noqa: B007 - n: the lines read so far
            if line.strip():
                head.append((n, line, self.parsed(line, n)))
            if len(head) == LINES:
                break
        docs = [doc for _, _, doc in head if isinstance(doc, dict)]
        self.names = list(dict.fromkeys(k for doc in docs for k, v in doc.items() if v is not None and self.wanted(k)))
        self.known = set(self.names)
        yield from (self.record(at, line, doc) for at, line, doc in head)
        for at, line in enumerate(stream, n + 1):
            if line.strip():
                yield self.record(at, line, self.parsed(line, at))


def json_records(
    file: SourceFile,
    stream: Any,
    check: Callable[[list[str]], object],
    error: Callable[[str], Exception],
    *,
    lenient: bool = False,
    known: set[str] | None = None,
) -> tuple[list[str], Iterator[Record]]:
    """(the columns, a CSV record per line); check(names) refuses names the table lacks. A line that is
    not a JSON object, or gives a key no earlier line had: an error, or (lenient) a record whose
    problem says so."""
    lines = _Lines(file, check, error, known)
    lines.lenient = lenient
    records = lines.read(stream)
    first = next(records, None)  # the head read: the columns known
    return lines.names, itertools.chain([first] if first is not None else [], records)


def json_as_csv(
    file: SourceFile,
    stream: Any,
    check: Callable[[list[str]], object],
    error: Callable[[str], Exception],
    known: set[str] | None = None,
) -> tuple[list[str], Iterator[bytes]]:
    """(the columns, CSV bytes in blocks); check(names) refuses names the table lacks; known: the keys
    kept (the others left out), or all."""
    names, records = json_records(file, stream, check, error, known=known)

    def blocks() -> Iterator[bytes]:
        buf: list[bytes] = []
        for r in records:
            buf.append(r.data)
            if len(buf) == 4096:
                yield b"".join(buf)
                buf.clear()
        if buf:
            yield b"".join(buf)

    return names, blocks()
