"""`airflow-infra backup`: the project's database and bucket backed up on demand, as the backups a
destructive command writes first (pg_dump's custom format; the bucket's every version, or a local
bucket's archive), into the project's backup location, each written whole under a temporary name.
`backup list` shows them; `restore BACKUP` takes them back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import StateError
from .project import Project

# what holds data, and is backed up: the database (a dump) and the bucket (its versions, or an archive)
BACKED_UP = ("postgres_database", "local_bucket", "s3_bucket", "s3_prefix")
_STAMP = re.compile(r"-(\d{8}T\d{12}Z)\.(dump|tar\.gz|manifest\.json)$")


@dataclass(frozen=True)
class BackupResult:
    project: str
    backups: list[str]  # a path each (or an RDS snapshot's id)
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "backups": self.backups, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class BackupFile:
    path: str
    kind: str  # database, bucket
    size: int
    taken: datetime

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "bytes": self.size, "taken": self.taken.isoformat()}


def backup(project: Project, *, lock_timeout: float = 0.0) -> BackupResult:
    """Back up what the project holds data in, now: its database and its bucket. Under the state's lock
    (what is backed up is what the state says is the project's); nothing is changed."""
    from ..resources import Observed
    from ..state.base import transaction

    project.check_locations()
    started = time.monotonic()
    target = project.target()
    try:
        with transaction(project.backend(), "backup", timeout=lock_timeout) as txn:
            holding = [r for r in txn.state.resources.values() if r.type in BACKED_UP]
            if not holding:
                raise StateError(
                    f"{project.dir}: the project has no database or bucket in its state to back up: run "
                    "`airflow-infra up` (or apply) first"
                )
            providers = target.providers(project.claim(txn.state).lineage)
            done = [str(providers[r.type].backup(r, Observed(r.attrs), project.backup_dir)) for r in holding]
    finally:
        target.close()
    return BackupResult(project.config.project.name, done, time.monotonic() - started)


def backup_list(project: Project) -> list[BackupFile]:
    """The backups of this project's database and bucket in its backup location (those a destructive
    command wrote too), oldest first."""
    state = project.backend().read()  # (read without the lock, as `state list` does)
    names = {_name(r.type, r.attrs) for r in state.resources.values() if r.type in BACKED_UP}
    found = []
    where = project.backup_dir
    for f in sorted(where.iterdir()) if where.is_dir() else []:
        m = _STAMP.search(f.name)
        if m is None or not f.is_file():
            continue
        stem = f.name[: m.start()]
        if any(stem == n or stem.startswith(n + "-") for n in names):  # (n-schema: a schema's dump)
            taken = datetime.strptime(m.group(1), "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
            kind = "database" if m.group(2) == "dump" else "bucket"
            found.append(BackupFile(str(f), kind, f.stat().st_size, taken))
    return sorted(found, key=lambda b: b.taken)


def _name(kind: str, attrs: Mapping[str, Any]) -> str:
    if kind == "local_bucket":
        return Path(attrs["path"]).name
    return str(attrs.get("name") or attrs.get("bucket") or "")
