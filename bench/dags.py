"""Benchmarks of the projects registry and DAG import:
- `dags sync` of 50 local repositories, first time and with no change, --jobs 1 and 8, beside the seed's
  clone_and_link (a `git clone` per project, one after another);
- `plan --all` of 100 projects on the local target, beside one project's plan."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from gitrepos import Daemon, Repo, dag_source  # noqa: E402

CLI = [sys.executable, "-m", "airflow_infra"]


def _run(cmd, env=None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - start


class SlowProxy:
    """A TCP proxy to `git daemon` that waits `latency` seconds before each connection goes through: a
    stand-in for a network round trip, the same for the seed's loop and for the sync."""

    def __init__(self, daemon: Daemon, latency: float):
        import socket
        import threading

        self.daemon, self.latency = daemon, latency
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return

            def serve(client: socket.socket = client) -> None:
                time.sleep(self.latency)
                upstream = socket.create_connection(("127.0.0.1", self.daemon.port))
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

            threading.Thread(target=serve, daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:
        import socket

        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def url(self, path: Path) -> str:
        return f"git://127.0.0.1:{self.port}{path}"


def sync_rows(n: int = 50, *, latency: float = 0.0) -> list[tuple[str, float, str]]:
    """With latency, every remote is reached over git:// through a proxy that waits before each
    connection (SlowProxy)."""
    tmp = Path(tempfile.mkdtemp(prefix="airflow-infra-bench-dags-"))
    env = dict(os.environ)
    where = f", remotes {latency * 1000:.0f} ms away" if latency else ", local remotes"
    daemon = Daemon() if latency else None
    proxy = SlowProxy(daemon, latency) if daemon else None
    try:
        repos = []
        for i in range(n):
            r = Repo(tmp, f"proj_{i:03d}")
            files = {f"dags/dag_{j}.py": dag_source(f"proj_{i:03d}_{j}") for j in range(5)}
            files.update({f"sql/step_{j}.sql": "select 1;\n" * 50 for j in range(20)})
            r.commit(files, "first")
            repos.append(r)
        reg = tmp / "projects.csv"

        def url(r):
            return proxy.url(r.remote) if proxy else r.url

        reg.write_text("Project,Repo,URL\n" + "".join(f"{r.name},{r.name},{url(r)}\n" for r in repos))

        seed = tmp / "seed"
        seed.mkdir()
        start = time.perf_counter()
        for r in repos:  # what the seed's clone_and_link did
            subprocess.run(["git", "clone", "--quiet", url(r), str(seed / r.name)], check=True, env=env)
        loop = time.perf_counter() - start

        out = [(f"seed loop: git clone x {n}{where}", loop, "")]
        for jobs in (1, 8):
            dags = tmp / f"dags{jobs}"
            sync = [*CLI, "dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--jobs", str(jobs)]
            first, again = _run(sync, env=env), _run(sync, env=env)
            out.append((f"dags sync, first time, --jobs {jobs}", first, f"{loop / first:.2f}x faster than the loop"))
            out.append((f"dags sync, no change, --jobs {jobs}", again, "target <= 2 s"))
        return out
    finally:
        if daemon:
            daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def fleet_rows(n: int = 100) -> list[tuple[str, float, str]]:
    from airflow_infra.localserver.server import LocalServer

    tmp = Path(tempfile.mkdtemp(prefix="airflow-infra-bench-fleet-"))
    os.chmod(tmp, 0o711)
    env = {**os.environ, "AIRFLOW_INFRA_HOME": str(tmp / "home")}
    try:
        rows = ["Project,Repo,URL,Config"]
        for i in range(n):
            d = tmp / f"fleet_{i:03d}"
            d.mkdir()
            (d / "airflow-infra.toml").write_text(f'[project]\nname = "fleet_{i:03d}"\n')
            rows.append(f"fleet_{i:03d},x,file:///x{i}.git,fleet_{i:03d}/airflow-infra.toml")
        reg = tmp / "projects.csv"
        reg.write_text("\n".join(rows) + "\n")
        subprocess.run(
            [*CLI, "apply", "--all", "--auto-approve", "--registry", str(reg)],
            check=True,
            stdout=subprocess.DEVNULL,
            env=env,
        )
        one = min(_run([*CLI, "-C", str(tmp / "fleet_000"), "plan"], env=env) for _ in range(3))
        every = min(_run([*CLI, "plan", "--all", "--registry", str(reg)], env=env) for _ in range(2))
        return [
            ("plan, one project (no-op)", one, ""),
            (f"plan --all, {n} projects (no-op)", every, f"{every / one:.1f}x one project's plan (target <= 10x)"),
        ]
    finally:
        LocalServer(tmp / "home").stop()
        shutil.rmtree(tmp, ignore_errors=True)


def rows() -> list[tuple[str, float, str]]:
    return sync_rows() + sync_rows(latency=0.1) + fleet_rows()


if __name__ == "__main__":
    for label, secs, note in rows():
        print(f"{label:<52} {secs:>9.3f}  {note}")
