"""The state value and the contract every state backend keeps.

Contract (every backend passes tests/test_state_contract.py):
- read() returns an empty State (serial 0, a new lineage) when none exists; a state it cannot
  parse raises StateCorrupt and is left as it is.
- write(state) is atomic; it raises StateConflict when the stored serial is not state.serial - 1
  or the lineage differs (a writer working from stale state never overwrites newer state).
- lock(info) raises StateLocked(holder=LockInfo) when another holds the lock.
- unlock(lock_id) raises LockMismatch when lock_id is not the current lock's ID.
- every write keeps the state it replaces: versions() lists the current state and those kept
  (newest first; those it cannot parse left out), read_version(serial) returns one of them, None
  when it is not kept. overwrite(state) writes without the serial/lineage check (the corrupt
  state it replaces is kept like any other): only `state rollback`, under the lock, uses it.
- a state written by a newer release (its version above STATE_VERSION) raises StateTooNew.
- import_state(state) writes a whole state, serial and lineage kept, into a backend that holds
  none (state migrate); StateConflict when one is there.
- every write fences: a backend that took a lock checks, atomically with the write, that its lock is
  still the current one; after force-unlock or a take-over the old holder's write (and its next
  check_held) raises LeaseLost (lock_taken's words) and nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config

import getpass
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from .. import __version__
from ..errors import LeaseLost, LockMismatch, StateConflict, StateCorrupt, StateError, StateNotOurs, StateTooNew
from ..resources import Resource

STATE_VERSION = 1


@dataclass(frozen=True)
class State:
    serial: int = 0
    lineage: str = field(default_factory=lambda: str(uuid.uuid4()))
    resources: dict[str, Resource] = field(default_factory=dict)
    version: int = STATE_VERSION
    secrets: dict[str, str] = field(default_factory=dict)  # ref -> ciphertext ([secrets] store = "state")
    project: str | None = None  # whose state it is: recorded at the first write, checked by every command
    environment: str | None = None
    # address -> the name a create is about to use, written before the call (pulumi's pending
    # operations): what a kill leaves half-made (a bucket not yet tagged) is then known to be ours
    pending: dict[str, str] = field(default_factory=dict)
    # Secrets Manager secrets `connections push` wrote (name -> ARN): removed by destroy
    pushed: dict[str, str] = field(default_factory=dict)

    def with_resource(self, r: Resource) -> State:
        return replace(self, resources={**self.resources, r.address: r})

    def without(self, address: str) -> State:
        return replace(self, resources={a: r for a, r in self.resources.items() if a != address})

    def with_pending(self, creates: dict[str, str]) -> State:
        return replace(self, pending={**self.pending, **creates})

    def done(self, address: str) -> State:
        """address's pending create is over (recorded, or found not to have happened)."""
        return replace(self, pending={a: n for a, n in self.pending.items() if a != address})

    def to_json(self) -> str:
        doc = {
            "version": self.version,
            "serial": self.serial,
            "lineage": self.lineage,
            "resources": [self.resources[a].to_json() for a in sorted(self.resources)],
        }
        if self.secrets:
            doc["secrets"] = dict(sorted(self.secrets.items()))
        if self.project is not None:
            doc["project"], doc["environment"] = self.project, self.environment
        if self.pending:
            doc["pending"] = dict(sorted(self.pending.items()))
        if self.pushed:
            doc["pushed"] = dict(sorted(self.pushed.items()))
        return json.dumps(doc, sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> State:
        """StateTooNew for a state a newer release wrote (its meaning may have changed: never
        read it, let alone write it back); StateNotOurs naming Terraform for a Terraform state;
        ValueError/KeyError/TypeError when it is malformed."""
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if "terraform_version" in doc:  # a neighbour's state at our key: never ours to read, nor to overwrite
            raise StateNotOurs(
                f"holds a Terraform state (Terraform {doc['terraform_version']}), not airflow-infra's; it was left as "
                "it is: give airflow-infra a key of its own ([state] key), and take over what that state manages "
                "with `airflow-infra import-terraform`"
            )
        if int(doc["version"]) > STATE_VERSION:
            raise StateTooNew(
                f"state version {doc['version']} was written by a newer airflow-infra (this release reads up to "
                f"version {STATE_VERSION}): upgrade airflow-infra; the state was left as it is"
            )
        resources = {}
        for item in doc["resources"]:
            r = Resource.from_json(item)
            resources[r.address] = r
        return cls(
            serial=int(doc["serial"]),
            lineage=str(doc["lineage"]),
            resources=resources,
            version=int(doc["version"]),
            secrets=dict(doc.get("secrets", {})),
            project=doc.get("project"),
            environment=doc.get("environment"),
            pending={str(a): str(n) for a, n in dict(doc.get("pending", {})).items()},
            pushed={str(a): str(n) for a, n in dict(doc.get("pushed", {})).items()},
        )

    def claimed(self, project: str, environment: str) -> State:
        """This state as the given project's: StateError when it records another project or
        environment (a state file copied from another project)."""
        if self.project is None:
            return replace(self, project=project, environment=environment)
        if (self.project, self.environment) != (project, environment):
            raise StateError(
                f"the state belongs to project {self.project}, environment {self.environment}, not to project "
                f"{project}, environment {environment}: a state copied from another project? Nothing was changed"
            )
        return self


@dataclass(frozen=True)
class StateVersion:
    """One kept state: what `state versions` lists and `state rollback SERIAL` brings back."""

    serial: int
    lineage: str
    resources: int
    written: str  # ISO 8601, UTC
    where: str  # a file, an S3 object version, a history row
    current: bool = False  # the state read() returns (none is, when that one cannot be read)

    @classmethod
    def of(cls, state: State, where: str, written: datetime | float | str, *, current: bool = False) -> StateVersion:
        if isinstance(written, str):
            written = datetime.fromisoformat(written)
        elif not isinstance(written, datetime):
            written = datetime.fromtimestamp(written, UTC)
        return cls(
            state.serial,
            state.lineage,
            len(state.resources),
            written.astimezone(UTC).isoformat(timespec="seconds"),
            where,
            current,
        )


@dataclass(frozen=True)
class LockInfo:
    """Terraform's LockInfo fields, with Terraform's meanings (so each tool names the other's lock),
    and ours beside them: pid and host, which Terraform never writes."""

    ID: str
    Operation: str
    Who: str
    Version: str
    Created: str
    Path: str
    pid: int | None = None
    host: str | None = None
    Info: str = ""

    @classmethod
    def new(cls, operation: str, path: str) -> LockInfo:
        host = socket.gethostname()
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return cls(
            ID=str(uuid.uuid4()),
            Operation=operation,
            Who=f"{user}@{host}",
            Version=__version__,
            Created=datetime.now(UTC).isoformat(timespec="seconds"),
            Path=path,
            pid=os.getpid(),
            host=host,
            Info=f"airflow-infra {__version__} {operation}, pid {os.getpid()}",
        )

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> LockInfo:
        """A lock as stored: ours, or Terraform's (0.12 to 1.x); fields we do not know are left out."""
        known = {f.name for f in fields(cls)}
        if not isinstance(doc, dict) or not isinstance(doc.get("ID"), str) or not doc["ID"]:
            raise ValueError("not a lock: no ID")
        kept = {k: v for k, v in doc.items() if k in known}
        for k, v in kept.items():  # a lock changed by hand: wrong types are "not a lock", never a crash later
            if k == "pid" and not (v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31)):
                raise ValueError(f"not a lock: pid {v!r}")
            if k != "pid" and not (isinstance(v, str) or (v is None and k == "host")):
                raise ValueError(f"not a lock: {k} {v!r}")
        return cls(**{"ID": "", "Operation": "", "Who": "", "Version": "", "Created": "", "Path": "", **kept})

    @property
    def by_terraform(self) -> bool:
        return self.pid is None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2) + "\n"

    def describe(self) -> str:
        if self.by_terraform:
            return (
                f"state is locked by Terraform {self.Version}, {self.Who}, {self.Operation}, since {self.Created} "
                f"(lock ID {self.ID})"
            )
        return f"state is locked by {self.Who} since {self.Created} ({self.Operation}, lock ID {self.ID})"

    def held_message(self, *, expires: datetime | None = None) -> str:
        """StateLocked's words, the same on every backend: who holds it, whether the holder is gone
        when that can be told (this host: its process is gone; any host: its lease ran out), and how
        to get out."""
        from ..pids import pid_alive

        message = self.describe()
        if expires is not None:
            message += f"; its lease runs until {expires.isoformat(timespec='seconds')}"
        if self.ID.startswith("unreadable-"):
            return message + f"; nobody can read it: `airflow-infra force-unlock {self.ID}` removes it"
        if self.by_terraform:  # Terraform's locks have no lease: only a person can tell it is stale
            return (
                message + "; wait for it with --lock-timeout SECONDS; if no Terraform run holds it any more, "
                f"`airflow-infra force-unlock {self.ID}` (or `terraform force-unlock {self.ID}`) removes it"
            )
        if self.host == socket.gethostname() and self.pid is not None and not pid_alive(self.pid):
            gone = f"its process {self.pid} on this host is gone"
        elif expires is not None and expires < datetime.now(UTC):
            gone = "its lease ran out: the holder crashed or is stopped"
        else:
            return message + "; wait for it with --lock-timeout SECONDS"
        return message + f"; the lock is stale ({gone}): `airflow-infra force-unlock {self.ID}` removes it"


class StateBackend(Protocol):
    location: str  # where the state is, for messages and LockInfo.Path

    @classmethod
    def from_config(cls, config: Config, project_dir: Path) -> StateBackend: ...  # [state] of config

    def read(self) -> State: ...
    def write(self, state: State) -> None: ...
    def lock(self, info: LockInfo) -> None: ...
    def unlock(self, lock_id: str) -> None: ...
    def lock_info(self) -> LockInfo | None: ...
    def import_state(self, state: State) -> None: ...
    def versions(self) -> list[StateVersion]: ...  # newest first, the current state included
    def read_version(self, serial: int) -> State | None: ...  # a kept state; None when not kept
    def overwrite(self, state: State) -> None: ...  # unconditional: only `state rollback`, over a corrupt state
    def close(self) -> None: ...  # let go of connections/heartbeats, not the lock
    def check_held(self) -> None: ...  # LeaseLost when this run's lease may have run out


def parse_state(text: str, where: str, *, what: str = "state", hint: str = "") -> State:
    """State.from_json, its errors in one line naming where: StateTooNew for a newer release's,
    StateCorrupt for one that cannot be read (left as it is; hint says how to get back)."""
    try:
        return State.from_json(text)
    except StateTooNew as exc:
        raise StateTooNew(f"{where}: {exc}") from None
    except StateNotOurs as exc:
        raise StateNotOurs(f"{where}: {exc}") from None
    except StateCorrupt as exc:
        raise StateCorrupt(f"{where}: {exc}") from None
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise StateCorrupt(
            f"{where}: {what} is corrupt ({type(exc).__name__}: {exc}); it was left as it is"
            + (f": {hint}" if hint else "")
        ) from None


def check_successor(stored: State, new: State, where: str) -> None:
    """The one rule every backend's write keeps: the first state written is serial 1; each later one
    is the stored serial + 1, of the same lineage. StateConflict otherwise."""
    first = stored.serial == 0 and not stored.resources
    if (first and new.serial != 1) or (
        not first and (new.lineage != stored.lineage or new.serial != stored.serial + 1)
    ):
        now = "nothing stored" if first else f"stored serial {stored.serial}, lineage {stored.lineage}"
        raise StateConflict(
            f"{where}: state changed underneath this run ({now}; writing serial {new.serial}, lineage {new.lineage})"
        )


def lock_taken(where: str, lock_id: str, now: LockInfo | None) -> LeaseLost:
    """The fence's words, the same on every backend: this run's lock is gone (force-unlock, a take-over),
    so it writes and does nothing more."""
    held = f"held by {now.Who} (lock ID {now.ID})" if now is not None else "not held by anyone"
    return LeaseLost(
        f"{where}: the lock was taken from this run (its lock {lock_id} was force-unlocked or taken "
        f"over; the state is now {held}): this run writes and does nothing more; run the command again"
    )


def check_holder(holder: LockInfo | None, lock_id: str, where: str) -> None:
    """An unlock's precondition: the state is locked, and by lock_id; LockMismatch otherwise."""
    if holder is None:
        raise LockMismatch(f"{where}: state is not locked")
    if lock_id != holder.ID:
        raise LockMismatch(f"lock ID {lock_id!r} does not match the current lock ({holder.ID}); nothing was unlocked")


def acquire(backend: StateBackend, operation: str, path: str, timeout: float = 0.0) -> LockInfo:
    """Take the backend's lock, retrying until timeout seconds have passed."""
    import time

    from ..errors import StateLocked

    info = LockInfo.new(operation, path)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            backend.lock(info)
            return info
        except StateLocked as exc:
            if time.monotonic() >= deadline:
                if timeout > 0:
                    raise StateLocked(f"{exc} (waited {timeout:g} s)", holder=exc.holder) from None
                raise
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)


class Transaction:
    """The state under the lock: ``state`` as last written (or as read), ``commit(change)`` to write
    change(state) as the next serial. Commits from worker threads are serialised."""

    def __init__(self, backend: StateBackend, lock: LockInfo, *, read: bool = True):
        self.backend = backend
        self.lock = lock
        self._state: State | None = backend.read() if read else None
        self._mutex = threading.Lock()

    @property
    def state(self) -> State:
        if self._state is None:
            self._state = self.backend.read()
        return self._state

    def rebase(self, state: State) -> None:
        """Go on from state (a refreshed one, same serial and lineage) without writing it."""
        self._state = state

    def check_held(self) -> None:
        """LeaseLost when this run may no longer hold the lock: asked before every step."""
        self.backend.check_held()

    def commit(self, change: Callable[[State], State]) -> State:
        with self._mutex:
            self.backend.check_held()
            new = replace(change(self.state), serial=self.state.serial + 1)
            self.backend.write(new)
            self._state = new
            return new


@contextmanager
def transaction(
    backend: StateBackend, operation: str, *, timeout: float = 0.0, read: bool = True
) -> Iterator[Transaction]:
    """Lock -> read -> commit... -> unlock, the unlock on every way out. read=False leaves the first
    read to the caller (`state rollback` reads a state that may be corrupt)."""
    lock = acquire(backend, operation, backend.location, timeout)
    try:
        yield Transaction(backend, lock, read=read)
    finally:
        with suppress(StateError):  # removed by force-unlock meanwhile: nothing of ours to release
            backend.unlock(lock.ID)
