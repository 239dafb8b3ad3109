"""What a load reads: SOURCE resolved into files, each with what identifies this version of it.

SOURCE is a key, prefix or glob in the project's bucket (`incoming/2024-*.csv.gz`), an `s3://` or
`file://` URL, or a local path (a file, a folder, a glob). A file's identity for the ledger is its URL
and version: S3's version id where the bucket keeps versions, else its ETag; a local file's size,
modification time (ns) and inode. A file rewritten in place is a new version: it is loaded again.
"""

from __future__ import annotations

import fnmatch
import glob as globmod
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from ..errors import ConfigError

_GLOB = set("*?[")


class Readable(Protocol):
    """What a load reads bytes from: a file, a response body, a decompressor."""

    def read(self, n: int = -1, /) -> bytes: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class SourceFile:
    url: str  # file:///abs/path or s3://bucket/key
    version: str  # what makes this content this version (see the module's docstring)
    size: int
    open: Callable[[], Readable]  # a fresh binary stream of its bytes, as stored (still compressed)

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def _local(path: Path) -> SourceFile:
    st = path.stat()
    return SourceFile(
        path.resolve().as_uri(),
        f"{st.st_size}-{st.st_mtime_ns}-{st.st_ino}",
        st.st_size,
        lambda: open(path, "rb"),  # noqa: SIM115 - the caller closes it
    )


def _local_files(spec: str) -> list[SourceFile]:
    path = Path(spec).expanduser()
    if _GLOB & set(spec):
        found = [Path(p) for p in sorted(globmod.glob(str(path), recursive=True))]
    elif path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    elif path.is_file():
        found = [path]
    else:
        raise ConfigError(f"SOURCE {spec!r}: no such file or folder")
    return [_local(p) for p in found if p.is_file()]


def _s3_files(s3: Any, bucket: str, spec: str) -> list[SourceFile]:
    """Objects at key spec, under prefix spec, or matching glob spec (its part before the first wildcard
    is listed); with their version ids where the bucket keeps versions."""
    from ..aws.clients import NotFound, aws

    where = f"s3://{bucket}/{spec}"
    wild = next((i for i, ch in enumerate(spec) if ch in _GLOB), None)
    listed = spec[:wild] if wild is not None else spec
    keys = []
    with aws(where, "list"):
        if wild is None:
            try:
                s3.head_object(Bucket=bucket, Key=spec)
                keys = [spec]
            except NotFound:
                listed = spec if spec.endswith("/") or not spec else spec + "/"
        if not keys:
            pattern = _segments(spec) if wild is not None else None
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=listed):
                for o in page.get("Contents", []):
                    key = o["Key"]
                    if key.endswith("/") or key.rsplit("/", 1)[-1].startswith("."):
                        continue  # folder markers, our own markers (.airflow-infra)
                    if pattern is None or pattern.fullmatch(key):
                        keys.append(key)
        out = []
        for key in keys:  # each object's own version, read by it: a key and a glob name the same version
            head = s3.head_object(Bucket=bucket, Key=key)
            out.append(_s3(s3, bucket, key, head.get("VersionId"), head["ETag"], head["ContentLength"]))
    return out


def _segments(glob: str) -> re.Pattern[str]:
    """A glob over keys as over paths: * and ? stay within one /-separated part, ** crosses them."""
    parts = re.split(r"(\*\*/?|\*|\?)", glob)
    out = ""
    for part in parts:
        if part in ("**", "**/"):
            out += ".*"
        elif part == "*":
            out += "[^/]*"
        elif part == "?":
            out += "[^/]"
        else:
            out += fnmatch.translate(part)[4:-3] if "[" in part else re.escape(part)
    return re.compile(out)


def _s3(s3: Any, bucket: str, key: str, version: str | None, etag: str, size: int) -> SourceFile:
    from ..aws.clients import aws

    def open_() -> Readable:
        with aws(f"s3://{bucket}/{key}", "read"):
            body = s3.get_object(Bucket=bucket, Key=key, **({"VersionId": version} if version else {}))["Body"]
        return _Stream(body, f"s3://{bucket}/{key}")

    # the version id where the bucket keeps versions ("null": an object from before versioning), else the ETag
    return SourceFile(
        f"s3://{bucket}/{key}", version if version not in (None, "null") else etag.strip('"'), size, open_
    )


class _Stream:
    """A response body as a file to read from (its errors ours)."""

    def __init__(self, body: Any, url: str):
        self._body, self._url = body, url
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        from ..aws.clients import aws

        with aws(self._url, "read"):
            data: bytes = self._body.read(n if n >= 0 else None)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True
        self._body.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def resolve(spec: str, *, bucket_url: str | None, s3_client: Callable[[], Any] | None) -> list[SourceFile]:
    """The files SOURCE names, sorted by URL (a load's order is the same every time)."""
    parsed = urlparse(spec)
    if parsed.scheme == "s3":
        if s3_client is None:
            raise ConfigError(f"SOURCE {spec!r}: reading from S3 needs boto3: pip install 'airflow-infra[s3]'")
        files = _s3_files(s3_client(), parsed.netloc, parsed.path.lstrip("/"))
    elif parsed.scheme == "file":
        files = _local_files(unquote(parsed.path))
    elif parsed.scheme:
        raise ConfigError(f"SOURCE {spec!r}: a path, a key in the project's bucket, s3:// or file://")
    elif not spec.strip():
        raise ConfigError("SOURCE '': name a key, prefix or glob in the project's bucket, a URL or a path")
    elif os.path.isabs(spec) or spec.startswith(("./", "../", "~")):  # a bare name is a key of the bucket
        files = _local_files(spec)
    else:
        files = _in_bucket(spec, bucket_url, s3_client)
    if not files:
        raise ConfigError(f"SOURCE {spec!r}: no file matches")
    return sorted(files, key=lambda f: f.url)


def _in_bucket(spec: str, bucket_url: str | None, s3_client: Callable[[], Any] | None) -> list[SourceFile]:
    """A key, prefix or glob of the project's bucket; never a file outside it (links, ..)."""
    if bucket_url is None:
        raise ConfigError(f"SOURCE {spec!r}: the project has no bucket yet (run `airflow-infra apply`)")
    if bucket_url.startswith("s3://"):
        bucket, _, prefix = bucket_url[5:].partition("/")
        if s3_client is None:
            raise ConfigError(f"SOURCE {spec!r}: reading from S3 needs boto3: pip install 'airflow-infra[s3]'")
        return _s3_files(s3_client(), bucket, prefix + spec.lstrip("/"))
    root = Path(unquote(urlparse(bucket_url).path))
    try:
        files = _local_files(str(root / spec.lstrip("/")))
    except ConfigError:
        raise ConfigError(f"SOURCE {spec!r}: no such file or folder in the project's bucket ({root})") from None
    outside = [f for f in files if not Path(unquote(urlparse(f.url).path)).is_relative_to(root.resolve())]
    if outside:
        raise ConfigError(f"SOURCE {spec!r}: {outside[0].url} is outside the project's bucket")
    return files


def chunks(stream: Readable, size: int = 1 << 20) -> Iterator[bytes]:
    while block := stream.read(size):
        yield block
