"""Benchmark of the state backends: lock acquire + release latency, a one-commit transaction (its write
fenced: checked against the lock it was made under) and a no-op plan (local target),
for each backend: local file; S3 with an S3 lock, a DynamoDB lock and both (moto in server mode);
PostgreSQL."""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import time

CLI = [sys.executable, "-m", "airflow_infra"]


def rows(runs: int = 20) -> list[tuple[str, float, str]]:
    from servers import moto_and_postgres

    from airflow_infra.config import load_config
    from airflow_infra.state import get_backend
    from airflow_infra.state.base import LockInfo, transaction
    from airflow_infra.state.s3 import bootstrap

    out = []
    with moto_and_postgres("airflow-infra-bench-state-") as (tmp, server):
        pw = secrets.token_urlsafe(12)
        with server.connect() as conn:
            conn.execute(f"CREATE ROLE bench_state LOGIN PASSWORD '{pw}'")
            conn.execute("CREATE DATABASE bench_state OWNER bench_state")
        os.environ["AIRFLOW_INFRA_STATE_DSN"] = f"postgresql://bench_state:{pw}@127.0.0.1:{server.port}/bench_state"
        bootstrap(bucket="bench-state", region="us-east-1", lock="both", dynamodb_table="bench-locks")
        variants = {
            "local": "",
            "s3, lock s3": '\nbucket = "bench-state"\nlock = "s3"',
            "s3, lock dynamodb": '\nbucket = "bench-state"\nlock = "dynamodb"\ndynamodb_table = "bench-locks"',
            "s3, lock both": '\nbucket = "bench-state"\nlock = "both"\ndynamodb_table = "bench-locks"',
            "postgres": "",
        }
        for label, extra in variants.items():
            d = tmp / label.replace(",", "").replace(" ", "_")
            d.mkdir()
            backend_name = label.split(",")[0]
            (d / "airflow-infra.toml").write_text(
                f'[project]\nname = "bench_{d.name}"\n[state]\nbackend = "{backend_name}"{extra}\n'
            )
            subprocess.run([*CLI, "-C", str(d), "up"], check=True, stdout=subprocess.DEVNULL)
            backend = get_backend(load_config(d), d)
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                info = LockInfo.new("bench", backend.location)
                backend.lock(info)
                backend.unlock(info.ID)
                times.append(time.perf_counter() - start)
            if hasattr(backend, "_stop"):
                backend._stop.set()
            out.append(
                (f"lock + unlock, {label}", statistics.median(times), f"{statistics.median(times) * 1000:.2f} ms")
            )
            commits = []  # a transaction of one commit: lock, read, the fenced write (its lock checked), unlock
            for _ in range(runs):
                start = time.perf_counter()
                with transaction(backend, "bench") as txn:
                    txn.commit(lambda s: s)
                commits.append(time.perf_counter() - start)
            out.append(
                (
                    f"lock + read + fenced write + unlock, {label}",
                    statistics.median(commits),
                    f"{statistics.median(commits) * 1000:.2f} ms",
                )
            )
            plans = []
            for _ in range(5):
                start = time.perf_counter()
                subprocess.run(
                    [*CLI, "-C", str(d), "plan", "--detailed-exitcode"], check=True, stdout=subprocess.DEVNULL
                )
                plans.append(time.perf_counter() - start)
            out.append((f"no-op plan (CLI), {label}", statistics.median(plans), ""))
    return out


if __name__ == "__main__":
    for label, secs, note in rows():
        print(f"{label:<52} {secs:>9.3f}  {note}")
