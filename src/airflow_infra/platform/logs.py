"""The platform's logs as text to print: each log whole, then (follow) what is written to them from
then on, through rotation and truncation, as `tail -n +1 -F` prints them, without running it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

POLL = 0.25  # seconds between looks at a followed log


class _Followed:
    def __init__(self, path: Path):
        self.path, self.inode = path, 0
        self.file: TextIO | None = None

    def read(self) -> str:
        """What was written since the last read; a log replaced or cut short is read from its start."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return ""
        if self.file is not None and (st.st_ino != self.inode or st.st_size < self.file.tell()):
            self.file.close()
            self.file = None
        if self.file is None:
            self.file = open(self.path, encoding="utf-8", errors="replace")  # noqa: SIM115 - held while followed
            self.inode = os.fstat(self.file.fileno()).st_ino
        text: str = self.file.read()
        return text

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def texts(paths: list[Path], *, follow: bool, stop: Callable[[], bool] = lambda: False) -> Iterator[str]:
    """The logs' text in pieces to print as they come; headed by "==> path <==" where there are several."""
    logs = [_Followed(p) for p in paths]
    last: _Followed | None = None
    try:
        while True:
            quiet = True
            for log in logs:
                text = log.read()
                if not text:
                    continue
                quiet = False
                if len(logs) > 1 and log is not last:
                    yield f"{'' if last is None else chr(10)}==> {log.path} <==\n"
                last = log
                yield text
            if not follow or stop():
                return
            if quiet:
                time.sleep(POLL)
    finally:
        for log in logs:
            log.close()
