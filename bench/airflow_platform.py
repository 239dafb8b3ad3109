"""Benchmark of `airflow-infra platform` beside `airflow standalone`, the same Airflow on the same machine.

- from installed to healthy and both projects' DAGs listed by the REST API: cold (a new metadata database,
  migrated) and warm (started again)                                              target: <= 1.0x standalone
- the processes' memory: the sum of RSS over every process of the platform, and of standalone's
- from `projects add` of a third project to its DAG listed (`platform up` restarts what reads the bundles)

Both run the two projects' DAGs from the same DAG bundles (LocalDagBundle), standalone on its SQLite.
Run: .venv/bin/python bench/airflow_platform.py [--airflow .venv-airflow/bin/airflow] (or bench/run.py, which
runs it unless --skip platform). Named so as not to shadow the standard library's `platform`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

CLI = [sys.executable, "-m", "airflow_infra"]


def _get(port: int, path: str, token: str | None = None) -> dict | None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            found: dict = json.loads(r.read())
            return found
    except (OSError, ValueError):
        return None


def _token(port: int, password: str) -> str | None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/auth/token",
        method="POST",
        data=json.dumps({"username": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return str(json.loads(r.read())["access_token"])
    except (OSError, ValueError, KeyError):
        return None


def until_listed(port: int, password: Callable[[], str | None], dag_ids: set[str], timeout: float = 600) -> None:
    deadline, token = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        secret = password()
        token = token or (_token(port, secret) if secret else None)
        found = _get(port, "/api/v2/dags?limit=100", token) if token else None
        if found and dag_ids <= {d["dag_id"] for d in found["dags"]}:
            return
        time.sleep(0.25)
    raise SystemExit(f"DAGs {dag_ids} not listed on port {port} after {timeout} s")


def rss_mb(pgids: set[int]) -> float:
    """The sum of resident memory over every live process in the groups."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) in pgids and fields[0] != "Z":
                status = (stat.parent / "status").read_text()
                total += int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")))
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


def standalone(work: Path, env: dict[str, str], airflow: Path, registry: Path, want: set[str]) -> tuple[dict, float]:
    """`airflow standalone` in an AIRFLOW_HOME of its own (SQLite), with the same bundles and secrets backend:
    ({"cold": s, "warm": s}, the sum of its RSS in MB)."""
    from airflow_infra.localserver.binaries import free_port

    sa_home = work / "standalone"
    sa_home.mkdir()
    sa_port = free_port()
    bundles = subprocess.run(
        [*CLI, "dags", "bundles"], cwd=work, env=env, check=True, capture_output=True, text=True
    ).stdout
    sa_env = {
        **env,
        "AIRFLOW_HOME": str(sa_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__PORT": str(sa_port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(json.loads(bundles)),
        "AIRFLOW__SECRETS__BACKEND": "airflow_infra.airflow.secrets.AirflowInfraBackend",
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"registry": str(registry)}),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "PATH": f"{airflow.parent}:{env['PATH']}",
    }
    passwords = sa_home / "simple_auth_manager_passwords.json.generated"

    def theirs() -> str | None:
        try:
            return str(json.loads(passwords.read_text())["admin"])
        except (OSError, ValueError, KeyError):
            return None

    sa, sa_rss = {}, 0.0
    for label in ("cold", "warm"):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(airflow), "standalone"],
            cwd=sa_home,
            env=sa_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        until_listed(sa_port, theirs, want)
        sa[label] = time.perf_counter() - start
        if label == "cold":
            time.sleep(20)
            sa_rss = rss_mb({proc.pid})
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return sa, sa_rss


DEFAULT_AIRFLOW = Path(__file__).parent.parent / ".venv-airflow/bin/airflow"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--airflow", default=str(DEFAULT_AIRFLOW))
    args = ap.parse_args()
    for label, value, note in rows(Path(args.airflow)):
        print(f"{label:<62} {value:>8.2f}  {note}")


def rows(airflow: Path = DEFAULT_AIRFLOW) -> list[tuple[str, float, str]]:
    airflow = airflow.resolve()
    from airflow_infra.localserver.binaries import free_port

    work = Path(tempfile.mkdtemp(prefix="airflow-infra-bench-platform-"))
    os.chmod(work, 0o711)
    env = {**os.environ, "AIRFLOW_INFRA_HOME": str(work / "home")}
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"}

    def cli(*a: str, cwd: Path = work) -> str:
        return subprocess.run([*CLI, *a], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout

    out: list[tuple[str, float, str]] = []
    names = ["bench_a", "bench_b", "bench_c"]
    try:
        for n in names:
            cli("new", n)
            cli("-C", n, "up")
        registry = work / "projects.csv"
        for n in names[:2]:
            cli("projects", "add", n, str(work / n), "--path", "dags", "--config", f"{n}/airflow-infra.toml")
        port = free_port()
        (work / "airflow-infra.toml").write_text(f'[platform]\nport = {port}\nairflow_bin = "{airflow}"\n')
        want = {f"{n}_example_elt" for n in names[:2]}

        def ours() -> str | None:
            found = subprocess.run(
                [*CLI, "platform", "status", "--json", "--show-secrets"],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
            ).stdout
            return json.loads(found).get("password") if found else None

        timings = {}
        for label in ("cold", "warm"):
            start = time.perf_counter()
            subprocess.run([*CLI, "platform", "up"], cwd=work, env=env, check=True, capture_output=True)
            until_listed(port, ours, want)
            timings[label] = time.perf_counter() - start
            if label == "cold":
                time.sleep(20)  # settled: the first parse and heartbeats done
                pids = {
                    c["pid"]
                    for c in json.loads(
                        subprocess.run(
                            [*CLI, "platform", "status", "--json"], cwd=work, env=env, capture_output=True, text=True
                        ).stdout
                    )["components"]
                }
                ours_rss = rss_mb(pids)
                start = time.perf_counter()
                cli(
                    "projects",
                    "add",
                    names[2],
                    str(work / names[2]),
                    "--path",
                    "dags",
                    "--config",
                    f"{names[2]}/airflow-infra.toml",
                )
                subprocess.run([*CLI, "platform", "up"], cwd=work, env=env, check=True, capture_output=True)
                until_listed(port, ours, {f"{names[2]}_example_elt"})
                added = time.perf_counter() - start
                cli("projects", "remove", names[2])
            cli("platform", "down")

        sa, sa_rss = standalone(work, env, airflow, registry, want)
        out = [
            (
                "platform up, cold (new metadata database) to 2 DAGs listed",
                timings["cold"],
                f"standalone {sa['cold']:.1f} s: {timings['cold'] / sa['cold']:.2f}x",
            ),
            (
                "platform up, warm, to 2 DAGs listed",
                timings["warm"],
                f"standalone {sa['warm']:.1f} s: {timings['warm'] / sa['warm']:.2f}x",
            ),
            ("memory: sum of RSS, MB", ours_rss, f"standalone {sa_rss:.0f} MB: {ours_rss / sa_rss:.2f}x"),
            ("projects add + platform up to the new DAG listed", added, ""),
        ]
    finally:
        subprocess.run([*CLI, "platform", "down"], cwd=work, env=env, capture_output=True)
        subprocess.run([*CLI, "local", "stop"], cwd=work, env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
