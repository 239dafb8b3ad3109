"""Whether a process is alive, and the temporary files named after one: ".<name>.<host>.<pid><suffix>",
so that the leftovers of a killed run can be told apart (this host's, their process gone) and removed
by the next run, and never another host's on a shared volume, nor anything else in the directory."""

from __future__ import annotations

import os
import socket
from pathlib import Path

HOST = socket.gethostname().replace("/", "_").replace(".", "_")  # no dot: the name splits on dots


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def own_temp(final: Path, suffix: str) -> Path:
    """This process's temporary name for final, beside it."""
    return final.with_name(f".{final.name}.{HOST}.{os.getpid()}{suffix}")


def dead_leftovers(directory: Path, suffix: str, name: str = "*") -> list[Path]:
    """This host's temporary files of `name` (any, by default) in directory whose process is gone."""
    out = []
    for p in directory.glob(f".{name}.{HOST}.*{suffix}"):
        pid = p.name[: -len(suffix)].rsplit(".", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            out.append(p)
    return out
