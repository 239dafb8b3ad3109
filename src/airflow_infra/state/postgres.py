"""The PostgreSQL state backend: one row per project and environment, and a session-level
advisory lock.

Tables (made when missing): airflow_infra_state (project, environment, serial, lineage, state
jsonb), airflow_infra_state_history (the states each write replaced, the newest KEEP of them) and
airflow_infra_lock (project, environment, info jsonb, backend_pid). The lock is
pg_try_advisory_lock on a key derived from project/environment, held by a connection of its
own for as long as the lock is held: if the holder dies, the server releases it, so a crashed
run never leaves a stale lock. The lock row only makes the holder's LockInfo visible; it counts
only while its advisory lock is held. Writes are conditional on the stored serial and lineage.

Fencing: a run that holds the lock writes through its lock's own session, in a transaction that
first reads its lock row FOR UPDATE: after force-unlock (which ends that session) or another run's
lock, the write fails and nothing is written; check_held asks the same before every step.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, StateConflict, StateCorrupt, StateError, StateLocked, StateTooNew
from ..pgerrors import checked_dsn, ended, translated
from .base import LockInfo, State, StateVersion, check_holder, lock_taken, parse_state

if TYPE_CHECKING:
    from pathlib import Path

    import psycopg

    from ..config import Config

DDL = """
CREATE TABLE IF NOT EXISTS airflow_infra_state (
    project text NOT NULL, environment text NOT NULL, serial bigint NOT NULL, lineage text NOT NULL,
    state jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (project, environment));
CREATE TABLE IF NOT EXISTS airflow_infra_state_history (
    project text NOT NULL, environment text NOT NULL, serial bigint NOT NULL, lineage text NOT NULL,
    state jsonb NOT NULL, written_at timestamptz NOT NULL, PRIMARY KEY (project, environment, lineage, serial));
CREATE TABLE IF NOT EXISTS airflow_infra_lock (
    project text NOT NULL, environment text NOT NULL, info jsonb NOT NULL, backend_pid int NOT NULL,
    PRIMARY KEY (project, environment));
"""


class _Taken(Exception):
    """Our lock row names another lock (or none): the lock was taken from this run."""


class PostgresStateBackend:
    KEEP = 100  # previous states kept per project and environment

    def __init__(self, dsn: str, *, project: str, environment: str, dsn_env: str = "the DSN"):
        self._dsn = dsn
        self.project, self.environment = project, environment
        self.location = f"postgres:{project}/{environment}"
        self._dsn_env = dsn_env
        digest = hashlib.sha256(f"airflow-infra/{project}/{environment}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)
        self._holder: psycopg.Connection[Any] | None = None  # the connection holding our advisory lock
        self._held: str | None = None  # our lock's ID while we hold it (or held it: then writes are refused)
        self._ready = False
        self._mutex = threading.Lock()

    @classmethod
    def from_config(cls, config: Config, project_dir: Path) -> PostgresStateBackend:
        return cls.from_env(config.state.dsn_env, project=config.project.name, environment=config.project.environment)

    @classmethod
    def from_env(cls, dsn_env: str, *, project: str, environment: str) -> PostgresStateBackend:
        dsn = os.environ.get(dsn_env)
        if not dsn:
            raise ConfigError(
                f"[state] dsn_env: the environment variable {dsn_env} is not set; it must hold the "
                "connection string of the PostgreSQL database that keeps the state"
            )
        return cls(dsn, project=project, environment=environment, dsn_env=dsn_env)

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        checked_dsn(self._dsn, self._dsn_env)
        with translated(f"cannot connect to the state database of {self._dsn_env}", error=StateError, connecting=True):
            conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
        if not self._ready:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(7041234567)")  # one DDL at a time
                conn.execute(DDL)
            self._ready = True
        return conn

    def _where(self) -> tuple[str, str]:
        return self.project, self.environment

    # -- state -----------------------------------------------------------------------------
    def read(self) -> State:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT serial, lineage, state FROM airflow_infra_state WHERE project = %s AND environment = %s",
                self._where(),
            ).fetchone()
        if row is None:
            return State()
        serial, lineage, doc = row
        state = self._parse(doc)
        if state.serial != serial or state.lineage != lineage:
            raise StateCorrupt(
                f"{self.location}: the stored state disagrees with its row's serial/lineage; left as it is"
            )
        return state

    def _parse(self, doc: Any) -> State:
        return parse_state(json.dumps(doc), self.location, what="the stored state")

    _VERSIONS = """SELECT serial, lineage, state, updated_at, 'current' FROM airflow_infra_state
                   WHERE project = %s AND environment = %s
                   UNION ALL
                   SELECT serial, lineage, state, written_at, 'history' FROM airflow_infra_state_history
                   WHERE project = %s AND environment = %s
                   ORDER BY 4 DESC, 1 DESC"""

    def _kept(self) -> Iterator[tuple[State, datetime, str]]:
        """(state, written at, "current" or "history"), newest first; those that cannot be read left out."""
        with self._connect() as conn:
            rows = conn.execute(self._VERSIONS, self._where() * 2).fetchall()
        for _serial, _lineage, doc, at, kind in rows:
            try:
                yield self._parse(doc), at, kind
            except (StateCorrupt, StateTooNew):
                continue  # not a version anyone can restore

    def versions(self) -> list[StateVersion]:
        return [
            StateVersion.of(st, f"{self.location} ({kind}, serial {st.serial})", at, current=kind == "current")
            for st, at, kind in self._kept()
        ]

    def read_version(self, serial: int) -> State | None:
        kept = list(self._kept())
        current_lineage = next((st.lineage for st, _, kind in kept if kind == "current"), None)
        # the current lineage's first: a serial may have been written in an earlier lineage too
        matches = sorted((st for st, _, _ in kept if st.serial == serial), key=lambda st: st.lineage != current_lineage)
        return matches[0] if matches else None

    def overwrite(self, state: State) -> None:
        from psycopg.types.json import Jsonb

        with self._writing() as conn:
            conn.execute(
                "INSERT INTO airflow_infra_state_history (project, environment, serial, lineage, state, written_at) "
                "SELECT project, environment, serial, lineage, state, updated_at FROM airflow_infra_state "
                "WHERE project = %s AND environment = %s ON CONFLICT DO NOTHING",
                self._where(),
            )
            conn.execute(
                "INSERT INTO airflow_infra_state (project, environment, serial, lineage, state) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (project, environment) DO UPDATE SET serial = excluded.serial, lineage = excluded.lineage, "
                "state = excluded.state, updated_at = now()",
                (*self._where(), state.serial, state.lineage, Jsonb(json.loads(state.to_json()))),
            )

    @contextmanager
    def _writing(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection in a transaction to write in: when this object took the lock, its lock's own
        session, with the lock row read FOR UPDATE and checked to be ours (LeaseLost otherwise)."""

        if self._held is None:
            with self._connect() as plain, plain.transaction():
                yield plain
            return
        with self._mutex:
            conn = self._holder
            try:
                if conn is None or conn.closed:
                    raise _Taken()
                with ended(_Taken), conn.transaction():
                    row = conn.execute(
                        "SELECT info->>'ID' FROM airflow_infra_lock WHERE project = %s AND environment = %s FOR UPDATE",
                        self._where(),
                    ).fetchone()
                    if row is None or row[0] != self._held:
                        raise _Taken()
                    yield conn
            except _Taken:
                raise lock_taken(self.location, self._held, self._lock_info_or_none()) from None

    def _lock_info_or_none(self) -> LockInfo | None:
        try:
            return self.lock_info()
        except StateError:
            return None

    def write(self, state: State) -> None:
        from psycopg.types.json import Jsonb

        doc = Jsonb(json.loads(state.to_json()))
        with self._writing() as conn:
            # The state being replaced goes to the history first (same transaction).
            conn.execute(
                "INSERT INTO airflow_infra_state_history (project, environment, serial, lineage, state, written_at) "
                "SELECT project, environment, serial, lineage, state, updated_at FROM airflow_infra_state "
                "WHERE project = %s AND environment = %s AND serial = %s AND lineage = %s ON CONFLICT DO NOTHING",
                (*self._where(), state.serial - 1, state.lineage),
            )
            cur = conn.execute(
                "UPDATE airflow_infra_state SET serial = %s, state = %s, updated_at = now() "
                "WHERE project = %s AND environment = %s AND serial = %s AND lineage = %s",
                (state.serial, doc, *self._where(), state.serial - 1, state.lineage),
            )
            if cur.rowcount == 1:
                conn.execute(
                    "DELETE FROM airflow_infra_state_history WHERE project = %s AND environment = %s AND "
                    "(lineage, serial) NOT IN (SELECT lineage, serial FROM airflow_infra_state_history "
                    "WHERE project = %s AND environment = %s ORDER BY written_at DESC LIMIT %s)",
                    (*self._where(), *self._where(), self.KEEP),
                )
            elif state.serial == 1:
                cur = conn.execute(
                    "INSERT INTO airflow_infra_state (project, environment, serial, lineage, state) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (*self._where(), state.serial, state.lineage, doc),
                )
            if cur.rowcount == 1:
                return
            row = conn.execute(
                "SELECT serial, lineage FROM airflow_infra_state WHERE project = %s AND environment = %s", self._where()
            ).fetchone()
        stored = f"stored serial {row[0]}, lineage {row[1]}" if row else "nothing stored"
        raise StateConflict(
            f"{self.location}: state changed underneath this run ({stored}; writing serial "
            f"{state.serial}, lineage {state.lineage})"
        )

    def import_state(self, state: State) -> None:
        from psycopg.types.json import Jsonb

        with self._writing() as conn:
            cur = conn.execute(
                "INSERT INTO airflow_infra_state (project, environment, serial, lineage, state) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (*self._where(), state.serial, state.lineage, Jsonb(json.loads(state.to_json()))),
            )
        if cur.rowcount != 1:
            raise StateConflict(f"{self.location}: a state is there already; nothing was overwritten")

    # -- lock ------------------------------------------------------------------------------
    _HELD = """SELECT l.info, l.backend_pid FROM airflow_infra_lock l
               WHERE l.project = %s AND l.environment = %s AND EXISTS (
                   SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.granted AND p.objsubid = 1
                     AND p.pid = l.backend_pid
                     AND ((p.classid::bigint << 32) | p.objid::bigint) = %s)"""

    def lock_info(self) -> LockInfo | None:
        with self._connect() as conn:
            row = conn.execute(self._HELD, (*self._where(), self._key)).fetchone()
        if row is None:
            return None
        try:
            return LockInfo.from_doc(row[0])
        except ValueError:  # a row changed by hand: named by its session, which force-unlock then ends
            return LockInfo(
                ID=f"unreadable-{row[1]}",
                Operation="unknown",
                Who="unknown (the lock row is not a lock)",
                Version="",
                Created="",
                Path=self.location,
                pid=0,
                host="",
            )

    def lock(self, info: LockInfo) -> None:
        from psycopg.types.json import Jsonb

        while True:
            conn = self._connect()
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
            if row is not None and row[0]:
                break
            conn.close()
            holder = self.lock_info()
            if holder is not None:
                raise StateLocked(holder.held_message(), holder=holder)
            # The holder let go, or has not written its LockInfo yet: look again in a moment.
            time.sleep(0.01)
        with self._mutex:
            conn.execute(
                "INSERT INTO airflow_infra_lock (project, environment, info, backend_pid) "
                "VALUES (%s, %s, %s, pg_backend_pid()) ON CONFLICT (project, environment) "
                "DO UPDATE SET info = excluded.info, backend_pid = excluded.backend_pid",
                (*self._where(), Jsonb(json.loads(info.to_json()))),
            )
            self._holder, self._held = conn, info.ID

    def check_held(self) -> None:
        """The lock is the holder's session's: held while the session lives and its row names our lock
        (force-unlock ends the session): LeaseLost otherwise."""
        if self._held is None:
            return
        with self._writing():
            pass

    def close(self) -> None:
        """Close this process's connections, without unlocking first: as a crash would (the server
        releases a session's advisory lock with the session)."""
        with self._mutex:
            if self._holder is not None:
                self._holder.close()
                self._holder = None

    def unlock(self, lock_id: str) -> None:
        check_holder(self.lock_info(), lock_id, str(self.location))
        with self._mutex:
            if self._holder is not None and self._held == lock_id:
                self._holder.execute(
                    "DELETE FROM airflow_infra_lock WHERE project = %s AND environment = %s", self._where()
                )
                self._holder.close()  # ends the session: the advisory lock goes with it
                self._holder, self._held = None, None
                return
        # force-unlock of another process's lock: end the session that holds it (that lock's only: it
        # may have changed hands since it was checked)
        which = "backend_pid::text = %s" if lock_id.startswith("unreadable-") else "info->>'ID' = %s"
        key = lock_id.removeprefix("unreadable-")
        with self._connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(backend_pid) FROM airflow_infra_lock WHERE project = %s AND environment = %s "
                f"AND {which}",
                (*self._where(), key),
            )
            conn.execute(
                f"DELETE FROM airflow_infra_lock WHERE project = %s AND environment = %s AND {which}",
                (*self._where(), key),
            )
