"""An exclusive lock on a file (flock), for what one machine's processes take in turn: the local server's
start and stop, the secret store, a DAG folder's sync, the platform's up and down. Released when the
holder ends, however it ends."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(path: Path, mode: int = 0o600) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
