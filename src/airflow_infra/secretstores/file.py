"""The "file" store: generated passwords in AIRFLOW_INFRA_HOME/secrets.json (mode 0600).

The state and the config only ever hold a reference (``ref``); the value lives here, so that
neither file can leak it. Writes are read-modify-write under an flock, replaced atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config

import json
import logging
import os
import stat
from contextlib import contextmanager

from ..errors import AirflowInfraError
from ..flock import exclusive
from ..home import ensure_dir
from . import SecretStore, new_password, usable


class FileSecretStore(SecretStore):
    @classmethod
    def from_config(cls, config: Config, home: Path) -> FileSecretStore:
        return cls(home)

    def __init__(self, home: Path):
        self.path = home / "secrets.json"
        self._lock_path = home / ".secrets.lock"

    @contextmanager
    def _locked(self):
        ensure_dir(self.path.parent)
        # each holder keeps it for one read-modify-write of a small file: ten seconds mean it is stopped
        with exclusive(self._lock_path, timeout=10, what="the secret store's lock"):
            yield

    def _load(self) -> dict[str, str]:
        try:
            # never through a link: a link to someone else's file would be read, chmodded and replaced
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO there never blocks us
        except FileNotFoundError:
            return {}
        except OSError as exc:
            if self.path.is_symlink():
                raise AirflowInfraError(
                    f"{self.path}: the secret store is a symbolic link (to {os.readlink(self.path)}): "
                    "airflow-infra never reads, chmods or writes a secret store through a link; "
                    "put the file itself there"
                ) from None
            raise AirflowInfraError(f"{self.path}: cannot read the secret store ({exc.strerror})") from None
        try:
            with os.fdopen(fd) as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise AirflowInfraError(
                        f"{self.path}: the secret store is not a file; it was left as it is: move "
                        "it aside and run `airflow-infra apply` to set new passwords"
                    )
                mode = st.st_mode & 0o777
                if mode != 0o600:  # readable by others: fixed, and said (nothing silent)
                    os.fchmod(f.fileno(), 0o600)
                    logging.getLogger(__name__).warning(
                        f"{self.path}: the secret store had mode {mode:04o}; it was set to 0600"
                    )
                data = json.loads(f.read())
        except (OSError, ValueError) as exc:
            raise AirflowInfraError(
                f"{self.path}: cannot read the secret store ({type(exc).__name__}); it was left "
                "as it is: repair it, or move it aside and run `airflow-infra apply` to set new "
                "passwords"
            ) from None
        if not isinstance(data, dict):
            raise AirflowInfraError(
                f"{self.path}: the secret store is not a JSON object; it was left as it is: repair "
                "it, or move it aside and run `airflow-infra apply` to set new passwords"
            )
        return data

    def _value(self, data: dict[str, str], ref: str) -> str | None:
        return usable(data.get(ref))  # a blank or mangled value is missing

    def _save(self, data: dict[str, str]) -> None:
        target = self.path  # _load refused a link: the file is replaced in place
        tmp = target.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)  # a leftover, or a link someone put there: never written through
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)  # a leftover .tmp keeps the mode it had
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, sort_keys=True, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def get(self, ref: str) -> str | None:
        return self._value(self._load(), ref)

    def get_or_create(self, ref: str) -> str:
        """The secret under ref, generated (URL-safe, 32 bytes of entropy) on first use."""
        with self._locked():
            data = self._load()
            value = self._value(data, ref)
            if value is None:
                value = data[ref] = new_password()
                self._save(data)
            return value

    def put(self, ref: str, value: str) -> None:
        with self._locked():
            data = self._load()
            data[ref] = value
            self._save(data)

    def delete(self, ref: str) -> None:
        with self._locked():
            data = self._load()
            if data.pop(ref, None) is not None:
                self._save(data)
