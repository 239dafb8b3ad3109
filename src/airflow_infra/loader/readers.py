"""A file's rows as Arrow record batches (CSV, Parquet, JSON lines), or, without pyarrow, a CSV file's
bytes for PostgreSQL's own parser. Compression (gzip, bz2, zstd) is found by extension or magic bytes.
Everything streams: a batch at a time, whatever the file's size."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from . import FORMATS
from .sources import Readable, SourceFile

BLOCK = 1 << 20  # bytes of CSV parsed at a time: memory stays flat, threads stay busy
BATCH = 16384  # rows of Parquet / JSON lines at a time
_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\x28\xb5\x2f\xfd": "zstd"}
_EXT = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    quote: str = '"'
    null: str = ""  # what stands for NULL (unquoted); a quoted empty string is an empty string, as in COPY
    header: bool = True
    encoding: str = "utf8"
    ignore_extra: bool = False  # (any format) a file's column the table lacks is left out, not an error

    def __post_init__(self) -> None:
        for flag, value in (("--delimiter", self.delimiter), ("--quote", self.quote)):
            if len(value) != 1 or not value.isascii() or value in "\r\n":
                raise ConfigError(f"{flag} {value!r}: one ASCII character (not a line break)")
        if self.delimiter == self.quote or self.delimiter in self.null or "\n" in self.null or "\r" in self.null:
            raise ConfigError(f"--null {self.null!r}: may hold neither the delimiter nor a line break")
        pg_encoding(self.encoding)

    @property
    def server_encoding(self) -> str:
        return pg_encoding(self.encoding)


# Python's codec -> PostgreSQL's name for it: the encodings both sides know
_ENCODINGS = {
    "utf_8": "UTF8",
    "latin_1": "LATIN1",
    "iso8859_15": "LATIN9",
    "cp1250": "WIN1250",
    "cp1251": "WIN1251",
    "cp1252": "WIN1252",
    "ascii": "SQL_ASCII",
    "koi8_r": "KOI8R",
    "euc_jp": "EUC_JP",
    "gbk": "GBK",
    "big5": "BIG5",
    "shift_jis": "SJIS",
}


def pg_encoding(name: str) -> str:
    import codecs

    try:
        codec = codecs.lookup(name).name.replace("-", "_")
    except LookupError:
        codec = ""
    codec = {"utf_8_sig": "utf_8", "iso8859_1": "latin_1"}.get(codec, codec)
    if codec not in _ENCODINGS:
        raise ConfigError(f"--encoding {name!r}: one of {', '.join(sorted(_ENCODINGS))} (or their other names)")
    return _ENCODINGS[codec]


def compression(file: SourceFile, head: bytes) -> str | None:
    for ext, kind in _EXT.items():
        if file.name.lower().endswith(ext):
            return kind
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def format_of(file: SourceFile, given: str | None) -> str:
    if given:
        return given
    name = file.name.lower()
    for ext in _EXT:
        name = name.removesuffix(ext)
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    raise ConfigError(f"{file.url}: cannot tell its format from its name: pass --format {'|'.join(FORMATS)}")


class _Peeked(io.RawIOBase):
    """A stream whose first bytes were read to look at, given back first."""

    def __init__(self, head: bytes, rest: Readable):
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._rest.close()
        super().close()


def decompressed(file: SourceFile, raw: Readable) -> Any:
    """raw (file's bytes as stored) decompressed, by its extension or magic bytes."""
    head = raw.read(4)
    stream = io.BufferedReader(_Peeked(head, raw), buffer_size=1 << 20)
    kind = compression(file, head)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=stream)
    if kind == "bz2":
        return bz2.BZ2File(stream)
    if kind == "zstd":
        return io.BufferedReader(_Zstd(file, stream), buffer_size=1 << 20)  # lines, as the other streams
    return stream


class Truncated(ValueError):
    """A compressed file that ends before its data does."""


class _Zstd(io.RawIOBase):
    """zstd frames decompressed one after the other; input that ends inside a frame is Truncated (a
    stream reader would end quietly there, and a file cut short would load in part)."""

    def __init__(self, file: SourceFile, stream: Any):
        try:
            import zstandard
        except ImportError:
            raise ConfigError(f"{file.url}: reading zstd needs zstandard: pip install 'airflow-infra[load]'") from None
        self._new, self._in, self._url = zstandard.ZstdDecompressor().decompressobj, stream, file.url
        self._d = self._new()
        self._out = b""
        self._started = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._out:
            chunk = self._in.read(1 << 20)
            if not chunk:
                if self._started and not self._d.eof:
                    raise Truncated(f"{self._url}: the zstd data ends inside a frame (the file is cut short)")
                return 0
            while chunk:
                if self._d.eof:  # the next frame
                    self._d = self._new()
                self._started = True
                self._out += self._d.decompress(chunk)
                chunk = self._d.unused_data if self._d.eof else b""
        n = min(len(b), len(self._out))
        b[:n], self._out = self._out[:n], self._out[n:]
        return n


_BOM = b"\xef\xbb\xbf"


def skip_bom(stream: Any, options: CsvOptions) -> None:
    """A UTF-8 byte-order mark (Excel writes one) is not the first field's: skipped, whatever reads on."""
    if options.server_encoding == "UTF8" and stream.peek(3)[:3] == _BOM:
        stream.read(3)


def _first_line(stream: Any) -> bytes:
    """The first line, ended by a line feed, a carriage return or both (old Macs wrote CR alone)."""
    line = b""
    while chunk := stream.peek(1 << 16):
        ends = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
        if ends:
            n = min(ends) + 1
            n += chunk[n - 1 : n + 1] == b"\r\n"
            rest: bytes = stream.read(n)
            return line + rest
        line += stream.read(len(chunk))
        if len(line) > 1 << 20:
            from .table import LoadError

            raise LoadError("the header line runs past 1 MB (is this a CSV file?); nothing was loaded")
    return line


def csv_header(stream: Any, options: CsvOptions) -> tuple[list[str], bytes]:
    """The header's column names and the header line's bytes (what was read of stream)."""
    skip_bom(stream, options)
    line = _first_line(stream)
    text = line.decode(options.encoding).rstrip("\r\n")
    names = next(csv.reader([text], delimiter=options.delimiter, quotechar=options.quote), [])
    return [n.strip() for n in names], line


def arrow_csv(stream: Any, names: list[str], types: dict[str, Any], options: CsvOptions) -> Iterator[Any]:
    """CSV record batches, each column parsed straight into the Arrow type of the table's column; the
    header already read (names)."""
    import pyarrow.csv as pacsv

    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK, encoding=options.encoding),
        parse_options=pacsv.ParseOptions(delimiter=options.delimiter, quote_char=options.quote),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=list(types),
            null_values=[options.null],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t", "true", "TRUE", "True", "1", "yes", "y", "on"],
            false_values=["f", "false", "FALSE", "False", "0", "no", "n", "off"],
        ),
    )
    yield from reader


def spooled(file: SourceFile) -> Any:
    """A local path to read file from at random (Parquet's footer is at its end): the file itself when
    it is local and uncompressed, else a temporary copy on disk (never in memory)."""
    from urllib.parse import unquote, urlparse

    if file.url.startswith("file://"):
        with closing(file.open()) as raw:
            if compression(file, raw.read(4)) is None:
                return unquote(urlparse(file.url).path)
    tmp = tempfile.NamedTemporaryFile(prefix="airflow-infra-load-", suffix=".parquet")  # noqa: SIM115
    with closing(file.open()) as raw, decompressed(file, raw) as stream:
        shutil.copyfileobj(stream, tmp, 1 << 20)
    tmp.flush()
    return tmp


def parquet_columns(path: Any) -> tuple[list[str], Any]:
    import pyarrow.parquet as pq

    # pages streamed through a small buffer, not whole column chunks (a row group can be 100s of MB)
    pf = pq.ParquetFile(path if isinstance(path, str) else path.name, buffer_size=1 << 20, pre_buffer=False)
    return pf.schema_arrow.names, pf


def parquet_batches(pf: Any, columns: list[str]) -> Iterator[Any]:
    yield from pf.iter_batches(batch_size=BATCH, columns=columns)


def jsonl_batches(stream: Any, types: dict[str, Any]) -> Iterator[Any]:
    """JSON lines in batches of BATCH lines, each parsed by Arrow; keys the table lacks are reported by
    the caller from the first batch's names."""
    import pyarrow as pa
    import pyarrow.json as pajson

    # JSON has no dates: they come as text, which the encoder casts (as it does Parquet's text columns);
    # the table's other columns (numeric, ...) as Arrow infers them
    schema = pa.schema([(n, pa.large_string() if pa.types.is_temporal(t) else t) for n, t in types.items()])
    while True:
        lines = [line for line in (stream.readline() for _ in range(BATCH)) if line]
        if not lines:
            return
        table = pajson.read_json(
            io.BytesIO(b"".join(lines)),
            parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer"),
        )
        yield from table.to_batches()


# what reading a file may meet: cut short (EOFError, Truncated), not what its name says (gzip, bz2, zlib:
# OSError, zlib.error), not in its encoding (UnicodeDecodeError)
FILE_ERRORS = (EOFError, Truncated, OSError, zlib.error, UnicodeDecodeError)


def unreadable(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not {exc.encoding} text at byte {exc.start} (pass --encoding)"
    if isinstance(exc, EOFError | Truncated):
        return "the compressed data ends before its end (the file is cut short)"
    return f"cannot be read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def arrow_errors() -> tuple[type[BaseException], ...]:
    try:
        import pyarrow as pa
    except ImportError:
        return ()
    return (pa.ArrowInvalid, pa.ArrowNotImplementedError)
