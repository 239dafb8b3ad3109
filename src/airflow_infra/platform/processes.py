"""The platform's four Airflow processes, each in a session of its own (so that it and its children are
stopped together), with a log file and a pid file ("<pid> <start time> <config digest>"): the start time
tells a live component from a reused pid after a reboot, the digest one started with another
configuration (restarted by the next `up`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot; None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


@dataclass(frozen=True)
class Running:
    pid: int
    digest: str


class Supervisor:
    def __init__(self, root: Path):
        self.run = root / "run"
        self.logs = root / "logs"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def running(self, component: str) -> Running | None:
        try:
            pid, started, digest = (self.run / f"{component}.pid").read_text().split()
        except (OSError, ValueError):
            return None
        if _start_time(int(pid)) != started:
            return None
        return Running(int(pid), digest)

    def start(self, component: str, argv: list[str], env: dict[str, str], cwd: Path, digest: str) -> int:
        self.run.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.log(component), "ab") as log:
            log.write(f"\n--- airflow-infra platform: starting {component} at {time.ctime()} ---\n".encode())
            log.flush()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    cwd=cwd, start_new_session=True)
        (self.run / f"{component}.pid").write_text(f"{proc.pid} {_start_time(proc.pid)} {digest}\n")
        return proc.pid

    def stop(self, component: str, *, timeout: float = 30.0) -> bool:
        """SIGTERM to the component's process group, SIGKILL after timeout; True when one was running."""
        found = self.running(component)
        pidfile = self.run / f"{component}.pid"
        if found is None:
            pidfile.unlink(missing_ok=True)
            return False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(found.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _group_alive(found.pid):
                _reap(found.pid)
                time.sleep(0.2)
            if not _group_alive(found.pid):
                break
        pidfile.unlink(missing_ok=True)
        return True

    def tail(self, component: str, lines: int = 1) -> str:
        try:
            text = self.log(component).read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # our own child (the library used in one process): no zombie left


def _group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is left in the group."""
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
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


def healthy(answer: dict | None) -> bool:
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return answer is not None and all((answer.get(p) or {}).get("status") == "healthy" for p in parts)
