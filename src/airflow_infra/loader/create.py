"""--create: a table made from a file's schema when it does not exist yet. Parquet says its own types;
CSV's and JSON lines' are Arrow's inference over the first rows (SAMPLE), which --type COL=TYPE
overrides. The table is made by the database's owner role (the etl role is a member), so that the
reader's default privileges cover it, as they cover the tables of the project's migrations."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from contextlib import closing
from typing import Any

from ..errors import ConfigError
from .readers import (
    FILE_ERRORS,
    CsvOptions,
    arrow_errors,
    csv_header,
    decompressed,
    parquet_columns,
    spooled,
    unreadable,
)
from .rejects import csv_records
from .sources import SourceFile
from .table import LoadError, as_owner, quoted, split_table

SAMPLE = 10_000  # rows a CSV's or JSON lines' types are inferred from
# a type as one writes it: a name of words (maybe schema-qualified), maybe (n[, m]), maybe []
_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[ .][A-Za-z_][A-Za-z0-9_]*)*(?:\(\s*\d+\s*(?:,\s*\d+\s*)?\))?(?:\[\])?")


def declared(types: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    """--type COL=TYPE (or {COL: TYPE}), each checked for its shape (PostgreSQL judges the type itself)."""
    pairs = types.items() if isinstance(types, Mapping) else (t.partition("=")[::2] for t in types)
    out: dict[str, str] = {}
    for col, typ in pairs:
        if not col.strip() or not _TYPE.fullmatch(typ.strip()):
            raise ConfigError(f"--type {col}={typ}: COL=TYPE, a column and a PostgreSQL type (amount=numeric(12,2))")
        out[col.strip()] = typ.strip()
    return out


def pg_type(t: Any) -> str | None:
    """The PostgreSQL type for an Arrow type (None: no column type says it; declare one)."""
    import pyarrow as pa

    simple = [
        (pa.types.is_boolean, "boolean"),
        (lambda t: pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t), "smallint"),
        (lambda t: pa.types.is_int32(t) or pa.types.is_uint16(t), "integer"),
        (lambda t: pa.types.is_int64(t) or pa.types.is_uint32(t), "bigint"),
        (pa.types.is_uint64, "numeric(20)"),
        (lambda t: pa.types.is_float16(t) or pa.types.is_float32(t), "real"),
        (pa.types.is_float64, "double precision"),
        (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "text"),
        (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "bytea"),
        (pa.types.is_date, "date"),
        (pa.types.is_time, "time"),
        (pa.types.is_duration, "interval"),
        (lambda t: pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_map(t), "jsonb"),
        (pa.types.is_null, "text"),  # every value of the sample empty
    ]
    if pa.types.is_dictionary(t):  # (pandas' categoricals)
        return pg_type(t.value_type)
    if pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return "jsonb"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    return next((name for test, name in simple if test(t)), None)


def _csv_schema(file: SourceFile, options: CsvOptions) -> list[tuple[str, Any]]:
    import io

    import pyarrow.csv as pacsv

    with closing(file.open()) as raw, decompressed(file, raw) as stream:
        if options.header:
            names, _ = csv_header(stream, options)
        else:
            raise ConfigError("--create: a CSV file without a header has no column names; make the table first")
        sample = b"".join(
            r.data for r in itertools.islice(csv_records(stream, options.quote, line=None, url=file.url), SAMPLE)
        )
    if not sample:
        return [(n, None) for n in names]
    table = pacsv.read_csv(
        io.BytesIO(sample),
        read_options=pacsv.ReadOptions(column_names=names, encoding=options.encoding),
        parse_options=pacsv.ParseOptions(
            delimiter=options.delimiter,
            quote_char=options.quote,
            invalid_row_handler=lambda row: "skip",  # a short or long row: the load says so, or sets it aside
        ),
        convert_options=pacsv.ConvertOptions(
            null_values=[options.null], strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )
    return [(f.name, f.type) for f in table.schema]


def _jsonl_schema(file: SourceFile) -> list[tuple[str, Any]]:
    import io

    import pyarrow.json as pajson

    from .jsonl import LINES, _decode

    with closing(file.open()) as raw, decompressed(file, raw) as stream:
        # the lines the loader takes its columns from; those that are not objects: the load says so
        sample = b"".join(ln for ln in itertools.islice(stream, LINES) if ln.strip() and isinstance(_decode(ln), dict))
    if not sample:
        raise LoadError(f"{file.url}: --create: the file has no JSON object to take its columns from")
    schema = pajson.read_json(io.BytesIO(sample)).schema
    return [(f.name, f.type) for f in schema]


def file_schema(file: SourceFile, fmt: str, options: CsvOptions) -> list[tuple[str, Any]]:
    """(column name, Arrow type or None) as the file gives them."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError("--create needs pyarrow to read a file's types: pip install 'airflow-infra[load]'") from None
    if fmt == "parquet":
        names, pf = parquet_columns(spooled(file))
        return [(f.name, f.type) for f in pf.schema_arrow]
    if fmt == "jsonl":
        return _jsonl_schema(file)
    return _csv_schema(file, options)


def definition(file: SourceFile, fmt: str, options: CsvOptions, types: dict[str, str]) -> list[tuple[str, str]]:
    """The new table's columns: (name, PostgreSQL type), the file's order."""
    try:
        schema = file_schema(file, fmt, options)
    except FILE_ERRORS as exc:
        raise LoadError(f"{file.url}: {unreadable(exc)}; nothing was made") from None
    except arrow_errors() as exc:  # the sample is not what its format says
        raise LoadError(f"{file.url}: --create: its columns cannot be read: {str(exc).splitlines()[0]}") from None
    names = [n for n, _ in schema]
    if not names:
        raise LoadError(f"{file.url}: --create: the file has no columns to make {file.name}'s table from")
    unnamed = [i for i, n in enumerate(names, 1) if not n]
    if unnamed:
        raise LoadError(f"{file.url}: --create: column {unnamed[0]} has no name in the file")
    twice = [n for n in names if names.count(n) > 1]
    if twice:
        raise LoadError(f"{file.url}: --create: the column {twice[0]!r} is in the file twice")
    stranger = [c for c in types if c not in names]
    if stranger:
        raise ConfigError(f"--type {stranger[0]}=...: the file {file.url} has no column {stranger[0]!r}")
    out = []
    for name, arrow in schema:
        typ = types.get(name) or (pg_type(arrow) if arrow is not None else "text")
        if typ is None:
            raise LoadError(
                f"{file.url}: --create: no PostgreSQL type for column {name!r} ({arrow}): --type {name}=TYPE"
            )
        out.append((name, typ))
    return out


def _a_type(conn: Any, name: str, typ: str) -> None:
    """typ names a type, and only a type (not "int primary key" nor "text default ...")."""
    from ..pgerrors import failing

    def refused(detail: str) -> ConfigError:
        return ConfigError(f"--type {name}={typ}: {detail}")

    with failing(refused):
        known = conn.execute("SELECT to_regtype(%s)", (typ,)).fetchone()[0]
    if known is None:
        raise ConfigError(f"--type {name}={typ}: not a type PostgreSQL knows")


def create(conn: Any, table: str, cols: list[tuple[str, str]]) -> bool:
    """CREATE TABLE as the database's owner role; False when it exists already (made meanwhile by
    another loader: it is loaded into as it is)."""
    from psycopg import sql

    from ..pgerrors import failing

    def failed(detail: str) -> ConfigError:
        return ConfigError(f"--create {table}: {detail}; nothing was made")

    with failing(failed), conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"create\n{table}",))
        if conn.execute("SELECT to_regclass(%s)", (quoted(conn, table),)).fetchone()[0] is not None:
            return False
        for name, typ in cols:
            _a_type(conn, name, typ)
        as_owner(conn)
        conn.execute(
            sql.SQL("CREATE TABLE {} ({})").format(
                sql.Identifier(*split_table(table)),
                sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in cols),
            )
        )
    return True


def _in_use_key(table: str) -> str:
    return f"airflow-infra load into\n{table}"


def in_use(conn: Any, table: str) -> None:
    """Every load holds this (shared, for its session) while it loads: the table a failed --create made
    is dropped only when no other load holds it (drop_if_empty), and a load that starts after such a
    drop waits for it, then finds the table gone (and makes it again, with --create)."""
    conn.execute("SELECT pg_advisory_lock_shared(hashtextextended(%s, 0))", (_in_use_key(table),))


def drop_if_empty(conn: Any, table: str) -> None:
    """The table --create made, dropped again when nothing went into it (its load failed) and no other
    load is using it (in_use). Its own failure never hides the load's: the table is left, empty."""
    from psycopg import sql

    from ..errors import AirflowInfraError
    from ..pgerrors import failing

    ident = sql.Identifier(*split_table(table))
    try:
        with failing(LoadError), conn.transaction():
            if not conn.execute(
                "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", (_in_use_key(table),)
            ).fetchone()[0]:
                return  # another load holds it: it stays
            as_owner(conn)
            if conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(ident)).fetchone()[0]:
                conn.execute(sql.SQL("DROP TABLE {}").format(ident))
    except AirflowInfraError:
        pass
