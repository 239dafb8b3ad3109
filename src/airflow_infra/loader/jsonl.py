"""JSON lines as CSV for PostgreSQL's parser, in Python: where Arrow's JSON reader would change a value
(numbers through float64, objects and arrays refused for json and jsonb columns). Numbers go as written,
objects and arrays as JSON text. The columns are the keys the first LINES lines give a value; a key met
later with a value is an error, as on the Arrow path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from .sources import SourceFile

LINES = 16384


def _decode(file: SourceFile, line: bytes, n: int, error: Callable[[str], Exception]) -> dict[str, Any]:
    try:
        doc = json.loads(line, parse_float=Decimal, parse_int=Decimal)
    except ValueError as exc:
        raise error(f"{file.url}: line {n}: not JSON ({exc}); nothing of this file was loaded") from None
    if not isinstance(doc, dict):
        raise error(f"{file.url}: line {n}: not a JSON object; nothing of this file was loaded")
    return doc


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


def json_as_csv(
    file: SourceFile, stream: Any, check: Callable[[list[str]], object], error: Callable[[str], Exception]
) -> tuple[list[str], Iterator[bytes]]:
    """(the columns, CSV bytes in blocks); check(names) refuses names the table lacks."""
    head: list[dict[str, Any]] = []
    n = 0
    for n, line in enumerate(stream, 1):  # noqa: B007 - n: the lines read so far
        if line.strip():
            head.append(_decode(file, line, n, error))
        if len(head) == LINES:
            break
    names = list(dict.fromkeys(k for doc in head for k, v in doc.items() if v is not None))
    known = set(names)

    def row(doc: dict[str, Any], at: int) -> str:
        later = [k for k, v in doc.items() if k not in known and v is not None]
        if later:
            check([*names, *later])
            raise error(
                f"{file.url}: line {at}: key {later[0]!r} first has a value past the lines its columns are "
                "taken from; nothing of this file was loaded"
            )
        return ",".join(_field(doc.get(k)) for k in names) + "\n"

    def blocks() -> Iterator[bytes]:
        yield "".join(row(doc, 0) for doc in head).encode()
        buf: list[str] = []
        for at, line in enumerate(stream, n + 1):
            if line.strip():
                buf.append(row(_decode(file, line, at, error), at))
            if len(buf) == 4096:
                yield "".join(buf).encode()
                buf.clear()
        if buf:
            yield "".join(buf).encode()

    return names, blocks()
