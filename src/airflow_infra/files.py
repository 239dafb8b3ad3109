"""Reading the small files airflow-infra keeps (state, lock, server.json, postmaster.pid, markers,
manifests) the same way everywhere: never blocking on a FIFO left in a file's place, never through a
link where a link must not be followed, and a file that is not text read as text all the same (its
parser then says it is corrupt, in one line); and writing files and trees this account alone reads."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path


def read_text(path: str | Path, *, follow: bool = True) -> str:
    """path's text, undecodable bytes replaced. FileNotFoundError when it is missing; another OSError
    when it is no regular file (a folder, a FIFO, a device; with follow=False a symbolic link too)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return f.read().decode("utf-8", errors="replace")


def write_private(path: Path, text: str) -> None:
    """Write a file of ours atomically, readable by this account only (never through a link)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """What is made meanwhile (by us or a child process) is this account's only: umask 077."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def make_private(root: Path) -> None:
    """Take group and other permissions off everything under root (a tree an older version wrote)."""
    for d, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = os.path.join(d, name)
            mode = os.lstat(path).st_mode
            if mode & 0o077 and not stat.S_ISLNK(mode):
                os.chmod(path, mode & 0o7700)
    os.chmod(root, os.stat(root).st_mode & 0o7700)


def make_private_once(root: Path) -> None:
    """make_private(root) unless its marker says it was done: a tree an older version left readable to
    other accounts is tightened at its first use by this one, and not walked again."""
    marker = root / ".private"
    if not marker.exists():
        make_private(root)
        write_private(marker, "every file here is this account's only\n")
