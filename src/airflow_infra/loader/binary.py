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


def _fixed(values: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    """Big-endian fixed-width values (n, w) as fields: a 4-byte length then the value; NULL: -1 alone."""
    n, w = values.shape
    fields = np.empty((n, 4 + w), dtype=np.uint8)
    fields[:, :4] = np.frombuffer(np.array([w], dtype=">i4").tobytes(), dtype=np.uint8)
    fields[:, 4:] = values
    if valid is None or valid.all():
        offsets = np.arange(0, (n + 1) * (4 + w), 4 + w, dtype=np.int64)
        data = fields.reshape(-1)
    else:
        fields[~valid, :4] = _NULL
        keep = np.ones((n, 4 + w), dtype=bool)
        keep[~valid, 4:] = False
        data = fields[keep]
        sizes = np.where(valid, 4 + w, 4)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
    return pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _valid(arr: pa.Array) -> np.ndarray | None:
    if arr.null_count == 0:
        return None
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


# What PostgreSQL's own input functions take, for text cast here (Arrow's casts take more: hex, 1e400 as
# infinity, a date with an hour and no minutes): text they would refuse goes to the server, which says why.
_INT = r"^[ \t\n\r]*[+-]?[0-9]+[ \t\n\r]*$"
_FLOAT = r"(?i)^[ \t\n\r]*[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?|inf|infinity|nan)[ \t\n\r]*$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)


# the common shapes, checked first (a simple pattern is several times faster): the full one only for the rest
_PLAIN = {
    _INT: r"^-?[0-9]+$",
    _FLOAT: r"^-?[0-9]+\.[0-9]+$",
    _DATE: _DATE,
    _TIMESTAMP: r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
}


def _checked(arr: pa.Array, pattern: str, what: str) -> pa.Array:
    """Text arr, each value (NULLs aside) as PostgreSQL would take it; ArrowInvalid else."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        plain = pc.match_substring_regex(arr, _PLAIN[pattern])
        if plain.null_count == len(arr) or pc.all(plain).as_py():
            return arr
        rest = arr.filter(pc.invert(plain))
        ok = pc.match_substring_regex(rest, pattern)
        if pc.any(pc.invert(ok)).as_py():
            bad = rest.filter(pc.invert(ok))[0].as_py()
            raise pa.ArrowInvalid(f"{bad!r} is not {what} as PostgreSQL reads it")
    return arr


def _numbers(dtype: str, arrow: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    floating = dtype.startswith(">f")

    def encode(arr: pa.Array) -> pa.Array:
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
        return _fixed(values.view(np.uint8).reshape(len(arr), -1), _valid(arr))

    return encode


def _bool(arr: pa.Array) -> pa.Array:
    arr = arr.cast(pa.bool_())
    values = arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8)
    return _fixed(values.reshape(-1, 1), _valid(arr))


def _date(arr: pa.Array) -> pa.Array:
    arr = _checked(arr, _DATE, "a date").cast(pa.date32())
    days = arr.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) - _PG_EPOCH_DAYS
    return _fixed(days.astype(">i4").view(np.uint8).reshape(len(arr), 4), _valid(arr))


def micro(arr: pa.Array) -> pa.Array:
    """Nanoseconds (Parquet, pandas) to PostgreSQL's microseconds, rounded as its own input rounds them."""
    if pa.types.is_timestamp(arr.type) and arr.type.unit == "ns":
        return pc.round_temporal(arr, multiple=1, unit="microsecond").cast(pa.timestamp("us", arr.type.tz))
    return arr


def _timestamp(tz: str | None) -> Callable[[pa.Array], pa.Array]:
    def encode(arr: pa.Array) -> pa.Array:
        if pa.types.is_timestamp(arr.type) and (arr.type.tz is None) != (tz is None):
            arr = pa.Array.from_buffers(pa.timestamp(arr.type.unit, tz), len(arr), arr.buffers(), arr.null_count)
        arr = micro(_checked(arr, _TIMESTAMP, "a timestamp")).cast(pa.timestamp("us", tz))
        us = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False) - _PG_EPOCH_US
        return _fixed(us.astype(">i8").view(np.uint8).reshape(len(arr), 8), _valid(arr))

    return encode


def _text(prefix: bytes = b"") -> Callable[[pa.Array], pa.Array]:
    """text, varchar and json take UTF-8 as it is; jsonb a version byte (1) first."""

    def encode(arr: pa.Array) -> pa.Array:
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
        return pc.binary_join_element_wise(head, body, _EMPTY)

    return encode


ENCODERS: dict[str, Callable[[pa.Array], pa.Array]] = {
    "int2": _numbers(">i2", pa.int16()),
    "int4": _numbers(">i4", pa.int32()),
    "int8": _numbers(">i8", pa.int64()),
    "float4": _numbers(">f4", pa.float32()),
    "float8": _numbers(">f8", pa.float64()),
    "bool": _bool,
    "date": _date,
    "timestamp": _timestamp(None),
    "timestamptz": _timestamp("UTC"),
    "text": _text(),
    "varchar": _text(),
    "json": _text(),
    "jsonb": _text(b"\x01"),
}

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


def encode(batch: pa.RecordBatch, types: list[str]) -> Any:
    """The batch's rows in COPY's binary format (without the header and trailer): a buffer."""
    if batch.num_rows == 0:
        return b""
    count = pa.scalar(np.array([batch.num_columns], dtype=">i2").tobytes(), pa.large_binary())
    fields = [ENCODERS[t](batch.column(i)) for i, t in enumerate(types)]
    rows = pc.binary_join_element_wise(count, *fields, _EMPTY)
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64, count=len(rows) + 1, offset=rows.offset * 8)
    return memoryview(rows.buffers()[2])[offsets[0] : offsets[-1]]  # psycopg takes a buffer, not Arrow's
