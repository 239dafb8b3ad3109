"""Benchmark of the server target: plan and apply of 1 and of 50 projects on one PostgreSQL server and
moto (S3 in server mode), through the library in one process, and S3 calls per bucket refresh."""

from __future__ import annotations

import logging
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

SERVER = """[project]
name = "{name}"
[target]
kind = "server"
[database]
schemas = ["raw", "staging", "analytics"]
"""


def rows(projects: int = 50) -> list[tuple[str, float, str]]:
    from moto.server import ThreadedMotoServer

    import airflow_infra as ai
    from airflow_infra.local_server import LocalServer, free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="airflow-infra-bench-server-"))
    os.chmod(tmp, 0o711)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "AIRFLOW_INFRA_HOME": str(tmp / "home")}
    saved = {k: os.environ.get(k) for k in [*env, "AIRFLOW_INFRA_ADMIN_DSN"]}
    os.environ.update(env)
    server = LocalServer(tmp / "home")
    out: list[tuple[str, float, str]] = []
    try:
        server.start()
        password = secrets.token_urlsafe(16)
        with server.connect() as conn:
            conn.execute(f"CREATE ROLE bench_admin LOGIN CREATEDB CREATEROLE PASSWORD '{password}'")
        os.environ["AIRFLOW_INFRA_ADMIN_DSN"] = f"postgresql://bench_admin:{password}@127.0.0.1:{server.port}/postgres"

        dirs = []
        for i in range(projects):
            d = tmp / f"proj{i}"
            d.mkdir()
            (d / "airflow-infra.toml").write_text(SERVER.format(name=f"bench_{i:03d}"))
            dirs.append(d)

        def timed(fn, ds):
            start = time.perf_counter()
            for d in ds:
                fn(ai.load(d))
            return time.perf_counter() - start

        out.append(("plan, 1 project, nothing made yet", timed(ai.plan, dirs[:1]), ""))
        out.append(("apply, 1 project (bucket + 7 database resources)", timed(ai.apply, dirs[:1]), ""))
        out.append(("no-op plan, 1 project", timed(ai.plan, dirs[:1]), ""))
        t = timed(ai.plan, dirs[1:])
        out.append((f"plan, {projects - 1} more projects", t, f"{t / (projects - 1):.3f} s each"))
        t = timed(ai.apply, dirs[1:])
        out.append((f"apply, {projects - 1} more projects", t, f"{t / (projects - 1):.3f} s each"))
        t = timed(ai.plan, dirs)
        out.append((f"no-op plan, all {projects} projects", t, f"{t / projects:.3f} s each"))

        # S3 calls and wall time of one bucket refresh
        project = ai.load(dirs[0])
        target = project.target()
        provider = target.providers()["s3_bucket"]
        [bucket] = [r for r in target.desired() if r.type == "s3_bucket"]
        calls: list[str] = []
        target.s3().meta.events.register("before-call.s3", lambda model, **kw: calls.append(model.name))
        times = []
        for _ in range(10):
            start = time.perf_counter()
            provider.read(bucket, None)
            times.append(time.perf_counter() - start)
        out.append(("bucket refresh (7 getters in parallel)", statistics.median(times), f"{len(calls) // 10} S3 calls"))
        target.close()
    finally:
        try:
            server.stop()
        finally:
            moto.stop()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return out
