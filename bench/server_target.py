"""Benchmark of the server target: plan and apply of 1 and of 50 projects on one PostgreSQL server and
moto (S3 in server mode), through the library in one process, and S3 calls per bucket refresh."""

from __future__ import annotations

import os
import secrets
import statistics
import time

SERVER = """[project]
name = "{name}"
[target]
kind = "server"
[database]
schemas = ["raw", "staging", "analytics"]
"""


def rows(projects: int = 50) -> list[tuple[str, float, str]]:
    from servers import moto_and_postgres

    import airflow_infra as ai

    out: list[tuple[str, float, str]] = []
    with moto_and_postgres("airflow-infra-bench-server-") as (tmp, server):
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
                fn(ai.open_project(d))
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
        project = ai.open_project(dirs[0])
        target = project.target()
        provider = target.providers(project.backend().read().lineage)["s3_bucket"]
        [bucket] = [r for r in target.desired() if r.type == "s3_bucket"]
        calls: list[str] = []
        target.bucket_client().meta.events.register("before-call.s3", lambda model, **kw: calls.append(model.name))
        times = []
        for _ in range(10):
            start = time.perf_counter()
            provider.read(bucket, None)
            times.append(time.perf_counter() - start)
        out.append(("bucket refresh (7 getters in parallel)", statistics.median(times), f"{len(calls) // 10} S3 calls"))
        target.close()
    return out
