"""An exclusive lock on a file (flock), for what one machine's processes take in turn: the local server's
start and stop, the secret store, a DAG folder's sync, the platform's up and down. Released when the
holder ends, however it ends."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import LockTimeout


@contextmanager
def exclusive(path: Path, mode: int = 0o600, *, timeout: float | None = None, what: str = "") -> Iterator[None]:
    """timeout: seconds to wait at most (None: as long as it takes), then LockTimeout naming path and
    what it guards: a holder stopped (SIGSTOP, a closed lid) never blocks another run for ever."""
    try:  # never through a link: a lock file is ours, where it is
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, mode)
    except OSError as exc:
        raise LockTimeout(
            f"{path}: cannot open this lock file ({exc.strerror}): it must be a file of "
            "airflow-infra's (remove what is there); nothing was changed"
        ) from None
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(
                            f"{path}: another process has held {what or 'it'} for {timeout:g} s (a run "
                            "that is stopped, or still busy?); try again once it goes on or ends; "
                            "nothing was changed"
                        ) from None
                    time.sleep(0.02)
        yield
    finally:
        os.close(fd)
