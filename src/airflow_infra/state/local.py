"""The local state backend: .airflow-infra/state.json beside the config, and a lock file.

Every write keeps the state it replaces as state.json.backup (a hard link to the old file, so the
copy costs no I/O and is never partial). The lock file is written whole under a temporary name
and linked into place, so a reader never sees a partial lock; a crashed holder leaves it behind,
which is reported as stale (its pid is gone) and removed by force-unlock with its ID.

Fencing: taking, releasing and force-unlocking the lock and every write of the state happen under
an flock on state.guard, and a write by a run that took the lock first checks that the lock file
still names its lock ID: after force-unlock (and another run's lock) the old holder writes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config

import glob
import json
import os
from contextlib import AbstractContextManager
from pathlib import Path

from ..errors import StateConflict, StateCorrupt, StateError, StateLocked
from ..files import read_text
from ..flock import exclusive
from ..pids import dead_leftovers, own_temp
from .base import LockInfo, State, StateVersion, check_holder, check_successor, lock_taken, parse_state

GUARD_WAIT = 10.0  # seconds: the guard is held for one file operation; longer means its holder is stopped


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_whole(path: Path, text: str) -> None:
    """Write text to a new file, durably (the caller renames or links it into place)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


class LocalStateBackend:
    @classmethod
    def from_config(cls, config: Config, project_dir: Path) -> LocalStateBackend:
        return cls(Path(project_dir) / config.state.path)

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.stem + ".lock")
        self.backup_path = self.path.with_name(self.path.name + ".backup")
        self.guard_path = self.path.with_name(self.path.stem + ".guard")
        self.location = str(self.path)
        self._held: str | None = None  # the ID of the lock this object took, while it holds it

    def _guard(self) -> AbstractContextManager[None]:
        """The lock's and the state's changes one at a time (see the module's docstring)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return exclusive(
            self.guard_path,
            timeout=GUARD_WAIT,
            what="the state's guard (a run stopped while writing the state keeps it)",
        )

    def _fence(self) -> None:
        """LeaseLost when this object took the lock and the lock file no longer names it."""
        if self._held is None:
            return
        now = self.lock_info()
        if now is None or self._held != now.ID:
            raise lock_taken(str(self.lock_path), self._held, now)

    def _tmp(self, of: Path) -> Path:
        return own_temp(of, ".tmp")

    def _clean_leftovers(self) -> None:
        """Our own temporary files of killed runs on this host (see pids.dead_leftovers)."""
        for of in (self.path, self.backup_path, self.lock_path):
            for leftover in dead_leftovers(of.parent, ".tmp", glob.escape(of.name)):
                leftover.unlink(missing_ok=True)

    def _parse(self, path: Path) -> State:
        try:
            text = read_text(path)
        except FileNotFoundError:
            raise StateCorrupt(f"{path}: no such file") from None
        except OSError as exc:
            raise StateCorrupt(f"{path}: cannot read state: {exc.strerror}") from None
        hint = (
            f"`airflow-infra state rollback {self._backup_serial()}` brings back the previous one"
            if self.backup_path.exists() and path != self.backup_path
            else "restore it from version control"
        )
        return parse_state(text, str(path), hint=hint)

    def _backup_serial(self) -> str:
        try:
            return str(State.from_json(read_text(self.backup_path)).serial)
        except (OSError, ValueError, KeyError, TypeError, OverflowError, StateError):
            return "SERIAL"

    def read(self) -> State:
        if not self.path.exists():
            return State()
        return self._parse(self.path)

    def write(self, state: State) -> None:
        with self._guard():
            self._fence()
            check_successor(self.read(), state, str(self.path))
            self._replace(state)

    def _replace(self, state: State) -> None:
        try:
            self._replace_files(state)
        except OSError as exc:
            where = exc.filename2 or exc.filename or self.path
            raise StateError(
                f"{where}: cannot write the state there ({exc.strerror}); the state was left as it "
                "was: put right what is in that place (a folder or link where a file belongs?)"
            ) from None

    def _replace_files(self, state: State) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clean_leftovers()
        tmp = self._tmp(self.path)
        try:
            _write_whole(tmp, state.to_json())
            if self.path.exists():
                # The previous state stays as state.json.backup: a link to the old file, made
                # under a temporary name and renamed, so the backup is always a whole state.
                link = self._tmp(self.backup_path)
                link.unlink(missing_ok=True)
                os.link(self.path, link)
                os.replace(link, self.backup_path)
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)

    def import_state(self, state: State) -> None:
        with self._guard():
            self._fence()
            if self.path.exists():
                raise StateConflict(f"{self.path}: a state is there already; nothing was overwritten")
            self._replace(state)

    def _kept(self) -> list[tuple[Path, State]]:
        out = []
        for path in (self.path, self.backup_path):
            try:
                out.append((path, self._parse(path)))
            except StateError:
                continue  # missing or unreadable: not a version anyone can restore
        return out

    def versions(self) -> list[StateVersion]:
        return [
            StateVersion.of(st, str(path), os.stat(path).st_mtime, current=path == self.path)
            for path, st in self._kept()
        ]

    def read_version(self, serial: int) -> State | None:
        return next((st for _, st in self._kept() if st.serial == serial), None)

    def overwrite(self, state: State) -> None:
        with self._guard():
            self._fence()
            self._replace(state)

    def lock_info(self) -> LockInfo | None:
        try:
            return LockInfo.from_doc(json.loads(read_text(self.lock_path, follow=False)))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            # Only an older release or a hand could leave this (ours are linked into place whole): empty,
            # partial, not a lock's shape, a link, a folder. It gets an ID of its own, so that
            # force-unlock can remove it like any other lock.
            try:
                st = os.lstat(self.lock_path)
            except FileNotFoundError:
                return None
            return LockInfo(
                ID=f"unreadable-{st.st_ino}",
                Operation="unknown",
                Who="unknown (the lock file is empty, partial or not a lock)",
                Version="",
                Created="",
                Path=str(self.lock_path),
                pid=0,
                host="",
            )

    def lock(self, info: LockInfo) -> None:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        self._clean_leftovers()
        tmp = self._tmp(self.lock_path)
        try:
            _write_whole(tmp, info.to_json())
            for _ in range(100):  # a lock released between our link and read: try again, a bounded number of times
                try:
                    with self._guard():
                        os.link(tmp, self.lock_path)  # fails when a lock is there: the lock's atomic test-and-set
                    self._held = info.ID
                    return
                except FileExistsError:
                    holder = self.lock_info()
                    if holder is None:  # released between our link and read: try once more
                        continue
                    raise StateLocked(self._describe(holder), holder=holder) from None
            raise StateLocked(
                f"{self.lock_path}: the lock kept changing hands while this run tried to take it; try again"
            )
        finally:
            tmp.unlink(missing_ok=True)

    def _describe(self, holder: LockInfo) -> str:
        if holder.ID.startswith("unreadable-"):
            return (
                f"{self.lock_path} is not a lock airflow-infra wrote (empty, partial, or changed by hand): "
                f"`airflow-infra force-unlock {holder.ID}` removes it once no other run is going on"
            )
        return holder.held_message()

    def check_held(self) -> None:
        """A lock file has no lease: it is held until unlocked, or force-unlocked (LeaseLost then)."""
        self._fence()

    def close(self) -> None:
        """Nothing is held open between calls."""

    def unlock(self, lock_id: str) -> None:
        with self._guard():
            check_holder(self.lock_info(), lock_id, str(self.lock_path))
            try:
                if self.lock_path.is_dir() and not self.lock_path.is_symlink():
                    self.lock_path.rmdir()  # a folder made by hand in the lock's place: only an empty one
                else:
                    self.lock_path.unlink()
            except OSError as exc:
                raise StateError(
                    f"{self.lock_path}: cannot remove it ({exc.strerror}); remove it by hand once no run is going on"
                ) from None
        if self._held == lock_id:
            self._held = None
