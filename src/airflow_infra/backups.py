"""Backups: what --force-delete-data writes before anything is deleted, and what `restore` reads.

A backup named like a complete one is always complete: files are written under a temporary
name (``.<name>.<host>.<pid>.partial``) and renamed when whole; leftovers of killed runs on this
host are removed by the next backup into the same place. Kinds, told apart by name:

- ``<database>[-<schema>]-<stamp>.dump``: pg_dump's custom format (pg_restore reads it);
- ``<directory>-<stamp>.tar.gz``: a local bucket;
- ``<bucket>-<stamp>.manifest.json``: an S3 bucket or prefix, every version and delete marker.
  The objects lie beside it under ``objects/``, each named by a digest of where it came from
  (bucket, key, version, ETag), so that any key S3 allows (``..``, a leading ``/``, 1,000
  bytes, a newline) is kept byte for byte and none collides. The manifest is written last: it
  *is* the backup, in a directory or under an s3:// prefix alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .pids import dead_leftovers, own_temp

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = "airflow-infra bucket backup"


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def backup_dir(path: Path) -> Path:
    """A directory for backups (made 0700; one the user configured keeps its mode, the files in it
    are 0600 and objects/ 0700); partial files of dead runs removed."""
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for leftover in dead_leftovers(path, ".partial") + dead_leftovers(path / "objects", ".partial"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink(missing_ok=True)
    return path


@contextmanager
def written_whole(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside final; rename it to final when the block succeeds, remove it
    when it fails."""
    tmp = own_temp(final, ".partial")
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
        os.rename(tmp, final)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def object_name(bucket: str, v: dict) -> str:
    """Where a version's bytes go in a backup: a digest of its identity, never its key."""
    ident = json.dumps([bucket, v["Key"], v["VersionId"], v.get("ETag", ""), str(v.get("LastModified", ""))])
    return "objects/" + hashlib.sha256(ident.encode()).hexdigest()


def is_bucket_backup(where: str) -> bool:
    return where.endswith(MANIFEST_SUFFIX)


def manifest_doc(bucket: str, prefix: str, versions: list[dict[str, Any]]) -> dict:
    return {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "bucket": bucket,
        "prefix": prefix,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions,
    }


def check_manifest(doc: Any, where: str) -> dict:
    from .errors import ConfigError

    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT or not isinstance(doc.get("versions"), list):
        raise ConfigError(f"{where}: not a bucket backup written by airflow-infra")
    for v in doc["versions"]:  # a manifest names its copies; never a path of its own choosing
        if not v.get("DeleteMarker") and not re.fullmatch(r"objects/[0-9a-f]{64}", str(v.get("Object", ""))):
            raise ConfigError(f"{where}: not a bucket backup written by airflow-infra (copy {v.get('Object')!r})")
    if doc.get("version", 0) > 1:
        raise ConfigError(f"{where}: written by a newer airflow-infra (manifest version {doc['version']}): upgrade it")
    return doc


def history_order(versions: list[dict]) -> list[dict]:
    """Versions oldest first per key (the latest last), so replaying them rebuilds each key's history."""
    return sorted(versions, key=lambda v: (v["Key"], v["IsLatest"], v.get("LastModified", "")))
