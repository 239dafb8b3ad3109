"""Real git repositories for the tests: a bare remote (file:// URL) and a work tree to commit from."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def dag_source(dag_id: str) -> str:
    return f'''import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False):
    EmptyOperator(task_id="hello")
'''


class Daemon:
    """`git daemon` on 127.0.0.1: repositories reached over git://, as a remote server is (a fetch
    through a transport, not a read in place)."""

    def __init__(self) -> None:
        import socket
        import time

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--export-all",
                "--base-path=/",
                "--reuseaddr",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                "--informative-errors",
            ],
            env={**os.environ, **GIT_ENV},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline and self.proc.poll() is None, "git daemon did not start"
                time.sleep(0.05)

    def url(self, path: Path) -> str:
        return f"git://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


DAEMON: Daemon | None = None  # started by the git_daemon fixture


class Repo:
    def __init__(self, root: Path, name: str):
        self.remote = root / "remotes" / f"{name}.git"
        self.work = root / "work" / name
        self.remote.parent.mkdir(parents=True, exist_ok=True)
        self.work.parent.mkdir(parents=True, exist_ok=True)
        git("init", "--bare", "--quiet", "--initial-branch=main", str(self.remote), cwd=root)
        git("init", "--quiet", "--initial-branch=main", str(self.work), cwd=root)
        git("remote", "add", "origin", str(self.remote), cwd=self.work)
        self.name = name

    @property
    def url(self) -> str:
        return self.remote.as_uri()

    @property
    def transport_url(self) -> str:
        """The same repository through `git daemon` (the git_daemon fixture must be running)."""
        assert DAEMON is not None, "use the git_daemon fixture"
        return DAEMON.url(self.remote)

    def commit(
        self, files: dict[str, str | None], message: str = "change", *, symlinks: dict[str, str] | None = None
    ) -> str:
        for rel, text in files.items():
            path = self.work / rel
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for rel, target in (symlinks or {}).items():
            (self.work / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.work / rel).symlink_to(target)
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "-m", message, cwd=self.work)
        git("push", "--quiet", "--force", "origin", "main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)
