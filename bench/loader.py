"""The loader beside the tools users have today; prints a table.

Run: .venv/bin/python bench/loader.py [--rows 2000000] [--runs 3] [--peers]

The data and the table are ../shared/loader-data's (gen.py: crime incidents; table.sql). Every run
loads into an empty table (TRUNCATE, the ledger's rows of it deleted, CHECKPOINT first) of a fresh local
project, on its PostgreSQL with synchronous_commit off (as the reference figures were measured). Figures
are medians; ratio = psql \\copy's median / the tool's (higher is faster); RSS is the client's peak.

Rows measured:
- psql \\copy of the CSV (the baseline), and psycopg's copy() of the raw CSV bytes (the server parses)
- airflow-infra load: CSV, CSV.gz and Parquet from the project's bucket, the CSV from S3 (moto)
  targets: CSV and Parquet >= 2.0x, from S3 >= 0.95x of the local bucket, peak RSS <= 128 MB
- with --peers, those installed of: pandas to_sql and an Airflow insert_rows-style executemany (both
  on the first 200,000 rows: they are 50-100x slower), Sling (`pip install sling-linux-amd64`, or
  `sling` on PATH) and pgloader (`apt-get install pgloader`), those two on a 200,000-row file of the
  same generator. DuckDB's postgres extension is downloaded from the internet at first use: not here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "loader-data"
PY = sys.executable
CACHE = Path(os.environ.get("AIRFLOW_INFRA_BENCH_DATA", Path(tempfile.gettempdir()) / "airflow-infra-loader-data"))


def data(rows: int) -> Path:
    """OUT.csv, OUT.csv.gz, OUT.parquet for rows rows, made once by the shared generator."""
    CACHE.mkdir(parents=True, exist_ok=True)
    prefix = CACHE / f"d{rows}"
    if not Path(f"{prefix}.parquet").exists():
        subprocess.run([PY, SHARED / "gen.py", str(rows), str(prefix)], check=True, stdout=subprocess.DEVNULL)
    return prefix


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of cmd. The peak is GNU time's, which forks small: a
    child forked from this process (grown by moto's in-process server) starts its high-water mark at this
    process's size, which exec keeps (the S3 rows read 860-950 MB so)."""
    gnu_time = Path("/usr/bin/time")
    with tempfile.NamedTemporaryFile("r") as peak:
        wrapped = [str(gnu_time), "-f", "%M", "-o", peak.name, *cmd] if gnu_time.exists() else cmd
        start = time.perf_counter()
        proc = subprocess.Popen(wrapped, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {' '.join(map(str, cmd))}: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        kb = int(peak.read().strip().splitlines()[-1]) if gnu_time.exists() else usage.ru_maxrss
    return elapsed, kb / 1024


class Bench:
    def __init__(self, work: Path, rows: int):
        self.work, self.rows = work, rows
        self.home = work / "home"
        self.project = work / "bench_loader"
        self.project.mkdir(parents=True)
        self.env = {**os.environ, "AIRFLOW_INFRA_HOME": str(self.home)}
        subprocess.run(
            [PY, "-m", "airflow_infra", "-C", self.project, "up"], env=self.env, check=True, stdout=subprocess.DEVNULL
        )
        out = json.loads(
            subprocess.run(
                [PY, "-m", "airflow_infra", "-C", self.project, "output", "--json", "--show-secrets"],
                env=self.env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        self.out = {k: v["value"] for k, v in out.items()}
        self.bucket = Path(self.out["bucket_path"])
        from airflow_infra.localserver.server import LocalServer

        self.server = LocalServer(self.home)
        with self.server.connect(self.out["postgres_database"]) as su:
            su.execute(f"ALTER DATABASE {self.out['postgres_database']} SET synchronous_commit = off")
            ddl = (
                (SHARED / "table.sql")
                .read_text()
                .replace("DROP TABLE IF EXISTS t;", "")
                .replace("CREATE TABLE t", "CREATE TABLE raw.t")
            )
            su.execute(ddl)
            su.execute(f"ALTER TABLE raw.t OWNER TO {self.out['postgres_database']}_owner")
        self.psql_env = {
            **os.environ,
            "PGHOST": self.out["postgres_host"],
            "PGPORT": str(self.out["postgres_port"]),
            "PGUSER": self.out["etl_user"],
            "PGPASSWORD": self.out["etl_password"],
            "PGDATABASE": self.out["postgres_database"],
        }

    def empty(self) -> None:
        with self.server.connect(self.out["postgres_database"]) as su:
            su.execute("TRUNCATE raw.t")
            if su.execute("SELECT to_regclass('airflow_infra.loads')").fetchone()[0]:
                su.execute("DELETE FROM airflow_infra.loads WHERE table_name = 'raw.t'")
            su.execute("CHECKPOINT")

    def count(self) -> int:
        with self.server.connect(self.out["postgres_database"]) as su:
            return int(su.execute("SELECT count(*) FROM raw.t").fetchone()[0])

    def run(self, cmd: list[str], env: dict[str, str], runs: int, rows: int) -> tuple[float, float]:
        results = []
        for _ in range(runs):
            self.empty()
            results.append(timed(cmd, env))
            got = self.count()
            if got != rows:
                raise SystemExit(f"{cmd[:4]}: {got} rows loaded, not {rows}")
        return statistics.median(r[0] for r in results), max(r[1] for r in results)

    def load(self, source: str) -> list[str]:
        return [PY, "-m", "airflow_infra", "-C", str(self.project), "load", source, "raw.t"]


PSYCOPG_COPY = """
import sys, psycopg
with psycopg.connect() as c, c.cursor() as cur, cur.copy("COPY raw.t FROM STDIN (FORMAT csv, HEADER true)") as cp:
    with open(sys.argv[1], "rb") as f:
        while b := f.read(1 << 20):
            cp.write(b)
"""
INSERT_ROWS = """
import csv, sys, psycopg, itertools
# what Airflow's DbApiHook.insert_rows does: executemany of INSERT ... VALUES, a commit every 1000 rows
with psycopg.connect() as c, open(sys.argv[1], newline="") as f:
    r = csv.reader(f); cols = next(r)
    sql = f"INSERT INTO raw.t ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
    rows = ([v if v != "" else None for v in row] for row in itertools.islice(r, int(sys.argv[2])))
    while chunk := list(itertools.islice(rows, 1000)):
        with c.cursor() as cur:
            cur.executemany(sql, chunk)
        c.commit()
"""
PANDAS = """
import sys, pandas, sqlalchemy
df = pandas.read_csv(sys.argv[1], nrows=int(sys.argv[2]))
engine = sqlalchemy.create_engine("postgresql+psycopg://", connect_args={})
df.to_sql("t", engine, schema="raw", if_exists="append", index=False, chunksize=10000)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peers", action="store_true", help="also pandas, insert_rows, DuckDB, Sling, pgloader")
    args = ap.parse_args()
    prefix = data(args.rows)
    work = Path(tempfile.mkdtemp(prefix="airflow-infra-bench-loader-"))
    os.chmod(work, 0o711)
    table: list[tuple[str, str, float, float, int]] = []
    try:
        b = Bench(work, args.rows)
        for ext in ("csv", "csv.gz", "parquet"):
            shutil.copy(f"{prefix}.{ext}", b.bucket / f"d.{ext}")
        psql = [
            "psql",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            f"\\copy raw.t FROM '{prefix}.csv' (FORMAT csv, HEADER true)",
        ]
        base, rss = b.run(psql, b.psql_env, args.runs, args.rows)
        table.append(("psql \\copy (the server parses)", "csv", base, rss, args.rows))
        t, rss = b.run([PY, "-c", PSYCOPG_COPY, f"{prefix}.csv"], b.psql_env, args.runs, args.rows)
        table.append(("psycopg copy() of the raw bytes", "csv", t, rss, args.rows))
        for ext in ("csv", "csv.gz", "parquet"):
            t, rss = b.run(b.load(f"d.{ext}"), b.env, args.runs, args.rows)
            table.append(("airflow-infra load, the project's bucket", ext, t, rss, args.rows))
        from servers import moto_and_postgres  # noqa: F401 - moto in server mode, as the other benchmarks

        t_s3, rss = _from_s3(b, prefix, args)
        table.append(("airflow-infra load, S3 (moto, loopback)", "csv", t_s3, rss, args.rows))
        if args.peers:
            slice_rows = min(args.rows, 200_000)
            for label, code in (("Airflow insert_rows-style executemany", INSERT_ROWS), ("pandas to_sql", PANDAS)):
                try:
                    t, rss = b.run([PY, "-c", code, f"{prefix}.csv", str(slice_rows)], b.psql_env, 1, slice_rows)
                    table.append((label + f" (first {slice_rows:,} rows)", "csv", t, rss, slice_rows))
                except SystemExit as exc:
                    table.append((label + f": not measured ({str(exc)[:60]})", "csv", 0.0, 0.0, 0))
            small = data(slice_rows)
            for label, cmd, env in _peers(b, Path(f"{small}.csv")):
                try:
                    t, rss = b.run(cmd, env, 1, slice_rows)
                    table.append((label + f" ({slice_rows:,}-row file)", "csv", t, rss, slice_rows))
                except SystemExit as exc:
                    table.append((label + f": not measured ({str(exc)[:60]})", "csv", 0.0, 0.0, 0))
    finally:
        from airflow_infra.localserver.server import LocalServer

        server = LocalServer(work / "home")
        if server.running_pid() is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    base_rate = args.rows / base
    print(
        f"\nLoader, {args.rows:,} rows ({(Path(f'{prefix}.csv').stat().st_size) / 1e6:,.0f} MB of CSV), median of {args.runs}"
    )
    print(f"{'tool':<58} {'format':<8} {'seconds':>8} {'rows/s':>11} {'ratio':>6} {'RSS MB':>7}")
    for label, fmt, secs, rss, n in table:
        if not secs:
            print(f"{label:<58} {fmt:<8}")
            continue
        rate = n / secs
        print(f"{label:<58} {fmt:<8} {secs:>8.2f} {rate:>11,.0f} {rate / base_rate:>6.2f} {rss:>7.0f}")


def _peers(b: Bench, csv_path: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """Sling and pgloader, where installed: (label, command, environment)."""
    import importlib.util

    out = []
    url = (
        f"postgresql://{b.out['etl_user']}:{b.out['etl_password']}@{b.out['postgres_host']}:"
        f"{b.out['postgres_port']}/{b.out['postgres_database']}"
    )
    spec = importlib.util.find_spec("sling_linux_amd64")
    sling = (
        str(Path(spec.origin).parent / "bin" / "sling-linux-amd64") if spec and spec.origin else shutil.which("sling")
    )
    if sling:
        os.chmod(sling, 0o755)
        env = {
            **os.environ,
            "PG": url + "?sslmode=disable",
            "SLING_LOADED_AT_COLUMN": "false",  # (else it adds a column to the table)
            "SLING_HOME_DIR": str(b.work / "sling"),
        }
        cmd = [sling, "run", "--src-stream", csv_path.as_uri(), "--tgt-conn", "PG", "--tgt-object", "raw.t"]
        out.append(("Sling 1.4 (truncate mode)", [*cmd, "--mode", "truncate"], env))
    if shutil.which("pgloader"):
        spec_file = b.work / "pgloader.load"
        cols = "id, occurred_at, category, description, latitude, longitude, beat, arrest, report_date"
        spec_file.write_text(
            f"LOAD CSV FROM '{csv_path}' ({cols}) INTO {url} TARGET TABLE raw.t\n"
            "WITH skip header = 1, fields optionally enclosed by '\"', fields escaped by double-quote,\n"
            "     fields terminated by ',';\n"
        )
        out.append(("pgloader 3.6 (Debian)", ["pgloader", "--quiet", str(spec_file)], dict(os.environ)))
    return out


def _from_s3(b: Bench, prefix: Path, args: argparse.Namespace) -> tuple[float, float]:
    """The CSV put into a bucket of moto in server mode, loaded from its s3:// URL."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from airflow_infra.localserver.server import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        env = {
            **b.env,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        s3.create_bucket(Bucket="bench")
        s3.upload_file(f"{prefix}.csv", "bench", "d.csv")
        return b.run(b.load("s3://bench/d.csv"), env, args.runs, args.rows)
    finally:
        moto.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
