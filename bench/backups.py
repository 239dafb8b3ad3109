"""Backup and restore throughput, beside the bare tools doing the same copy.

- a database of --db-mb MB (default 1024): our backup (pg_dump into a temporary name, renamed) and
  restore (pg_restore as the owner role, one transaction) beside `pg_dump -Fc` and `pg_restore`;
- a bucket of --objects objects (default 10,000, 1 KiB each) on moto: our backup to a directory and
  to another bucket, and our restore, beside boto3 doing what `aws s3 sync` does (10 transfers at a
  time: download, server-side copy, upload).                                   target: <= 1.2x each

Run alone: .venv/bin/python bench/backups.py [--db-mb N] [--objects N]; bench/run.py runs it too.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _database_rows(tmp: Path, server, db_mb: int) -> list[tuple[str, float, str]]:
    from airflow_infra import commands
    from airflow_infra.children import minimal_env
    from airflow_infra.resources import Observed

    project = tmp / "bench_backup"
    project.mkdir()
    commands.up(project)
    p = commands.open_project(project)
    target = p.target()
    db = p.backend().read().resources["postgres_database.main"]
    provider = target.providers("bench")["postgres_database"]
    with server.connect(db.attrs["name"]) as conn:
        # about 250 bytes a row on disk
        rows = db_mb * 1024 * 1024 // 250
        conn.execute(
            f"CREATE TABLE raw.big AS SELECT g AS id, md5(g::text) || repeat('x', 180) AS payload "
            f"FROM generate_series(1, {rows}) g"
        )
        conn.execute(f"ALTER TABLE raw.big OWNER TO {db.attrs['owner']}")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    env = minimal_env(**{k: v for k, v in server.client_env().items() if k.startswith("PG")})
    bindir = server.bindir

    def bare_dump() -> None:
        subprocess.run(
            [str(bindir / "pg_dump"), "-Fc", f"--file={tmp / 'bare.dump'}", f"--dbname={db.attrs['name']}"],
            env=env,
            check=True,
        )

    def fresh(name: str) -> None:
        with server.connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name} OWNER {db.attrs['owner']}")

    bare_backup = _timed(bare_dump)
    fresh("bench_bare_restore")
    bare_restore = _timed(
        lambda: subprocess.run(
            [str(bindir / "pg_restore"), "--dbname=bench_bare_restore", str(tmp / "bare.dump")], env=env, check=True
        )
    )
    dumps: list[Path] = []
    ours_backup = _timed(lambda: dumps.append(provider.backup(db, Observed(db.attrs), tmp / "backups")))
    fresh("bench_our_restore")
    ours_restore = _timed(
        lambda: target.database.admin().pg_restore(str(dumps[0]), "bench_our_restore", role=db.attrs["owner"])
    )
    target.close()
    mb = size / 1024 / 1024
    return [
        (f"pg_dump -Fc, {mb:.0f} MB database", bare_backup, f"{mb / bare_backup:.0f} MB/s"),
        (
            "our backup (pg_dump, whole, renamed)",
            ours_backup,
            f"{ours_backup / bare_backup:.2f}x pg_dump (target <= 1.2x)",
        ),
        ("pg_restore into an empty database", bare_restore, f"{mb / bare_restore:.0f} MB/s"),
        (
            "our restore (as the owner, one transaction)",
            ours_restore,
            f"{ours_restore / bare_restore:.2f}x pg_restore (target <= 1.2x)",
        ),
    ]


def _bucket_rows(tmp: Path, objects: int) -> list[tuple[str, float, str]]:
    import os

    import boto3

    from airflow_infra.ownership import Owner
    from airflow_infra.providers.s3 import S3BucketProvider
    from airflow_infra.resources import Resource

    s3 = boto3.client("s3", region_name="us-east-1")
    for b in ("bench-src", "bench-vault", "bench-bare-restore", "bench-our-restore"):
        s3.create_bucket(Bucket=b)
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    body = os.urandom(1024)
    keys = [f"in/{i // 100:03d}/{i:05d}.bin" for i in range(objects)]
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket="bench-src", Key=k, Body=body), keys))

    def sync(fn) -> None:  # aws s3 sync's way: list, then 10 transfers at a time
        listed = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench-src")
            for o in page.get("Contents", [])
        ]
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(fn, listed))

    bare_dir = tmp / "bare-sync"

    def download(k: str) -> None:
        path = bare_dir / k
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file("bench-src", k, str(path))

    bare_to_dir = _timed(lambda: sync(download))
    bare_copy = _timed(
        lambda: sync(
            lambda k: s3.copy_object(
                Bucket="bench-vault", Key=f"bare/{k}", CopySource={"Bucket": "bench-src", "Key": k}
            )
        )
    )
    files = [p for p in bare_dir.rglob("*") if p.is_file()]
    bare_upload = _timed(
        lambda: list(
            ThreadPoolExecutor(10).map(
                lambda p: s3.put_object(
                    Bucket="bench-bare-restore", Key=str(p.relative_to(bare_dir)), Body=p.read_bytes()
                ),
                files,
            )
        )
    )

    r = Resource("s3_bucket", "workfiles", {"name": "bench-src"})
    to_dir = S3BucketProvider(lambda: s3, Owner("bench", "dev", "bench"))
    to_s3 = S3BucketProvider(lambda: s3, Owner("bench", "dev", "bench"), backup_to="s3://bench-vault/ours")
    manifests: list[str] = []
    ours_to_dir = _timed(lambda: manifests.append(to_dir._backup(r, "bench-src", "", tmp / "backups")))
    ours_copy = _timed(lambda: to_s3._backup(r, "bench-src", "", tmp / "unused"))
    into = Resource("s3_bucket", "workfiles", {"name": "bench-our-restore"})
    ours_restore = _timed(lambda: to_dir.restore(into, manifests[0]))
    n = f"{objects:,} objects"
    return [
        (f"boto3 sync-style download, {n}", bare_to_dir, ""),
        (
            "our backup to a directory (every version)",
            ours_to_dir,
            f"{ours_to_dir / bare_to_dir:.2f}x (target <= 1.2x)",
        ),
        (f"boto3 sync-style server-side copy, {n}", bare_copy, ""),
        ("our backup to another bucket", ours_copy, f"{ours_copy / bare_copy:.2f}x (target <= 1.2x)"),
        (f"boto3 sync-style upload, {n}", bare_upload, ""),
        ("our restore from the directory backup", ours_restore, f"{ours_restore / bare_upload:.2f}x (target <= 1.2x)"),
    ]


def rows(db_mb: int = 1024, objects: int = 10_000) -> list[tuple[str, float, str]]:
    from servers import moto_and_postgres

    with moto_and_postgres("airflow-infra-bench-backups-") as (tmp, server):
        return _database_rows(tmp, server, db_mb) + _bucket_rows(tmp, objects)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    ap = argparse.ArgumentParser()
    ap.add_argument("--db-mb", type=int, default=1024)
    ap.add_argument("--objects", type=int, default=10_000)
    a = ap.parse_args()
    print(f"{'backups (PostgreSQL, moto)':<52} {'seconds':>9}  note")
    print("-" * 110)
    for label, secs, note in rows(a.db_mb, a.objects):
        print(f"{label:<52} {secs:>9.3f}  {note}")
