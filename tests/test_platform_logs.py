"""`platform logs`: each log whole, then what is written, through rotation and truncation (as tail -F)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from airflow_infra.platform.logs import texts


def test_each_log_whole_headed_by_its_path(tmp_path: Path):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("one\ntwo\n")
    b.write_text("three\n")
    assert "".join(texts([a, b], follow=False)) == f"==> {a} <==\none\ntwo\n\n==> {b} <==\nthree\n"
    assert "".join(texts([a], follow=False)) == "one\ntwo\n"


def test_follow_goes_on_through_rotation_and_truncation(tmp_path: Path):
    log = tmp_path / "scheduler.log"
    log.write_text("start\n")
    seen: list[str] = []
    done = threading.Event()

    def writer() -> None:
        def wait_for(word: str) -> None:
            deadline = time.monotonic() + 20
            while word not in "".join(seen) and time.monotonic() < deadline:
                time.sleep(0.05)

        wait_for("start")
        with open(log, "a") as f:
            f.write("appended\n")
        wait_for("appended")
        os.rename(log, tmp_path / "scheduler.log.1")  # rotated: a new file under the name
        log.write_text("rotated\n")
        wait_for("rotated")
        log.write_text("cut\n")  # truncated to less than was read
        wait_for("cut")
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    for text in texts([log], follow=True, stop=done.is_set):
        seen.append(text)
    t.join()
    assert "".join(seen) == "start\nappended\nrotated\ncut\n"
