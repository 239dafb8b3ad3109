"""The local state backend: .airflow-infra/state.json beside the config, and a lock file.

The lock is a file created with O_EXCL holding LockInfo JSON; a crashed holder leaves it
behind, which is reported as stale (its pid is gone) and removed by force-unlock with its ID.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from ..errors import StateConflict, StateCorrupt, StateLocked
from .base import LockInfo, State, check_holder


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStateBackend:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.stem + ".lock")
        self.location = str(self.path)

    def read(self) -> State:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return State()
        except OSError as exc:
            raise StateCorrupt(f"{self.path}: cannot read state: {exc.strerror}") from None
        try:
            return State.from_json(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise StateCorrupt(
                f"{self.path}: state is corrupt ({type(exc).__name__}: {exc}); it was left as it is: "
                "restore it from a backup or version control"
            ) from None

    def write(self, state: State) -> None:
        current = self.read() if self.path.exists() else None
        if current is not None and (current.lineage != state.lineage or current.serial != state.serial - 1):
            raise StateConflict(
                f"{self.path}: state changed underneath this run (stored serial {current.serial}, "
                f"lineage {current.lineage}; writing serial {state.serial}, lineage {state.lineage})"
            )
        self._replace(state)

    def _replace(self, state: State) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            f.write(state.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    def import_state(self, state: State) -> None:
        if self.path.exists():
            raise StateConflict(f"{self.path}: a state is there already; nothing was overwritten")
        self._replace(state)

    def lock_info(self) -> LockInfo | None:
        try:
            return LockInfo(**json.loads(self.lock_path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise StateCorrupt(f"{self.lock_path}: lock file is unreadable ({type(exc).__name__}); remove it by hand") from None

    def lock(self, info: LockInfo) -> None:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = self.lock_info()
            if holder is None:  # released between our open and read: try once more
                return self.lock(info)
            message = holder.describe()
            if holder.host == socket.gethostname() and not _pid_alive(holder.pid):
                message += f"; the lock is stale (process {holder.pid} is gone): `airflow-infra force-unlock {holder.ID}` removes it"
            raise StateLocked(message, holder=holder) from None
        with os.fdopen(fd, "w") as f:
            f.write(info.to_json())
            f.flush()
            os.fsync(f.fileno())

    def unlock(self, lock_id: str) -> None:
        check_holder(self.lock_info(), lock_id, str(self.lock_path))
        self.lock_path.unlink()
