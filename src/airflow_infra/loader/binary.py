"""Arrow record batches as PostgreSQL's binary COPY format, column by column, without a Python loop over
rows: each column becomes one binary array whose elements are that column's fields as COPY wants them
(a big-endian length, -1 for NULL, then the value in PostgreSQL's binary send format), and Arrow joins
the columns element-wise into rows in C++. The server then does no parsing at all: the fastest way rows
go into PostgreSQL from one session.

Types are those of the table's columns (what the server expects), the batch's values are cast to them;
a column type not in ENCODERS makes the load take PostgreSQL's own CSV parser instead (`encodable()`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # signature, flags, extension
TRAILER = b"\xff\xff"
_PG_EPOCH_DAYS = 10957  # 2000-01-01 - 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86400 * 1_000_000
_NULL = np.frombuffer(b"\xff\xff\xff\xff", dtype=np.uint8)
_EMPTY = pa.scalar(b"", pa.large_binary())


Fixed = tuple[np.ndarray, "np.ndarray | None"]  # a column's values, big-endian (n, width) bytes; valid or None


def _prefix(count: int, fixed: list[Fixed], n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Each row's start: the field count, then the fixed-width fields (a 4-byte length and the value;
    NULL: -1 alone), built as one (n, width) matrix, column by column. (data, row offsets or None: every
    row is the matrix's width)."""
    width = 2 + sum(4 + v.shape[1] for v, _ in fixed)
    rows = np.empty((n, width), dtype=np.uint8)
    rows[:, :2] = np.frombuffer(np.array([count], dtype=">i2").tobytes(), dtype=np.uint8)
    keep: np.ndarray | None = None
    at = 2
    for values, valid in fixed:
        w = values.shape[1]
        rows[:, at : at + 4] = np.frombuffer(np.array([w], dtype=">i4").tobytes(), dtype=np.uint8)
        rows[:, at + 4 : at + 4 + w] = values
        if valid is not None and not valid.all():
            rows[~valid, at : at + 4] = _NULL
            if keep is None:
                keep = np.ones((n, width), dtype=bool)
            keep[~valid, at + 4 : at + 4 + w] = False
        at += 4 + w
    if keep is None:
        return rows.reshape(-1), None
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    return rows[keep], offsets


def _valid(arr: pa.Array) -> np.ndarray | None:
    if arr.null_count == 0:
        return None
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


# What PostgreSQL's own input functions take, for text cast here (Arrow's casts take more: hex, 1e400 as
# infinity, a date with an hour and no minutes): text they would refuse goes to the server, which says why.
_INT = r"^[ \t\n\r]*[+-]?[0-9]+[ \t\n\r]*$"
_FLOAT = r"(?i)^[ \t\n\r]*[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?|inf|infinity|nan)[ \t\n\r]*$"
_YEAR = "([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"  # not 0000, which PostgreSQL refuses
_DATE = rf"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}$"
_TIMESTAMP = rf"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}([ T][0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}(\.[0-9]+)?)?)?(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)?$"


# the common shapes, checked first (a simple pattern is several times faster): the full one only for the rest
_PLAIN: dict[str, str | None] = {
    _INT: None,  # digits alone: ascii_is_decimal, ten times faster again
    _FLOAT: r"^-?[0-9]+\.[0-9]+$",
    _DATE: _DATE,
    _TIMESTAMP: rf"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}$",
}


def _checked(arr: pa.Array, pattern: str, what: str) -> pa.Array:
    """Text arr, each value (NULLs aside) as PostgreSQL would take it; ArrowInvalid else."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        simple = _PLAIN[pattern]
        plain = pc.ascii_is_decimal(arr) if simple is None else pc.match_substring_regex(arr, simple)
        if plain.null_count == len(arr) or pc.all(plain).as_py():
            return arr
        rest = arr.filter(pc.invert(plain))
        ok = pc.match_substring_regex(rest, pattern)
        if pc.any(pc.invert(ok)).as_py():
            bad = rest.filter(pc.invert(ok))[0].as_py()
            raise pa.ArrowInvalid(f"{bad!r} is not {what} as PostgreSQL reads it")
    return arr


def _numbers(dtype: str, arrow: pa.DataType) -> Callable[[pa.Array], Fixed]:
    floating = dtype.startswith(">f")

    def encode(arr: pa.Array) -> Fixed:
        text = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
        source = arr
        arr = _checked(arr, _FLOAT if floating else _INT, "a number").cast(arrow)
        if floating and text:  # out of range: PostgreSQL refuses what Arrow makes infinity or zero of
            inf, zero = pc.is_inf(arr), pc.equal(arr, 0)
            if pc.any(inf).as_py() and not pc.all(pc.match_substring_regex(source.filter(inf), "(?i)inf")).as_py():
                raise pa.ArrowInvalid("a number out of range")  # the server's parser says where
            if pc.any(zero).as_py() and pc.any(pc.match_substring_regex(source.filter(zero), "^[^eE]*[1-9]")).as_py():
                raise pa.ArrowInvalid("a number out of range")
        values = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(dtype)
        return values.view(np.uint8).reshape(len(arr), -1), _valid(arr)

    return encode


def _bool(arr: pa.Array) -> Fixed:
    arr = arr.cast(pa.bool_())
    values = arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8)
    return values.reshape(-1, 1), _valid(arr)


def _date(arr: pa.Array) -> Fixed:
    arr = _checked(arr, _DATE, "a date").cast(pa.date32())
    days = arr.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) - _PG_EPOCH_DAYS
    return days.astype(">i4").view(np.uint8).reshape(len(arr), 4), _valid(arr)


def micro(arr: pa.Array) -> pa.Array:
    """Nanoseconds (Parquet, pandas) to PostgreSQL's microseconds, rounded as its own input rounds them."""
    if pa.types.is_timestamp(arr.type) and arr.type.unit == "ns":
        return pc.round_temporal(arr, multiple=1, unit="microsecond").cast(pa.timestamp("us", arr.type.tz))
    return arr


def _timestamp(tz: str | None) -> Callable[[pa.Array], Fixed]:
    def encode(arr: pa.Array) -> Fixed:
        if pa.types.is_timestamp(arr.type) and (arr.type.tz is None) != (tz is None):
            arr = pa.Array.from_buffers(pa.timestamp(arr.type.unit, tz), len(arr), arr.buffers(), arr.null_count)
        arr = micro(_checked(arr, _TIMESTAMP, "a timestamp")).cast(pa.timestamp("us", tz))
        us = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False) - _PG_EPOCH_US
        return us.astype(">i8").view(np.uint8).reshape(len(arr), 8), _valid(arr)

    return encode


def _text(prefix: bytes = b"") -> Callable[[pa.Array], list[pa.Array]]:
    """text, varchar and json take UTF-8 as it is; jsonb a version byte (1) first: (each field's
    4-byte length, its bytes), joined into the rows by encode()."""

    def encode(arr: pa.Array) -> list[pa.Array]:
        if not pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.large_string())
        n = len(arr)
        lengths = pc.binary_length(arr).fill_null(-1 - len(prefix)).to_numpy(zero_copy_only=False).astype(np.int64)
        lengths += len(prefix)
        offsets = np.arange(0, 4 * (n + 1), 4, dtype=np.int64)
        head_bytes = lengths.astype(">i4").view(np.uint8)
        head = pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(head_bytes)])
        body = arr.cast(pa.large_binary()).fill_null(b"")
        if prefix:
            with_prefix = pc.binary_join_element_wise(pa.scalar(prefix, pa.large_binary()), body, _EMPTY)
            body = pc.if_else(arr.is_valid(), with_prefix, body)
        return [head, body]

    return encode


FIXED: dict[str, Callable[[pa.Array], Fixed]] = {
    "int2": _numbers(">i2", pa.int16()),
    "int4": _numbers(">i4", pa.int32()),
    "int8": _numbers(">i8", pa.int64()),
    "float4": _numbers(">f4", pa.float32()),
    "float8": _numbers(">f8", pa.float64()),
    "bool": _bool,
    "date": _date,
    "timestamp": _timestamp(None),
    "timestamptz": _timestamp("UTC"),
}
VARIABLE: dict[str, Callable[[pa.Array], list[pa.Array]]] = {
    "text": _text(),
    "varchar": _text(),
    "json": _text(),
    "jsonb": _text(b"\x01"),
}
ENCODERS = {**FIXED, **VARIABLE}

# What Arrow reads a JSON value as, for a table column of each type; a CSV field: CSV_TYPES (numbers and
# times as text, which the encoders check against PostgreSQL's syntax and cast)
ARROW_TYPES: dict[str, pa.DataType] = {
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", "UTC"),
    "text": pa.large_string(),
    "varchar": pa.large_string(),
    "json": pa.large_string(),
    "jsonb": pa.large_string(),
}
CSV_TYPES = {t: (a if t == "bool" else pa.large_string()) for t, a in ARROW_TYPES.items()}


def encodable(types: list[str]) -> bool:
    return all(t in ENCODERS for t in types)


def layout(types: list[str]) -> list[int]:
    """The order the columns go in (the COPY's column list in it): fixed-width types first, so that each
    row starts with a block built as one matrix; then the others, joined on by Arrow."""
    return [i for i, t in enumerate(types) if t in FIXED] + [i for i, t in enumerate(types) if t not in FIXED]


def encode(batch: pa.RecordBatch, types: list[str]) -> Any:
    """The batch's rows in COPY's binary format (without the header and trailer), its columns in
    layout(types)'s order: a buffer."""
    n = batch.num_rows
    if n == 0:
        return b""
    order = layout(types)
    fixed = [FIXED[types[i]](batch.column(i)) for i in order if types[i] in FIXED]
    data, offsets = _prefix(batch.num_columns, fixed, n)
    variable = [part for i in order if types[i] in VARIABLE for part in VARIABLE[types[i]](batch.column(i))]
    if not variable:
        return data.data  # the buffer itself
    if offsets is None:
        offsets = np.arange(0, len(data) + 1, len(data) // n, dtype=np.int64)
    head = pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    rows = pc.binary_join_element_wise(head, *variable, _EMPTY)
    at = np.frombuffer(rows.buffers()[1], dtype=np.int64, count=n + 1, offset=rows.offset * 8)
    return memoryview(rows.buffers()[2])[at[0] : at[-1]]  # psycopg takes a buffer, not Arrow's
