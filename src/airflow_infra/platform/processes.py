"""The platform's four Airflow processes, each in a session of its own (so that it and its children are
stopped together), with a log file and a pid file ("<pid> <start time> <config digest>"): the start time
tells a live component from a reused pid after a reboot, the digest one started with another
configuration (restarted by the next `up`).

Each component is started holding a lock of its own (run/<component>.lock, flocked, its descriptor
inherited): the kernel says which processes hold it, whatever they do to their title or environment
(the api-server rewrites both). A component is running when its main process lives and is not stopped
(SIGSTOP: hung, restarted by `up`). What a component leaves behind — its children after its main process
was killed, a copy whose pid file was deleted — holds the lock still: it is found by it and stopped
before anything is started again. Logs and run files are this account's only."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import PlatformError
from ..files import write_private
from ..flock import exclusive

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name: [state, ppid, pgrp, ...]; None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot; None when it is gone or a zombie."""
    fields = _stat(pid)
    return None if fields is None or fields[0] in ("Z", "X") else fields[19]


@dataclass(frozen=True)
class Running:
    pid: int
    digest: str


class Supervisor:
    def __init__(self, root: Path, airflow_home: Path | None = None):
        self.root = root
        self.run = root / "run"
        self.logs = root / "logs"
        self.airflow_home = airflow_home or root / "airflow"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One `up` or `down` at a time: two at once would start a component twice."""
        self.run.mkdir(parents=True, exist_ok=True, mode=0o700)
        with exclusive(self.run / "platform.lock"):
            yield

    def _pidfile(self, component: str) -> tuple[int, str, str] | None:
        try:
            pid, started, digest = (self.run / f"{component}.pid").read_text().split()
            return int(pid), started, digest
        except (OSError, ValueError):  # missing, or not ours in form: stale
            return None

    def running(self, component: str) -> Running | None:
        found = self._pidfile(component)
        if found is None or _start_time(found[0]) != found[1]:
            return None
        stat = _stat(found[0])
        if stat is None or stat[0] == "T":  # stopped (SIGSTOP): it answers nothing, so it is not running
            return None
        return Running(found[0], found[2])

    def _lock(self, component: str) -> Path:
        return self.run / f"{component}.lock"

    def holders(self, component: str) -> set[int]:
        """The processes that hold the component's lock: it, its children, and any copy of it."""
        try:
            st = os.stat(self._lock(component))
        except OSError:
            return set()
        want, out = (st.st_dev, st.st_ino), set()
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                fds = list((d / "fd").iterdir())
            except OSError:  # gone, or not ours to read
                continue
            for fd in fds:
                try:
                    found = os.stat(fd)
                except OSError:
                    continue
                if (found.st_dev, found.st_ino) == want:
                    out.add(int(d.name))
                    break
        return out

    def _held_groups(self, component: str) -> dict[int, int]:
        """{process group: session} of the live processes that hold the component's lock."""
        out = {}
        for pid in self.holders(component):
            fields = _stat(pid)  # [state, ppid, pgrp, session, ...]
            if fields is not None and fields[0] not in ("Z", "X"):
                out[int(fields[2])] = int(fields[3])
        return out

    def leftovers(self, component: str) -> set[int]:
        """Process groups of this component that are not of its running one: the group of a main process
        killed alone, or a copy started beside it (a pid file deleted), found by the lock they hold. A
        running one's tasks have groups of their own, in its session: they are not leftovers."""
        found, live = self._pidfile(component), self.running(component)
        groups = {found[0]} if found and live is None and _group_alive(found[0]) else set()
        return groups | {
            g for g, session in self._held_groups(component).items() if live is None or session != live.pid
        }

    def start(self, component: str, argv: list[str], env: dict[str, str], cwd: Path, digest: str) -> int:
        for d in (self.run, self.logs):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock(component), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            try:  # held: a copy is still there (the caller stops leftovers first, so this is a race lost)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PlatformError(
                    f"{component}: another copy holds {self._lock(component)}; run "
                    "`airflow-infra platform down`, then `up`"
                ) from None
            log = os.open(self.log(component), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            with os.fdopen(log, "ab") as out:
                out.write(f"\n--- airflow-infra platform: starting {component} at {time.ctime()} ---\n".encode())
                out.flush()
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                    pass_fds=(fd,),
                    umask=0o077,
                )
        finally:
            os.close(fd)  # the component holds the lock now, for as long as it or a child lives
        write_private(self.run / f"{component}.pid", f"{proc.pid} {_start_time(proc.pid)} {digest}\n")
        return proc.pid

    def stop(self, component: str, *, timeout: float = 30.0) -> bool:
        """SIGTERM to the component's process groups (its running one and any it left), SIGKILL after
        timeout; True when there was one."""
        groups = self.leftovers(component)
        live = self.running(component)
        if live is not None:  # it, and the groups its tasks run in
            groups |= {live.pid} | {g for g, session in self._held_groups(component).items() if session == live.pid}
        for pgid in groups:
            _stop_group(pgid, timeout)
        (self.run / f"{component}.pid").unlink(missing_ok=True)
        return bool(groups)

    def tail(self, component: str, lines: int = 1) -> str:
        """The log's last lines since the platform last started it (never its own banner)."""
        try:
            text = self.log(component).read_text(errors="replace").split("--- airflow-infra platform: starting")[-1]
        except OSError:
            return ""
        return "\n".join([ln for ln in text.strip().splitlines()[1:] if ln.strip()][-lines:]) or "(nothing logged)"


def _stop_group(pgid: int, timeout: float) -> None:
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
            if sig == signal.SIGTERM:
                os.killpg(pgid, signal.SIGCONT)  # a stopped (hung) process handles SIGTERM only once continued
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(pgid):
            _reap(pgid)
            time.sleep(0.2)
        if not _group_alive(pgid):
            return


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # our own child (the library used in one process): no zombie left


def _group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is left in the group."""
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            fields = _stat(int(d.name))
            if fields is not None and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
    return False


def health(port: int, timeout: float = 3.0) -> dict | None:
    """The api-server's /api/v2/monitor/health answer, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=timeout) as r:
            found: dict = json.loads(r.read())
            return found
    except (OSError, ValueError):
        return None


PARTS = {"scheduler": "scheduler", "triggerer": "triggerer", "dag-processor": "dag_processor"}


def healthy(answer: dict | None, *, since: float = 0.0) -> bool:
    """Every part healthy, and each heartbeat newer than `since` (a restarted component's own, not the
    last one of the process it replaced)."""
    if answer is None or (answer.get("metadatabase") or {}).get("status") != "healthy":
        return False
    for part in PARTS.values():
        info = answer.get(part) or {}
        if info.get("status") != "healthy" or (since and _epoch(info.get(f"latest_{part}_heartbeat")) < since):
            return False
    return True


def _epoch(stamp: str | None) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        return 0.0
