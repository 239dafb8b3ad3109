"""The boundary to the programs we run (pg_dump, pg_restore, initdb, the server, systemctl, pip,
airflow): `run()` starts one, never through a shell, and turns what goes wrong in starting or
waiting for it (not installed, not allowed, past its deadline, a failed exit) into one line of ours.

Environment: the minimal one unless the caller passes another (the platform's Airflow needs its
own): never the caller's own by default, which may hold admin DSNs with passwords or AWS keys that
the child's account could then read from /proc/<pid>/environ. Secrets go by stdin or by file
(`passfile`), never by argv or environment. git has its own boundary (gitcmd.py), with process
groups and deadlines of its own.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .errors import AirflowInfraError, ProviderError


def minimal_env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH") or os.defpath, "LC_ALL": "C", "LANG": "C"}
    env.update(extra)
    return env


@contextmanager
def passfile(env: dict[str, str]) -> Iterator[tuple[dict[str, str], tuple[int, ...]]]:
    """(env with its PGPASSWORD moved into a passfile, the descriptors the child must inherit): a
    child's environment is readable in /proc/<pid>/environ and lands in crash reports. The passfile
    is an anonymous file in memory (memfd, 0600) that the child reads as /proc/self/fd/N: nothing is
    on any disk, and it is gone with the last process that holds it, however that process ends."""
    password = env.get("PGPASSWORD")
    if password is None:
        yield env, ()
        return
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    fd = os.memfd_create("airflow-infra-pgpass", 0)  # no MFD_CLOEXEC: the child inherits it (pass_fds)
    try:
        os.fchmod(fd, 0o600)  # libpq ignores a passfile others may read
        os.write(fd, f"*:*:*:*:{escaped}\n".encode())
        yield {**{k: v for k, v in env.items() if k != "PGPASSWORD"}, "PGPASSFILE": f"/proc/self/fd/{fd}"}, (fd,)
    finally:
        os.close(fd)


def last_line(text: str) -> str:
    """The last line a program wrote that holds anything."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run(
    args: Sequence[str | Path],
    *,
    what: str,
    timeout: float,
    env: dict[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
    error: type[AirflowInfraError] = ProviderError,
    reason: Callable[[subprocess.CompletedProcess[str]], str] | None = None,
    stdout: IO[Any] | int | None = None,
    **popen: Any,
) -> subprocess.CompletedProcess[str]:
    """Run args to its end, its output captured as text (stdout: a file to send it to instead, stderr
    with it). what names it in errors. check: a failed exit is error(f"{what} failed: {reason}"),
    reason(proc) or the last line it wrote; else the caller reads proc.returncode. popen: pass_fds,
    cwd, user, group, extra_groups, umask."""
    argv = [str(a) for a in args]
    out: dict[str, Any] = (
        {"stdout": stdout, "stderr": subprocess.STDOUT} if stdout is not None else {"capture_output": True}
    )
    if input is None:
        out["stdin"] = subprocess.DEVNULL
    try:
        proc = subprocess.run(
            argv,
            env=minimal_env() if env is None else env,
            input=input,
            text=True,
            timeout=timeout,
            check=False,
            **out,
            **popen,
        )
    except FileNotFoundError:
        raise error(f"{what}: {argv[0]} is not installed (or not where it was found)") from None
    except subprocess.TimeoutExpired:
        raise error(f"{what}: {Path(argv[0]).name} did not finish within {timeout:g} s; it was stopped") from None
    except OSError as exc:
        raise error(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from None
    if check and proc.returncode != 0:
        why = reason(proc) if reason else last_line(proc.stderr or proc.stdout or "")
        raise error(f"{what} failed: {why or f'exit status {proc.returncode}'}")
    return proc
