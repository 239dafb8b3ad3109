"""PostgreSQL's programs found on this machine (pgserver's wheel, PATH, pg_config, Debian's
/usr/lib/postgresql/*/bin), their version, and free ports on 127.0.0.1."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import socket
from pathlib import Path

from .. import children
from ..errors import BinariesNotFound, LocalServerError

REQUIRED = ("initdb", "pg_ctl", "postgres")


def _has_binaries(bindir: Path) -> bool:
    return all((bindir / b).is_file() and os.access(bindir / b, os.X_OK) for b in REQUIRED)


def _candidates() -> list[Path]:
    """Where PostgreSQL installations may be: PATH, pg_config, Debian's layout, the pgserver wheel."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(LocalServerError):
            out = children.run([pg_config, "--bindir"], what="pg_config", timeout=10, error=LocalServerError)
            if out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    candidates += [Path(p) for p in reversed(versions)]
    # pgserver's wheel carries a full PostgreSQL; find it without importing the package.
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec and spec.submodule_search_locations:
        candidates += [Path(loc) / "pginstall" / "bin" for loc in spec.submodule_search_locations]
    return candidates


def find_bindir(configured: str | None = None) -> Path:
    """Configured path, else the system's, else the binaries in the pgserver wheel."""
    if configured:
        p = Path(configured).expanduser()
        if _has_binaries(p):
            return p.resolve()
        raise BinariesNotFound(f"[target] pg_bindir = {configured!r}: no initdb, pg_ctl and postgres there")
    for c in _candidates():
        if _has_binaries(c):
            return c.resolve()
    raise BinariesNotFound(
        "PostgreSQL binaries not found (looked at [target] pg_bindir, PATH, pg_config --bindir, "
        "/usr/lib/postgresql/*/bin and the pgserver package): run `pip install pgserver` "
        "or `apt-get install postgresql`, or set [target] pg_bindir"
    )


def server_version(bindir: Path) -> str:
    out = children.run(
        [bindir / "postgres", "--version"], what="postgres --version", timeout=30, check=False, error=LocalServerError
    ).stdout
    return m.group(1) if (m := re.search(r"\(PostgreSQL\) (\d+(?:\.\d+)*)", out)) else out.strip()


def _major(version: str) -> str:
    return version.split(".")[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
