"""Reading the small files airflow-infra keeps (state, lock, server.json, postmaster.pid, markers,
manifests) the same way everywhere: never blocking on a FIFO left in a file's place, never through a
link where a link must not be followed, and a file that is not text read as text all the same (its
parser then says it is corrupt, in one line)."""

from __future__ import annotations

import errno
import os
import stat
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
