"""unload: a table or a query's rows into one file of the bucket (or anywhere), as CSV or Parquet.

The rows come out of PostgreSQL's `COPY (query) TO STDOUT` as CSV, in a READ ONLY transaction of the
etl role (a query cannot change anything). CSV is written as it comes (compressed by the name's
extension); Parquet is that CSV parsed by Arrow into each column's type, a batch at a time. Either is
written to a temporary file on disk (never held in memory), then put in place whole: renamed beside
its destination, or uploaded to S3 (multipart, in parallel). A destination that exists is replaced only
with overwrite.
"""

from __future__ import annotations

import bz2
import gzip
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

from ..errors import ConfigError
from ..pgerrors import failing
from .results import UnloadResult
from .table import LoadError

UNLOAD_FORMATS = ("csv", "parquet")
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*")


@dataclass(frozen=True)
class Destination:
    url: str
    exists: Callable[[], bool]
    put: Callable[[Path], None]  # the finished temporary file into place
    local_dir: Path | None  # where the temporary file goes (beside a local destination: a rename)


def format_for(url: str, given: str | None) -> tuple[str, str | None]:
    """(format, compression) from --format and the destination's name."""
    name = url.lower()
    compression = next(
        (c for ext, c in ((".gz", "gzip"), (".zst", "zstd"), (".bz2", "bz2")) if name.endswith(ext)), None
    )
    stem = re.sub(r"\.(gz|zst|bz2)$", "", name)
    fmt = given or ("parquet" if stem.endswith((".parquet", ".pq")) else "csv" if stem.endswith(".csv") else None)
    if fmt is None:
        raise ConfigError(
            f"DEST {url!r}: cannot tell the format from its name: pass --format {'|'.join(UNLOAD_FORMATS)}"
        )
    if fmt == "parquet" and compression:
        raise ConfigError(f"DEST {url!r}: Parquet compresses its own pages; name it .parquet")
    return fmt, compression


def destination(dest: str, *, bucket_url: str | None, s3_client: Callable[[], Any] | None) -> Destination:
    """DEST: a key of the project's bucket, an s3:// or file:// URL, or a local path."""
    parsed = urlparse(dest)
    if parsed.scheme == "s3":
        return _s3(parsed.netloc, parsed.path.lstrip("/"), s3_client, dest)
    if parsed.scheme == "file":
        return _local(Path(unquote(parsed.path)), dest, make_parents=False)
    if parsed.scheme or not dest.strip() or dest.endswith("/"):
        raise ConfigError(f"DEST {dest!r}: a key in the project's bucket, an s3:// or file:// URL, or a file's path")
    if os.path.isabs(dest) or dest.startswith(("./", "../", "~")):
        return _local(Path(dest).expanduser(), dest, make_parents=False)
    if bucket_url is None:
        raise ConfigError(f"DEST {dest!r}: the project has no bucket yet (run `airflow-infra apply`)")
    key = dest.lstrip("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in key.split("/")):
        raise ConfigError(f"DEST {dest!r}: a key of the bucket, with no empty, '.', '..' or hidden part")
    if bucket_url.startswith("s3://"):
        bucket, _, prefix = bucket_url[5:].partition("/")
        return _s3(bucket, prefix + key, s3_client, dest)
    root = Path(unquote(urlparse(bucket_url).path))
    return _local(root / key, dest, make_parents=True)


def _local(path: Path, dest: str, *, make_parents: bool) -> Destination:
    if path.is_dir():
        raise ConfigError(f"DEST {dest!r}: is a folder; name a file")
    if not path.parent.is_dir() and not make_parents:
        raise ConfigError(f"DEST {dest!r}: its folder {path.parent} does not exist")

    def put(tmp: Path) -> None:
        tmp.replace(path)

    path.parent.mkdir(parents=True, exist_ok=True)
    return Destination(path.resolve().as_uri(), path.exists, put, path.parent)


def _s3(bucket: str, key: str, s3_client: Callable[[], Any] | None, dest: str) -> Destination:
    if s3_client is None:
        raise ConfigError(f"DEST {dest!r}: writing to S3 needs boto3: pip install 'airflow-infra[s3]'")
    if not key or key.endswith("/"):
        raise ConfigError(f"DEST {dest!r}: name an object (a key), not a prefix")
    s3 = s3_client()
    url = f"s3://{bucket}/{key}"

    def exists() -> bool:
        from ..aws.clients import NotFound, aws

        with aws(url, "read"):
            try:
                s3.head_object(Bucket=bucket, Key=key)
            except NotFound:
                return False
        return True

    def put(tmp: Path) -> None:
        from ..aws.clients import aws

        with aws(url, "write"):
            s3.upload_file(str(tmp), bucket, key)

    return Destination(url, exists, put, None)


def relation(conn: Any, source: str) -> Any:
    """SOURCE as what COPY ( ) takes: a table (schema.table) or a query."""
    from psycopg import sql

    if _TABLE.fullmatch(source.strip()):
        schema, name = source.strip().split(".")
        return sql.SQL("TABLE {}").format(sql.Identifier(schema, name))
    query = source.strip().rstrip(";").strip()
    if not query:
        raise ConfigError("SOURCE '': a table (schema.table) or a query")
    return sql.SQL(query)  # the user's own query, run read-only as their etl role


def _arrow_type(type_oid: int, precision: int | None, scale: int | None) -> Any:
    """The Arrow type a PostgreSQL result column's CSV text parses into (text for the rest: exact)."""
    import pyarrow as pa

    known = {
        16: pa.bool_(),
        20: pa.int64(),
        21: pa.int16(),
        23: pa.int32(),
        700: pa.float32(),
        701: pa.float64(),
        1082: pa.date32(),
        1083: pa.time64("us"),
        1114: pa.timestamp("us"),
        1184: pa.timestamp("us", tz="UTC"),
    }
    if type_oid == 1700 and precision is not None and scale is not None and 0 < precision <= 38:
        return pa.decimal128(precision, scale)
    return known.get(type_oid, pa.string())


def _copy_out(conn: Any, query: Any, rows: list[int]) -> Iterator[bytes]:
    """The query's rows as CSV (with a header), in the caller's READ ONLY transaction; their number
    appended to rows once they are all out."""
    from psycopg import sql

    with conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true)").format(query)) as copy:
            for block in copy:
                yield bytes(block)
        rows.append(cur.rowcount)


class _Counted:
    """A file being written, its bytes counted (and reported, for a progress bar)."""

    def __init__(self, out: IO[bytes], report: Callable[[int], None] | None):
        self._out, self._report, self.written = out, report, 0

    def write(self, data: Any) -> int:
        n = self._out.write(data)
        self.written += len(data)
        if self._report is not None:
            self._report(len(data))
        return n

    def flush(self) -> None:
        self._out.flush()

    def tell(self) -> int:
        return self.written

    @property
    def closed(self) -> bool:
        return self._out.closed

    def writable(self) -> bool:
        return True


class _Pulled:
    """An iterator of bytes as a file to read from (Arrow's CSV reader reads from it)."""

    def __init__(self, blocks: Iterator[bytes]):
        self._blocks, self._buf, self.closed = blocks, b"", False

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._buf) < n) and (block := next(self._blocks, None)) is not None:
            self._buf += block
        out, self._buf = (self._buf, b"") if n < 0 else (self._buf[:n], self._buf[n:])
        return out

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def _write_csv(blocks: Iterator[bytes], out: Any, compression: str | None) -> None:
    sink: Any = out
    if compression == "gzip":
        sink = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=3, mtime=0)
    elif compression == "bz2":
        sink = bz2.BZ2File(out, "wb")
    elif compression == "zstd":
        import zstandard

        sink = zstandard.ZstdCompressor(level=3, threads=-1).stream_writer(out, closefd=False)
    for block in blocks:
        sink.write(block)
    if sink is not out:
        sink.close()


def _write_parquet(conn: Any, query: Any, out: Any, rows: list[int]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from psycopg import sql

    with conn.cursor() as cur:  # the columns and their types, from the query planned and not run
        cur.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(query))
        described = cur.description or []
    names = [c.name for c in described]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"SOURCE: the column {twice!r} is in the result twice; name each column once (AS ...)")
    types = {c.name: _arrow_type(c.type_code, c.precision, c.scale) for c in described}
    reader = pacsv.open_csv(
        _Pulled(_copy_out(conn, query, rows)),
        read_options=pacsv.ReadOptions(block_size=1 << 20),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    schema = pa.schema([(n, types[n]) for n in names])
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)


def unload(
    connect: Callable[[], Any],
    source: str,
    dest: Destination,
    *,
    format: str | None = None,
    overwrite: bool = False,
    on_bytes: Callable[[int], None] | None = None,
) -> UnloadResult:
    """SOURCE's rows into dest, whole or not at all (a temporary file put in place at the end)."""
    started = time.monotonic()
    fmt, compression = format_for(dest.url, format)
    if format is not None and format not in UNLOAD_FORMATS:
        raise ConfigError(f"--format {format!r}: one of {', '.join(UNLOAD_FORMATS)}")
    if dest.exists() and not overwrite:
        raise ConfigError(f"DEST {dest.url}: exists; --overwrite to replace it")
    fd, name = tempfile.mkstemp(prefix=".airflow-infra-unload-", dir=dest.local_dir)
    os.fchmod(fd, 0o644)  # as any file written there (mkstemp's are the owner's alone)
    tmp = Path(name)
    rows: list[int] = []
    try:
        with os.fdopen(fd, "wb") as raw, connect() as conn:
            out = _Counted(raw, on_bytes)
            with failing(lambda detail: LoadError(f"unload: {detail}; nothing was written")), conn.transaction():
                conn.execute("SET TRANSACTION READ ONLY")  # a query changes nothing, whatever it says
                query = relation(conn, source)
                if fmt == "parquet":
                    _write_parquet(conn, query, out, rows)
                else:
                    _write_csv(_copy_out(conn, query, rows), out, compression)
            raw.flush()
            os.fsync(raw.fileno())
        dest.put(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return UnloadResult(dest.url, rows[0] if rows else 0, out.written, time.monotonic() - started)
