"""Benchmark of any S3-compatible store: moto beside s3rver (the second implementation the tests use,
installed into .s3rver by the README's test command).

- the S3 calls the state backend's conditional-write probe adds, per bucket and process  target: <= 2
- a no-op plan (CLI) of the server target with its bucket on each store      target: s3rver <= 1.5x moto
"""

from __future__ import annotations

import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "airflow_infra"]
ROOT = Path(__file__).resolve().parent.parent

SERVER = """[project]
name = "{name}"
[target]
kind = "server"
[bucket]
endpoint_url = "{endpoint}"
addressing_style = "path"
tls_only = false
[database]
schemas = ["raw", "staging", "analytics"]
"""


def _s3rver(data: Path) -> tuple[subprocess.Popen, str]:
    from airflow_infra.localserver.binaries import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            str(ROOT / ".s3rver/node_modules/.bin/s3rver"),
            "-d",
            str(data),
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-s",
            "--no-vhost-buckets",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("s3rver did not start: run the README's test command, which installs it")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def _probe_calls(endpoint: str, lock: str) -> list[int]:
    """S3 calls of a state read: the first ever on the bucket, the first of a later process, a second
    one in that process (the probe is cached: the read alone)."""
    from airflow_infra.state import s3 as s3mod

    os.environ["AWS_ENDPOINT_URL_S3"] = endpoint
    try:
        s3mod.bootstrap(
            bucket="bench-probe",
            region="us-east-1",
            lock="dynamodb",
            dynamodb_table="bench-probe-locks",
            confirm=lambda changes: True,
        )
        counts = []
        for fresh in (True, True, False):
            if fresh:
                s3mod.forget_probes()
            backend = s3mod.S3StateBackend(
                bucket="bench-probe",
                key="p/dev/airflow-infra.json",
                region="us-east-1",
                lock=lock,
                dynamodb_table="bench-probe-locks",
            )
            calls: list[str] = []
            backend.s3.meta.events.register("before-call.s3", lambda model, calls=calls, **kw: calls.append(model.name))
            backend.read()
            counts.append(len(calls))
        return counts
    finally:
        del os.environ["AWS_ENDPOINT_URL_S3"]
        s3mod.forget_probes()


def rows(runs: int = 5) -> list[tuple[str, float, str]]:
    from servers import moto_and_postgres

    out: list[tuple[str, float, str]] = []
    with moto_and_postgres("airflow-infra-bench-stores-") as (tmp, server):
        os.environ.update(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER")  # s3rver's; moto takes any
        proc, s3rver = _s3rver(tmp / "s3rver")
        try:
            stores = {"moto": os.environ["AWS_ENDPOINT_URL"], "s3rver": s3rver}
            for label, endpoint in stores.items():
                # moto honours conditional writes: its probe is the two refused PUTs (the first read of a
                # new bucket makes the probe object: one more). s3rver ignores them: lock = dynamodb.
                lock = "s3" if label == "moto" else "dynamodb"
                first, later, alone = _probe_calls(endpoint, lock)
                out.append(
                    (
                        f"probe: S3 calls it adds, {label} (lock {lock})",
                        0.0,
                        f"{later - alone} per process (target <= 2); {first - alone} the first time on a bucket",
                    )
                )
            password = secrets.token_urlsafe(16)
            with server.connect() as conn:
                conn.execute(f"CREATE ROLE bench_admin LOGIN CREATEDB CREATEROLE PASSWORD '{password}'")
            env = {
                **os.environ,
                "AIRFLOW_INFRA_ADMIN_DSN": f"postgresql://bench_admin:{password}@127.0.0.1:{server.port}/postgres",
            }
            medians = {}
            for label, endpoint in stores.items():
                d = tmp / f"on_{label}"
                d.mkdir()
                (d / "airflow-infra.toml").write_text(SERVER.format(name=f"bench_{label}", endpoint=endpoint))
                subprocess.run(
                    [*CLI, "-C", str(d), "apply", "--auto-approve"], env=env, check=True, stdout=subprocess.DEVNULL
                )
                times = []
                for _ in range(runs):
                    start = time.perf_counter()
                    subprocess.run(
                        [*CLI, "-C", str(d), "plan", "--detailed-exitcode"],
                        env=env,
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                    times.append(time.perf_counter() - start)
                medians[label] = statistics.median(times)
            out.append(("no-op plan (CLI), server target, bucket on moto", medians["moto"], ""))
            out.append(
                (
                    "no-op plan (CLI), server target, bucket on s3rver",
                    medians["s3rver"],
                    f"{medians['s3rver'] / medians['moto']:.2f}x moto (target <= 1.5x)",
                )
            )
        finally:
            proc.terminate()
            proc.wait(10)
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    for label, secs, note in rows():
        print(f"{label:<52} {secs:>9.3f}  {note}")
