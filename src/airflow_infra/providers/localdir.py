"""The local target's bucket: a directory. A marker file says airflow-infra made it."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ForeignResource, ProviderError
from ..resources import Observed, Resource

MARKER = ".airflow-infra-bucket"


def _objects(path: Path) -> int:
    """Files in the bucket, its own marker not counted."""
    return sum(1 for root, _, files in os.walk(path) for f in files if not (f == MARKER and root == str(path)))


class LocalBucketProvider:
    type = "local_bucket"
    force_new = frozenset({"path"})

    def __init__(self, project: str):
        self.project = project

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        path = Path(r.attrs["path"])
        if not path.is_dir():
            return None
        ours = (path / MARKER).is_file() or _objects(path) == 0  # an empty directory loses nothing if adopted
        return Observed({"path": str(path)}, foreign=not ours)

    def create(self, r: Resource) -> Observed:
        path = Path(r.attrs["path"])
        existing = self.read(r, None)
        if existing is not None and existing.foreign:
            raise ForeignResource(f"{r.address}: directory {path} exists, holds files and was not made by airflow-infra")
        try:
            path.mkdir(parents=True, exist_ok=True)
            (path / MARKER).write_text(f"managed by airflow-infra: project {self.project}\n")
        except OSError as exc:
            raise ProviderError(f"{r.address}: cannot create {path}: {exc.strerror}") from None
        return Observed({"path": str(path)})

    def update(self, r: Resource, prior: Observed) -> Observed:
        return self.create(r)

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        path = Path(r.attrs["path"])
        if not path.exists():
            return
        try:
            if force:
                shutil.rmtree(path)
            else:
                (path / MARKER).unlink(missing_ok=True)
                path.rmdir()  # fails when anything is left: data is never deleted without force
        except OSError as exc:
            raise ProviderError(f"{r.address}: cannot delete {path}: {exc.strerror}") from None

    def holds_data(self, r: Resource, observed: Observed) -> str | None:
        path = Path(r.attrs["path"])
        n = _objects(path) if path.is_dir() else 0
        return f"{n} object{'s' if n != 1 else ''}" if n else None

    def backup(self, r: Resource, observed: Observed, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = Path(r.attrs["path"])
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        return Path(shutil.make_archive(str(dest / f"{path.name}-{stamp}"), "gztar", root_dir=path))
