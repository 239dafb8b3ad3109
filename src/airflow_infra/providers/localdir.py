"""The local target's bucket: a directory. A marker file says whose it is (ownership.py); an empty
directory with no marker is taken as ours, since taking it loses nothing."""

from __future__ import annotations

import os
import shutil
import tarfile
import zlib
from pathlib import Path

from ..backups import backup_dir, stamp, written_whole
from ..errors import ForeignResource, ProviderError
from ..files import read_text
from ..ownership import Owner, judge
from ..resources import Observed, Resource
from .base import Provider

MARKER = ".airflow-infra-bucket"


def _objects(path: Path) -> int:
    """Entries in the bucket (files, folders, links, empty ones too: each is something a user made, and
    a folder left behind would make a plain rmdir fail half-way through a destroy), its marker not counted."""
    return sum(
        len(dirs) + sum(not (f == MARKER and root == str(path)) for f in files) for root, dirs, files in os.walk(path)
    )


def _nested_bucket(path: Path) -> Path | None:
    """A bucket directory of another project inside path (its marker below the top); None."""
    for root, _, files in os.walk(path):
        if MARKER in files and root != str(path):
            return Path(root)
    return None


def _enclosing_bucket(path: Path) -> str | None:
    """The bucket directory path lies inside (a marker in one of its parents), in words; None."""
    for parent in path.parents:
        try:
            text = read_text(parent / MARKER)
        except OSError:
            continue
        owner = Owner.from_marker(text)
        return f"{parent} ({'made by ' + owner.describe() if owner else 'of airflow-infra'})"
    return None


class LocalBucketProvider(Provider):
    type = "local_bucket"
    force_new = frozenset({"path"})

    def __init__(self, owner: Owner):
        self.owner = owner

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        path = Path(r.attrs["path"])
        around = _enclosing_bucket(path)
        if around is not None:  # its files would be that bucket's, and go with it
            return Observed({"path": str(path)}, foreign=True, whose=f"inside the bucket {around}")
        if not path.is_dir():
            return None
        try:
            found = Owner.from_marker(read_text(path / MARKER))
        except OSError:
            found = None
        v = judge(self.owner, found, recorded=prior is not None)
        if not v.ours and found is None and not (path / MARKER).exists() and _objects(path) == 0:
            v = judge(self.owner, None, recorded=True)  # empty and unmarked: taking it loses nothing
        # private: only the owner may enter it (the workfiles are nobody else's to read)
        return Observed(
            {"path": str(path), "private": path.stat().st_mode & 0o077 == 0, "marked": v.marked},
            foreign=not v.ours,
            whose=v.whose,
        )

    def create(self, r: Resource) -> Observed:
        path = Path(r.attrs["path"])
        existing = self.read(r, None)
        if existing is not None and existing.foreign:
            raise ForeignResource(
                f"{r.address}: directory {path} exists, {existing.whose}: it is never taken over silently"
            )
        self.mark(r)
        return Observed({"path": str(path), "private": True, "marked": True})

    def mark(self, r: Resource) -> None:
        path = Path(r.attrs["path"])
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # e.g. AIRFLOW_INFRA_HOME/buckets
            path.mkdir(exist_ok=True, mode=0o700)
            os.chmod(path, 0o700)
            (path / MARKER).write_text(self.owner.marker() + "\n")
        except OSError as exc:
            raise ProviderError(f"{r.address}: cannot create {path}: {exc.strerror}") from None

    def update(self, r: Resource, prior: Observed) -> Observed:
        self.mark(r)
        return Observed({"path": r.attrs["path"], "private": True, "marked": True})

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
        return f"{n} entr{'ies' if n != 1 else 'y'} (files, folders, links)" if n else None

    def backup(self, r: Resource, observed: Observed, dest: Path) -> Path:
        """A .tar.gz of the directory (its marker left out), written whole under a temporary name."""
        path = Path(r.attrs["path"])
        nested = _nested_bucket(path)
        if nested is not None:
            found = Owner.from_marker(read_text(nested / MARKER))
            whose = found.describe() if found else "another project"
            raise ProviderError(
                f"{r.address}: {nested} is the bucket of {whose}, inside {path}: its files are not "
                "this project's to delete; nothing was deleted"
            )
        final = backup_dir(dest) / f"{path.name}-{stamp()}.tar.gz"
        with written_whole(final) as tmp, tarfile.open(tmp, "w:gz") as tar:
            for entry in sorted(path.iterdir()):
                if entry.name != MARKER:
                    tar.add(entry, arcname=entry.name)
        return final

    def restore(self, r: Resource, source: str, *, replace: bool = False) -> tuple[int, list[str]]:
        """Unpack a local bucket backup into r's directory: first whole into a staging directory
        beside what is there (an archive that cannot be read changes nothing), then, with replace,
        what was there is removed (the caller has backed it up) and the staged files moved in.
        Returns (files, skipped): members that cannot be restored safely (a link out of the bucket, a
        FIFO) are skipped and named."""
        path = Path(r.attrs["path"])
        staging = path / f".airflow-infra-restore.{os.getpid()}.partial"
        skipped: list[str] = []

        def safe(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
            try:
                return tarfile.data_filter(member, dest)
            except tarfile.FilterError as exc:
                skipped.append(f"{member.name} ({exc})")
                return None

        try:
            staging.mkdir(mode=0o700)
            with tarfile.open(source, "r:gz") as tar:
                tar.extractall(staging, filter=safe)
            for root, _, names in os.walk(staging):
                os.chmod(root, 0o700)
                for f in names:
                    if not os.path.islink(os.path.join(root, f)):
                        os.chmod(os.path.join(root, f), 0o600)
            files = _objects(staging)
            if replace:
                for entry in path.iterdir():
                    if entry.name != MARKER and entry != staging:
                        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
            for entry in staging.iterdir():
                os.rename(entry, path / entry.name)
        except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
            raise ProviderError(f"{source}: cannot restore into {path}: {exc}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return files, skipped
