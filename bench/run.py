"""Benchmarks of the core issue; prints a table. Run: .venv/bin/python bench/run.py [--runs N] [--skip backups]

- `airflow-infra --help` beside `python -c pass`                         target: <= 8x
- `up` from nothing (first server start) beside a bare shell script
  (initdb, pg_ctl start, createdb) with the same binaries and account    target: <= 1.3x
- `up` of a second project on the running server
- a no-op `plan`: wall time and peak memory (max RSS)                    target: <= 0.5 s, <= 80 MB
- the server target (bench/server_target.py): plan and apply of 1 and of 50 projects on one
  PostgreSQL and moto, and the S3 calls of a bucket refresh
- the aws target (bench/aws_target.py): API calls by service and wall time of a no-op plan
- state backends (bench/state_backends.py): lock + unlock latency and a no-op plan for each backend
- S3 stores (bench/s3_stores.py): the conditional-write probe's calls; a no-op plan with the bucket on
  moto beside s3rver                                                          target: <= 2 calls, <= 1.5x
- backups (bench/backups.py): backup and restore of a 1 GB database and a 10,000-object bucket
  beside pg_dump/pg_restore and boto3 doing what `aws s3 sync` does             target: <= 1.2x
- the platform (bench/airflow_platform.py): `platform up` beside `airflow standalone`, cold and warm, to
  both projects' DAGs listed; the sum of RSS; `projects add` to the new DAG listed      target: <= 1.0x
- DAG import and fleet (bench/dags.py): `dags sync` of 50 repositories beside the seed's clone loop,
  local and 100 ms away; `plan --all` of 100 projects beside one project's plan

Each figure is the median of --runs runs. Every server started here is stopped again.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
CLI = [PY, "-m", "airflow_infra"]


def timed(cmd: list[str], *, env=None, cwd=None, user=None) -> tuple[float, int]:
    """Wall seconds and max RSS (KiB) of one run of cmd."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, user=user)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}: {proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss


def median(cmd, runs, **kw) -> tuple[float, int]:
    results = [timed(cmd, **kw) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def bare_script(bindir: Path, work: Path, port: int) -> str:
    return f"""set -e
{bindir}/initdb -D {work}/data -U postgres --auth=scram-sha-256 --pwfile={work}/pw -E UTF8 --locale=C >/dev/null
{bindir}/pg_ctl -D {work}/data -l {work}/log -o "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" -w -s start
PGPASSWORD=bench {bindir}/createdb -h 127.0.0.1 -p {port} -U postgres bench
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--projects", type=int, default=50, help="projects for the server-target benchmark")
    ap.add_argument("--db-mb", type=int, default=1024, help="size of the database the backup benchmark copies")
    ap.add_argument("--objects", type=int, default=10_000, help="objects in the bucket the backup benchmark copies")
    ap.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["server", "aws", "state", "stores", "backups", "dags", "platform"],
        help="leave a slow section out (repeatable)",
    )
    args = ap.parse_args()
    runs = args.runs

    from airflow_infra.localserver.server import LocalServer, _service_account, find_bindir, free_port

    rows = []
    base, _ = median([PY, "-c", "pass"], runs * 2)
    helpt, _ = median([*CLI, "--help"], runs * 2)
    rows.append(("python -c pass", base, None, ""))
    rows.append(("airflow-infra --help", helpt, None, f"{helpt / base:.1f}x python -c pass (target <= 8x)"))

    bindir = find_bindir(None)
    account = _service_account()
    tmp = Path(tempfile.mkdtemp(prefix="airflow-infra-bench-"))
    os.chmod(tmp, 0o711)
    try:
        bare_times, up_times = [], []
        for i in range(runs):
            work = tmp / f"bare{i}"
            work.mkdir()
            (work / "pw").write_text("bench\n")
            if account:
                for p in (work, work / "pw"):
                    os.chown(p, account.uid, account.gid)
            port = free_port()
            script = work / "bare.sh"
            script.write_text(bare_script(bindir, work, port))
            os.chmod(script, 0o755)
            bare_times.append(timed(["bash", str(script)], cwd=work, user=account.uid if account else None)[0])
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(work / "data"), "-m", "immediate", "-s", "stop"],
                user=account.uid if account else None,
                cwd=work,
                check=True,
            )

            home = tmp / f"home{i}"
            project = tmp / f"proj{i}" / "bench_first"
            project.mkdir(parents=True)
            env = {**os.environ, "AIRFLOW_INFRA_HOME": str(home)}
            up_times.append(timed([*CLI, "-C", str(project), "up"], env=env)[0])
            if i < runs - 1:
                LocalServer(home).stop()
        bare, up = statistics.median(bare_times), statistics.median(up_times)
        rows.append(("bare script: initdb + pg_ctl start + createdb", bare, None, ""))
        rows.append(
            ("up from nothing (first server start)", up, None, f"{up / bare:.2f}x bare script (target <= 1.3x)")
        )

        # The last home's server is still running: a second project, then no-op plans.
        env = {**os.environ, "AIRFLOW_INFRA_HOME": str(home)}
        seconds = []
        for i in range(runs):
            second = tmp / f"second{i}" / f"bench_second_{i}"
            second.mkdir(parents=True)
            seconds.append(timed([*CLI, "-C", str(second), "up"], env=env)[0])
        rows.append(("up of a second project, server running", statistics.median(seconds), None, ""))
        noop, rss = median([*CLI, "-C", str(project), "plan", "--detailed-exitcode"], runs * 2, env=env)
        rows.append(("no-op plan", noop, rss, "target <= 0.5 s and <= 80 MB"))
        LocalServer(home).stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'benchmark':<48} {'median s':>9} {'max RSS MB':>11}  note")
    print("-" * 110)
    for label, secs, kib, note in rows:
        mem = f"{kib / 1024:.1f}" if kib else ""
        print(f"{label:<48} {secs:>9.3f} {mem:>11}  {note}")

    sys.path.insert(0, str(Path(__file__).parent))
    import airflow_platform
    import aws_target
    import backups
    import dags
    import s3_stores
    import server_target
    import state_backends

    sections = [
        ("server target (PostgreSQL + moto)", lambda: server_target.rows(args.projects)),
        ("aws target (moto, PostgreSQL through connect_through)", aws_target.rows),
        ("state backends (moto, PostgreSQL)", state_backends.rows),
        ("stores: moto beside s3rver", lambda: s3_stores.rows(runs)),
        ("backups (PostgreSQL, moto)", lambda: backups.rows(args.db_mb, args.objects)),
        ("DAG import and fleet", dags.rows),
        ("platform (Airflow 3) beside airflow standalone", airflow_platform.rows),
    ]
    for title, section_rows in sections:
        if title.split()[0].lower() in args.skip or (title.startswith("DAG") and "dags" in args.skip):  # the first word
            continue
        print(f"\n{title:<52} {'seconds':>9}  note")
        print("-" * 110)
        for label, secs, note in section_rows():
            print(f"{label:<52} {secs:>9.3f}  {note}")


if __name__ == "__main__":
    main()
