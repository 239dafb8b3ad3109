"""The loader against the real local PostgreSQL: every format and compression gives the rows PostgreSQL's
own CSV parser gives; a file is loaded once, whole or not at all, whatever stops a load and however many
loaders run; a bad value is named with its file, line, column and value, and nothing of its file stays."""

from __future__ import annotations

import bz2
import gzip
import json
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from conftest import Cli, connect_as

FAST = """CREATE TABLE {t} (
  id bigint NOT NULL, n int, s smallint, x double precision, r real, ok boolean, d date,
  at timestamp, atz timestamptz, note text, code varchar(20), doc jsonb
)"""
SLOW = FAST.replace("jsonb\n)", "jsonb, amount numeric(12,3), key uuid\n)")  # numeric, uuid: the server's parser
TEXTS = ["plain", "", "a,comma", 'a "quote"', "two\nlines", "ünïcødé ✓", "  spaced  ", "tab\there", "NULL"]


def rows(n: int, *, slow: bool = False) -> list[dict]:
    out = []
    for i in range(n):
        r = {
            "id": i,
            "n": None if i % 7 == 0 else i * 3 - 1000,
            "s": i % 30000,
            "x": None if i % 11 == 0 else i / 7,
            "r": float(i % 100) / 4,
            "ok": None if i % 5 == 0 else i % 2 == 0,
            "d": None if i % 13 == 0 else f"20{i % 30:02d}-0{1 + i % 9}-1{i % 9}",
            "at": f"2021-03-0{1 + i % 9} 1{i % 10}:2{i % 10}:3{i % 10}.{i % 1000:03d}",
            "atz": None if i % 17 == 0 else f"2022-11-0{1 + i % 9} 0{i % 10}:00:00+00",
            "note": None if i % 9 == 4 else TEXTS[i % len(TEXTS)],
            "code": f"c{i % 97}",
            "doc": json.dumps({"i": i, "t": TEXTS[i % len(TEXTS)]}),
        }
        if slow:
            r["amount"] = None if i % 3 == 0 else f"{i * 1.125:.3f}"
            r["key"] = str(uuid.UUID(int=i * 7919))
        out.append(r)
    return out


def _field(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, str):
        return '"' + v.replace('"', '""') + '"'
    return repr(v) if isinstance(v, float) else str(v)


def write_csv(path: Path, data: list[dict]) -> bytes:
    cols = list(data[0])
    text = ",".join(cols) + "\n" + "".join(",".join(_field(r[c]) for c in cols) + "\n" for r in data)
    path.write_bytes(text.encode())
    return text.encode()


@pytest.fixture(scope="module")
def project(home):
    d = Path(tempfile.mkdtemp(prefix="airflow-infra-loader-")) / ("p" + uuid.uuid4().hex[:10])
    d.mkdir()
    cli = Cli(d, home)
    cli("up")
    out = cli.outputs()
    cli.bucket = Path(out["bucket_path"])  # type: ignore[attr-defined]
    cli.out = out  # type: ignore[attr-defined]
    return cli


def table(project: Cli, ddl: str = FAST) -> str:
    name = "raw.t" + uuid.uuid4().hex[:8]
    with connect_as(project.out, "etl") as etl:  # type: ignore[attr-defined]
        etl.execute(ddl.format(t=name))
    return name


def reference(project: Cli, csv_bytes: bytes, ddl: str) -> str:
    """The rows as PostgreSQL's own CSV parser reads them: what every load must give."""
    name = table(project, ddl)
    with (
        connect_as(project.out, "etl") as etl,  # type: ignore[attr-defined]
        etl.cursor() as cur,
        cur.copy(f"COPY {name} FROM STDIN (FORMAT csv, HEADER true)") as copy,
    ):
        copy.write(csv_bytes)
    return name


def differ(project: Cli, a: str, b: str) -> int:
    with connect_as(project.out, "etl") as etl:  # type: ignore[attr-defined]
        return etl.execute(
            f"SELECT count(*) FROM ((TABLE {a} EXCEPT ALL TABLE {b}) UNION ALL (TABLE {b} EXCEPT ALL TABLE {a})) d"
        ).fetchone()[0]


def count(project: Cli, t: str) -> int:
    with connect_as(project.out, "etl") as etl:  # type: ignore[attr-defined]
        return etl.execute(f"SELECT count(*) FROM {t}").fetchone()[0]


def ledger(project: Cli, t: str) -> list[tuple]:
    with connect_as(project.out, "etl") as etl:  # type: ignore[attr-defined]
        return etl.execute(
            "SELECT url, rows, loaded_by FROM airflow_infra.loads WHERE table_name = %s ORDER BY url", (t,)
        ).fetchall()


@pytest.mark.parametrize("ddl", [FAST, SLOW], ids=["binary-copy", "server-parsed"])
def test_every_format_and_compression_gives_the_rows_postgresql_parses(project, ddl):
    data = rows(3000, slow=ddl is SLOW)
    folder = project.bucket / ("formats-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    raw = write_csv(folder / "plain.csv", data)
    (folder / "g.csv.gz").write_bytes(gzip.compress(raw))
    (folder / "b.csv.bz2").write_bytes(bz2.compress(raw))
    (folder / "z.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    (folder / "magic.data").write_bytes(gzip.compress(raw))  # gzip found by its magic bytes, CSV by --format
    (folder / "l.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    (folder / "l.jsonl.gz").write_bytes(gzip.compress((folder / "l.jsonl").read_bytes()))
    ref = reference(project, raw, ddl)
    pq.write_table(pa.Table.from_pylist(data), folder / "p.parquet", row_group_size=1000)  # text cast to each type
    for name in ("plain.csv", "g.csv.gz", "b.csv.bz2", "z.csv.zst", "magic.data", "l.jsonl", "l.jsonl.gz", "p.parquet"):
        t = table(project, ddl)
        fmt = ["--format", "csv"] if name == "magic.data" else []
        project("load", f"{folder.name}/{name}", t, *fmt)
        assert count(project, t) == len(data), name
        assert differ(project, t, ref) == 0, name


def test_a_file_is_loaded_once_and_reload_replaces_its_rows(project):
    t = table(project)
    folder = project.bucket / ("once-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    for i in range(3):
        write_csv(folder / f"part-{i}.csv", rows(100 + i))
    first = json.loads(project("load", f"{folder.name}/", t, "--json").stdout)
    assert (first["loaded"], first["skipped"], first["rows"]) == (3, 0, 303)
    again = json.loads(project("load", f"{folder.name}/part-*.csv", t, "--json").stdout)
    assert (again["loaded"], again["skipped"], again["rows"]) == (0, 3, 0) and count(project, t) == 303
    assert [r[1] for r in ledger(project, t)] == [100, 101, 102]
    assert {r[2] for r in ledger(project, t)} == {project.out["etl_user"]}  # the etl role, never an admin

    reloaded = json.loads(project("load", f"{folder.name}/part-1.csv", t, "--reload", "--json").stdout)
    assert reloaded["loaded"] == 1 and count(project, t) == 303  # its earlier rows removed, then loaded again

    (folder / "part-2.csv").touch()  # the same bytes, a new mtime: nothing to load
    touched = json.loads(project("load", f"{folder.name}/", t, "--json").stdout)
    assert (touched["loaded"], touched["skipped"]) == (0, 3) and count(project, t) == 303
    write_csv(folder / "part-1.csv", rows(50))  # rewritten in place: its earlier rows replaced by the new ones
    changed = json.loads(project("load", f"{folder.name}/", t, "--json").stdout)
    assert (changed["loaded"], changed["skipped"]) == (1, 2) and count(project, t) == 303 - 101 + 50

    with connect_as(project.out, "etl") as etl:
        etl.execute(f"UPDATE {t} SET note = 'changed' WHERE id = 3")  # one of the file's rows changed since
    refused = project("load", f"{folder.name}/part-0.csv", t, "--reload", expect=1)
    assert "were updated or deleted since); nothing was changed" in refused.stderr
    assert count(project, t) == 252 and len(ledger(project, t)) == 3

    with connect_as(project.out, "etl") as etl:
        etl.execute(f"TRUNCATE {t}")  # emptied by hand: --reload loads the files again
    project("load", f"{folder.name}/", t, "--reload")
    assert count(project, t) == 100 + 50 + 102

    with connect_as(project.out, "reader") as reader:  # what was loaded, the reader reads
        assert reader.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == 252


def checksum(project: Cli, t: str) -> tuple[int, str]:
    with connect_as(project.out, "etl") as etl:  # type: ignore[attr-defined]
        return etl.execute(f"SELECT count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM {t} r").fetchone()


def _until(probe, what: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while not (found := probe()):
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.01)
    return found


@pytest.fixture(scope="module")
def two_files(project):
    """Two files in the bucket, and a table they were loaded into once, cleanly."""
    folder = project.bucket / ("kill-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    write_csv(folder / "a.csv", rows(100_000))
    write_csv(folder / "b.csv", rows(50_000))
    clean = table(project)
    project("load", f"{folder.name}/", clean)
    return folder, checksum(project, clean)


@pytest.mark.parametrize(
    "step", ["before-reading", "copy-in-flight", "connection-cut", "before-commit", "after-first-commit"]
)
def test_a_load_stopped_at_each_step_then_run_again_equals_one_clean_load(project, two_files, step):
    """SIGKILL of the loader (or its session ended by the server) at each step of a load of two files:
    the table holds whole files only, and a rerun gives exactly the rows and checksum of a clean load."""
    folder, clean = two_files
    t = table(project)
    with connect_as(project.out, "etl") as watcher:

        def loader_backend(where: str = ""):
            return watcher.execute(
                "SELECT a.pid FROM pg_stat_activity a LEFT JOIN pg_stat_progress_copy c USING (pid) "
                f"WHERE a.application_name = 'airflow-infra load' {where}"
            ).fetchone()

        blocker = connect_as(project.out, "etl")
        blocker.autocommit = False
        if step == "before-reading":  # the ledger locked: the loader waits before it reads a byte
            blocker.execute("LOCK TABLE airflow_infra.loads IN ACCESS EXCLUSIVE MODE")
        victim = project.popen("load", f"{folder.name}/", t)
        if step == "before-reading":
            _until(lambda: loader_backend("AND a.wait_event_type = 'Lock'"), "waiting for the ledger")
        elif step in ("copy-in-flight", "connection-cut"):
            _until(lambda: loader_backend("AND c.tuples_processed > 1000"), "copying")
        elif step == "before-commit":  # its ledger row cannot go in: the file's rows are sent, not committed
            _until(lambda: loader_backend("AND c.tuples_processed > 1000"), "copying")
            blocker.execute("LOCK TABLE airflow_infra.loads IN SHARE MODE")
            _until(lambda: loader_backend("AND a.wait_event_type = 'Lock' AND a.query LIKE 'INSERT INTO%'"), "sent")
        else:
            _until(lambda: ledger(project, t), "committed its first file")
        if step == "connection-cut":
            (pid,) = loader_backend()
            watcher.execute("SELECT pg_terminate_backend(%s)", (pid,))
            out, err = victim.communicate(timeout=60)
            assert victim.returncode == 1 and "nothing of this file was loaded" in err, err
            assert "0 other file(s) loaded, 1 not started" in err and err.count("\n") == 1, err
        else:
            victim.send_signal(signal.SIGKILL)
            victim.wait(30)
        blocker.rollback()
        blocker.close()
    assert count(project, t) in (0, 100_000)  # whole files only
    project("load", f"{folder.name}/", t)
    assert checksum(project, t) == clean and len(ledger(project, t)) == 2


def test_two_loaders_at_once_load_each_of_20_files_once(project):
    folder = project.bucket / ("race-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    for i in range(20):
        write_csv(folder / f"f{i:02d}.csv", rows(500 + i))
    t = table(project)
    racers = [project.popen("load", f"{folder.name}/*.csv", t, "--jobs", "3", "--json") for _ in range(2)]
    results = [json.loads(p.communicate(timeout=300)[0]) for p in racers]
    assert all(p.returncode == 0 for p in racers)
    assert sum(r["loaded"] for r in results) == 20 and sum(r["skipped"] for r in results) == 20
    assert count(project, t) == sum(500 + i for i in range(20)) and len(ledger(project, t)) == 20


def test_a_bad_value_is_named_and_nothing_of_its_file_is_loaded(project):
    folder = project.bucket / ("bad-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    good = write_csv(folder / "bad.csv", rows(10)).decode().splitlines()
    good[3] = good[3].replace(",", ",oops-", 1)  # line 4 (the header is line 1): n is not an integer
    (folder / "bad.csv").write_text("\n".join(good) + "\n")
    t = table(project)
    refused = project("load", f"{folder.name}/bad.csv", t, expect=1)
    line = refused.stderr.strip().splitlines()[-1]
    assert "bad.csv: line 4, column n" in line and "oops-" in line and "integer" in line, line
    assert "nothing of this file was loaded" in line and "Traceback" not in refused.stderr
    assert count(project, t) == 0 and ledger(project, t) == []


def test_columns_are_matched_by_name_and_a_stranger_is_named(project):
    folder = project.bucket / ("cols-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    (folder / "few.csv").write_text('note,id\n"b",2\n"a",1\n')  # another order, and columns left out: NULL
    t = table(project)
    project("load", f"{folder.name}/few.csv", t)
    with connect_as(project.out, "etl") as etl:
        assert etl.execute(f"SELECT id, note, n FROM {t} ORDER BY id").fetchall() == [(1, "a", None), (2, "b", None)]
    (folder / "extra.csv").write_text("id,colour\n1,red\n")
    refused = project("load", f"{folder.name}/extra.csv", t, expect=1)
    assert "column 'colour' is not a column of" in refused.stderr
    (folder / "noid.csv").write_text("note\nx\n")
    missing = project("load", f"{folder.name}/noid.csv", t, expect=1)
    assert f"{t}.id is NOT NULL and the file has no such column" in missing.stderr
    assert count(project, t) == 2


def test_bad_arguments_are_one_line_and_change_nothing(project):
    t = table(project)
    for args, words in (
        (["nothing-here/*.csv", t], "no file matches"),
        (["x.csv", "no_schema"], "name it as schema.table"),
        (["x.csv", "raw.no_such_table"], "no such table"),
        (["/etc/hostname", t], "cannot tell its format"),
    ):
        if args[0] == "x.csv":
            (project.bucket / "x.csv").write_text("id\n1\n")
        refused = project("load", *args, expect=1)
        assert words in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert count(project, t) == 0


def test_the_library_loads_as_the_cli_does(project, monkeypatch):
    import airflow_infra as ai

    folder = project.bucket / ("lib-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    write_csv(folder / "a.csv", rows(40))
    t = table(project)
    monkeypatch.setenv("AIRFLOW_INFRA_HOME", str(project.home))
    result = ai.load(ai.open_project(project.dir), f"{folder.name}/a.csv", t)
    assert (len(result.loaded), result.rows) == (1, 40) and result.bytes == (folder / "a.csv").stat().st_size
    again = ai.load(project.dir, f"{folder.name}/a.csv", t)  # a path is opened as the project there
    assert (len(again.loaded), len(again.skipped)) == (0, 1)
    cli = json.loads(project("load", f"{folder.name}/a.csv", t, "--json").stdout)
    assert (cli["loaded"], cli["skipped"]) == (0, 1) and count(project, t) == 40
    with pytest.warns(DeprecationWarning):
        assert ai.load(project.dir).dir == project.dir.resolve()  # its older meaning: open the project


def test_replace_swaps_the_rows_in_one_transaction_and_views_keep_working(project):
    folder = project.bucket / ("replace-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    write_csv(folder / "a.csv", rows(100))
    write_csv(folder / "b.csv", rows(30))
    t = table(project)
    with connect_as(project.out, "etl") as etl:
        etl.execute(f"INSERT INTO {t} (id, note) VALUES (-1, 'old')")
        etl.execute(f"CREATE VIEW {t}_v AS SELECT id, note FROM {t}")
    done = json.loads(project("load", f"{folder.name}/", t, "--mode", "replace", "--json").stdout)
    assert done["loaded"] == 2 and count(project, t) == 130
    with connect_as(project.out, "reader") as reader:
        assert reader.execute(f"SELECT count(*) FROM {t}_v WHERE id = -1").fetchone()[0] == 0
        assert reader.execute(f"SELECT count(*) FROM {t}_v").fetchone()[0] == 130
    same = json.loads(project("load", f"{folder.name}/", t, "--mode", "replace", "--json").stdout)
    assert (same["loaded"], same["skipped"]) == (0, 2) and count(project, t) == 130  # already these files

    # a reader in the middle of it sees the old rows, then the new ones: never an empty table
    write_csv(folder / "big.csv", rows(150_000))
    seen: list[int] = []
    loader = project.popen("load", f"{folder.name}/big.csv", t, "--mode", "replace")
    with connect_as(project.out, "reader") as reader:
        while loader.poll() is None:
            seen.append(reader.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
    assert loader.returncode == 0 and set(seen) <= {130, 150_000} and seen
    assert count(project, t) == 150_000 and [r[0].rsplit("/", 1)[1] for r in ledger(project, t)] == ["big.csv"]

    (folder / "broken.csv").write_text("id,n\n1,2\n2,not-a-number\n")
    refused = project("load", f"{folder.name}/broken.csv", t, "--mode", "replace", expect=1)
    assert "line 3, column n" in refused.stderr and "the table was left as it was" in refused.stderr
    assert count(project, t) == 150_000


def test_upsert_inserts_and_updates_on_its_key(project):
    folder = project.bucket / ("upsert-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    t = table(project)
    (folder / "day1.csv").write_text('id,note\n1,"updated"\n2,"new"\n')
    no_index = project("load", f"{folder.name}/day1.csv", t, "--mode", "upsert", "--key", "id", expect=1)
    assert "no unique index or constraint on exactly (id)" in no_index.stderr
    with connect_as(project.out, "etl") as etl:
        etl.execute(f"CREATE UNIQUE INDEX ON {t} (id)")
        etl.execute(f"INSERT INTO {t} (id, note, code) VALUES (1, 'before', 'kept'), (99, 'untouched', 'x')")
    project("load", f"{folder.name}/day1.csv", t, "--mode", "upsert", "--key", "id")
    with connect_as(project.out, "etl") as etl:
        got = etl.execute(f"SELECT id, note, code FROM {t} ORDER BY id").fetchall()
    assert got == [(1, "updated", "kept"), (2, "new", None), (99, "untouched", "x")]  # code: not in the file, kept
    (folder / "dupes.csv").write_text('id,note\n5,"a"\n5,"b"\n')
    twice = project("load", f"{folder.name}/dupes.csv", t, "--mode", "upsert", "--key", "id", expect=1)
    assert "the key (id) = (5) is in the file more than once" in twice.stderr
    assert count(project, t) == 3
    assert project("load", f"{folder.name}/day1.csv", t, "--key", "id", expect=1).stderr.count("--key") >= 1


def test_from_the_project_bucket_on_every_s3_store_and_from_an_s3_url(server_cli, name, store):
    """The server target's bucket on moto and on s3rver (no versions there: the ETag is the version)."""
    import boto3
    from botocore.config import Config

    cli = server_cli(f'endpoint_url = "{store}"\naddressing_style = "path"\ntls_only = false\n')
    cli("up")
    out = cli.out = cli.outputs()  # type: ignore[attr-defined]
    t = "raw.s3_" + uuid.uuid4().hex[:8]
    with connect_as(out, "etl") as etl:
        etl.execute(FAST.format(t=t))
    s3 = boto3.client("s3", endpoint_url=store, region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
    bucket = out["bucket_name"]
    data = rows(2000)
    raw = write_csv(Path(tempfile.mkdtemp()) / "x.csv", data)
    s3.put_object(Bucket=bucket, Key="incoming/2024-01.csv.gz", Body=gzip.compress(raw))
    s3.put_object(Bucket=bucket, Key="incoming/2024-02.csv", Body=raw)
    s3.put_object(Bucket=bucket, Key="incoming/notes.txt", Body=b"not matched")
    env = {"AWS_ENDPOINT_URL": store}
    first = json.loads(cli("load", "incoming/2024-*.csv*", t, "--json", **env).stdout)
    assert (first["loaded"], first["rows"]) == (2, 4000)
    again = json.loads(cli("load", "incoming/2024-*.csv*", t, "--json", **env).stdout)
    assert (again["loaded"], again["skipped"]) == (0, 2)
    s3.put_object(Bucket=bucket, Key="incoming/2024-02.csv", Body=raw)  # written again, the same bytes
    third = json.loads(cli("load", f"s3://{bucket}/incoming/2024-02.csv", t, "--json", **env).stdout)
    # moto keeps versions: a new version id, of the same bytes (the checksum says so): skipped; s3rver
    # keeps none, and the same bytes have the same ETag: the same version, skipped
    assert (third["loaded"], third["skipped"]) == (0, 1)
    s3.put_object(Bucket=bucket, Key="incoming/2024-02.csv", Body=write_csv(Path(tempfile.mkdtemp()) / "y", rows(10)))
    fourth = json.loads(cli("load", f"s3://{bucket}/incoming/2024-02.csv", t, "--json", **env).stdout)
    assert fourth["loaded"] == 1 and count(cli, t) == 2000 + 10  # changed: its earlier rows replaced
    with connect_as(out, "etl") as etl:
        urls = [u for (u,) in etl.execute("SELECT url FROM airflow_infra.loads WHERE table_name = %s", (t,))]
    assert sorted(u.rsplit("/", 1)[1] for u in urls).count("2024-01.csv.gz") == 1
    assert all(u.startswith(f"s3://{bucket}/") for u in urls) and len(urls) == 2

    # and back out: the table into the bucket as Parquet, which loads into a copy of it, the same rows
    done = json.loads(cli("unload", t, "outgoing/t.parquet", "--json", **env).stdout)
    assert done["rows"] == 2010 and done["url"] == f"s3://{bucket}/outgoing/t.parquet"
    copy = "raw.s3_" + uuid.uuid4().hex[:8]
    with connect_as(out, "etl") as etl:
        etl.execute(FAST.format(t=copy))
    cli("load", "outgoing/t.parquet", copy, **env)
    assert differ(cli, t, copy) == 0
    assert "exists; --overwrite" in cli("unload", t, "outgoing/t.parquet", expect=1, **env).stderr


def test_a_terminal_gets_a_progress_bar_and_a_pipe_gets_lines(project):
    import os
    import pty
    import sys

    folder = project.bucket / ("bar-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    write_csv(folder / "a.csv", rows(3000))
    t = table(project)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_infra", "-C", str(project.dir), "load", f"{folder.name}/a.csv", t],
        env={**project.env(), "COLUMNS": "120"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    err = b""
    try:
        while chunk := os.read(leader, 65536):
            err += chunk
    except OSError:
        pass
    out = proc.communicate(timeout=120)[0].decode()
    os.close(leader)
    assert proc.returncode == 0 and "loading 1 file" in err.decode() and "3,000 rows" in err.decode()
    assert out.startswith("Loaded 1 file(s), 3,000 rows")
    piped = project("load", f"{folder.name}/a.csv", t, "--reload")
    assert "loading 1 file" not in piped.stderr and f"{folder.name}/a.csv: 3,000 rows in" in piped.stderr


def test_a_table_made_again_under_its_name_gets_its_files_again(project):
    folder = project.bucket / ("again-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    write_csv(folder / "a.csv", rows(20))
    t = table(project)
    project("load", f"{folder.name}/a.csv", t)
    with connect_as(project.out, "etl") as etl:
        etl.execute(f"DROP TABLE {t}")
        etl.execute(FAST.format(t=t))
    again = json.loads(project("load", f"{folder.name}/a.csv", t, "--json").stdout)
    assert (again["loaded"], again["rows"]) == (1, 20) and count(project, t) == 20 and len(ledger(project, t)) == 1
    refused = project("load", f"{folder.name}/a.csv", "airflow_infra.loads", expect=1)
    assert "the ledger" in refused.stderr  # never a target: fake rows there would make files skip


def test_a_file_cut_short_or_not_what_it_says_loads_nothing(project):
    folder = project.bucket / ("cut-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    raw = write_csv(folder / "whole.csv", rows(20_000))
    zst = zstandard.ZstdCompressor().compress(raw)
    (folder / "cut.csv.zst").write_bytes(zst[: len(zst) // 2])
    (folder / "cut.csv.gz").write_bytes(gzip.compress(raw)[:-4000])
    (folder / "cut.csv.bz2").write_bytes(bz2.compress(raw)[:-4000])
    (folder / "liar.csv.gz").write_bytes(b"no gzip here\n")
    t = table(project)
    for name in ("cut.csv.zst", "cut.csv.gz", "cut.csv.bz2", "liar.csv.gz"):
        refused = project("load", f"{folder.name}/{name}", t, expect=1)
        line = refused.stderr.strip()
        assert name in line and "nothing of this file was loaded" in line and "\n" not in line, line
    assert count(project, t) == 0 and ledger(project, t) == []


def test_a_byte_order_mark_an_empty_file_and_bad_options(project):
    folder = project.bucket / ("odd-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    (folder / "bom.csv").write_bytes(b"\xef\xbb\xbfid,note\n1,x\n")
    (folder / "empty.csv").write_bytes(b"")
    t = table(project)
    project("load", f"{folder.name}/bom.csv", t)
    assert json.loads(project("load", f"{folder.name}/empty.csv", t, "--json").stdout)["loaded"] == 1
    assert count(project, t) == 1
    for args, words in (
        (["--delimiter", ";;"], "--delimiter ';;': one ASCII character"),
        (["--encoding", "bogus"], "--encoding 'bogus': one of"),
    ):
        refused = project("load", f"{folder.name}/bom.csv", t, "--reload", *args, expect=1)
        assert words in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr


@pytest.mark.parametrize(
    ("column", "value"),
    [("x", "1e400"), ("x", "1e-400"), ("r", "3.5e38"), ("id", "0x1F"), ("at", "2024-01-01T10"), ("n", "1_000")],
)
def test_what_postgresql_refuses_is_refused_whatever_parses_it(project, column, value):
    """Arrow reads more than PostgreSQL does (hex, 1e400 as infinity): the loader takes what PostgreSQL takes."""
    folder = project.bucket / ("strict-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    (folder / "v.csv").write_text(f"id,{column}\n1,{value}\n" if column != "id" else f"id\n{value}\n")
    t = table(project)
    refused = project("load", f"{folder.name}/v.csv", t, expect=1)
    assert f"line 2, column {column}" in refused.stderr and count(project, t) == 0, refused.stderr


def test_what_postgresql_takes_is_taken_whatever_parses_it(project):
    folder = project.bucket / ("lenient-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    (folder / "v.csv").write_text("id,n,ok,x\n 7 , 42 ,yes,Infinity\n8,-1,TRUE,  1.5e3\n")
    t = table(project)
    project("load", f"{folder.name}/v.csv", t)
    with connect_as(project.out, "etl") as etl:
        got = etl.execute(f"SELECT id, n, ok, x FROM {t} ORDER BY id").fetchall()
    assert got == [(7, 42, True, float("inf")), (8, -1, True, 1500.0)]


def test_json_lines_keep_numbers_exact_and_objects_as_json(project):
    folder = project.bucket / ("json-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    (folder / "a.jsonl").write_text(
        '{"id": 1, "amount": 12345678901234567.89, "doc": {"a": [1, 2], "b": null}, "note": "x"}\n'
        '{"id": 2, "amount": 1.10, "doc": [true, "s"], "note": null}\n'
        '{"id": 3, "amount": 123456789012345678901234567890, "doc": 5}\n'
    )
    t = table(project, "CREATE TABLE {t} (id bigint, amount numeric, doc jsonb, note text)")
    project("load", f"{folder.name}/a.jsonl", t)
    with connect_as(project.out, "etl") as etl:
        got = etl.execute(f"SELECT id, amount::text, doc::text, note FROM {t} ORDER BY id").fetchall()
    assert got == [
        (1, "12345678901234567.89", '{"a": [1, 2], "b": null}', "x"),
        (2, "1.10", '[true, "s"]', None),
        (3, "123456789012345678901234567890", "5", None),
    ]


@pytest.mark.parametrize("numeric", [True, False], ids=["server-parsed", "binary-copy"])
def test_parquet_durations_are_intervals_and_nanoseconds_are_rounded_to_microseconds(project, numeric):
    folder = project.bucket / ("pq-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    pq.write_table(
        pa.table(
            {
                "id": pa.array([1, 2], pa.int64()),
                "took": pa.array([86_405_000_000, None], pa.duration("us")),
                "at": pa.array([1_700_000_000_123_456_789, 0], pa.timestamp("ns")),
                "amount": pa.array(["1.50", "2"], pa.string()),
            }
        ),
        folder / "d.parquet",
    )
    if numeric:
        t = table(project, "CREATE TABLE {t} (id bigint, took interval, at timestamp, amount numeric)")
    else:  # every type the binary encoder has: the interval as text is the server's to read, so not here
        t = table(project, "CREATE TABLE {t} (id bigint, at timestamp, amount text)")
        pq.write_table(pq.read_table(folder / "d.parquet").drop_columns(["took"]), folder / "d.parquet")
    project("load", f"{folder.name}/d.parquet", t)
    with connect_as(project.out, "etl") as etl:
        got = etl.execute(f"SELECT id, at::text, amount::text FROM {t} ORDER BY id").fetchall()
        took = etl.execute(f"SELECT took::text FROM {t} ORDER BY id").fetchall() if numeric else None
    # PostgreSQL rounds nanoseconds to microseconds: on both paths the loader does the same
    assert got == [(1, "2023-11-14 22:13:20.123457", "1.50"), (2, "1970-01-01 00:00:00", "2")]
    if numeric:  # PostgreSQL reads 86,405,000,000 microseconds as 24:00:05 (it carries no hours into days)
        assert took == [("24:00:05",), (None,)]


REJECTING = "CREATE TABLE {t} (id int NOT NULL, d date, note text CHECK (note <> 'forbidden'), UNIQUE (id))"


def test_bad_rows_are_set_aside_with_their_reasons_and_the_good_rows_loaded(project):
    """--max-errors N: what PostgreSQL refuses is set aside with its line, column and reason (in the
    ledger and the reject file); the good rows are loaded, exactly what a clean file of them gives;
    one bad row more and nothing of the file is loaded; --reload removes the rows it loaded before."""
    folder = project.bucket / ("rejects-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    lines = ["id,d,note"] + [f'{i},2024-01-{1 + i % 28:02d},"n{i}"' for i in range(1, 3001)]
    bad = {  # row of lines (the header is 1) -> (the row, column, words of the reason)
        5: ("4,2024-02-30,x", "d", "out of range"),
        40: ("x39,2024-01-01,x", "id", "integer"),
        41: (',2024-01-01,"two\nlines"', "id", "not-null"),  # the file's lines 41-42: one more from here on
        700: ("699,,forbidden", None, "check constraint"),
        2500: ("7,2024-01-01,dup", None, "duplicate key"),  # id 7 is on line 8, loaded before it
    }
    for at, (text, _, _) in bad.items():
        lines[at - 1] = text
    (folder / "mixed.csv").write_text("\n".join(lines) + "\n")
    good = [ln for i, ln in enumerate(lines, 1) if i > 1 and i not in bad]
    bad = {at + (at > 41): v for at, v in bad.items()}  # the file's lines
    ref = reference(project, ("id,d,note\n" + "\n".join(good) + "\n").encode(), REJECTING)

    t = table(project, REJECTING)
    refused = project("load", f"{folder.name}/mixed.csv", t, "--max-errors", "4", expect=1)
    assert "more than 4 bad rows" in refused.stderr and "line 5, column d" in refused.stderr, refused.stderr
    assert count(project, t) == 0 and ledger(project, t) == []

    rejects = Path(tempfile.mkdtemp()) / "rejects.csv"
    done = json.loads(
        project("load", f"{folder.name}/mixed.csv", t, "--max-errors", "5", "--reject-file", rejects, "--json").stdout
    )
    assert (done["loaded"], done["rows"], done["rejected"]) == (1, len(good), 5)
    assert differ(project, t, ref) == 0  # the good rows, as PostgreSQL's own COPY of them gives
    import csv

    written = list(csv.DictReader(rejects.open(newline="")))
    assert [int(r["line"]) for r in written] == sorted(bad)
    for r in written:
        text, column, words = bad[int(r["line"])]
        assert r["record"] == text and words in r["reason"] and r["column"] == (column or ""), r
    with connect_as(project.out, "etl") as etl:
        kept = etl.execute(
            "SELECT file_line, reason FROM airflow_infra.rejects WHERE table_name = %s ORDER BY file_line", (t,)
        ).fetchall()
    assert [k[0] for k in kept] == sorted(bad)

    again = json.loads(project("load", f"{folder.name}/mixed.csv", t, "--max-errors", "5", "--json").stdout)
    assert (again["skipped"], again["rejected"]) == (1, 5) and count(project, t) == len(good)
    project("load", f"{folder.name}/mixed.csv", t, "--max-errors", "5", "--reload")
    assert count(project, t) == len(good) and differ(project, t, ref) == 0  # its earlier rows removed first

    refused = project("load", f"{folder.name}/mixed.csv", t, "--reject-file", rejects, expect=1)
    assert "--reject-file: given with --max-errors" in refused.stderr


def test_parquet_and_json_lines_set_aside_rows_by_row_and_line(project):
    folder = project.bucket / ("rejects-fmt-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    data = [{"id": i, "note": "forbidden" if i in (10, 777) else f"n{i}"} for i in range(1, 2001)]
    pq.write_table(pa.Table.from_pylist(data), folder / "p.parquet", row_group_size=500)
    lines = [json.dumps(r) for r in data]
    lines[99] = "{not json"  # line 100
    lines[1499] = json.dumps({"id": "fifteen", "note": "x"})  # line 1500
    (folder / "l.jsonl").write_text("\n".join(lines) + "\n")
    for name, expected in (
        ("p.parquet", [(10, None, "check constraint"), (777, None, "check constraint")]),
        ("l.jsonl", [(10, 10, "check"), (100, 100, "not JSON"), (777, 777, "check"), (1500, 1500, "integer")]),
    ):
        t = table(project, REJECTING)
        project("load", f"{folder.name}/{name}", t, "--max-errors", "10")
        with connect_as(project.out, "etl") as etl:
            kept = etl.execute(
                "SELECT file_row, file_line, reason FROM airflow_infra.rejects WHERE table_name = %s ORDER BY 1", (t,)
            ).fetchall()
        assert [(r, ln) for r, ln, _ in kept] == [(r, ln) for r, ln, _ in expected], name
        assert all(words in why for (_, _, why), (_, _, words) in zip(kept, expected, strict=True)), kept
        assert count(project, t) == 2000 - len(expected)


def test_create_makes_the_table_from_the_file_for_the_reader_and_only_when_it_loads(project):
    folder = project.bucket / ("create-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    typed = pa.table(
        {
            "id": pa.array([1, 2], pa.int32()),
            "amount": pa.array([1, 2], pa.decimal128(12, 2)),
            "at": pa.array([0, 1], pa.timestamp("us", tz="UTC")),
            "tags": pa.array([["a"], []], pa.list_(pa.string())),
        }
    )
    pq.write_table(typed, folder / "t.parquet")
    (folder / "c.csv").write_text('id,name,price,day\n1,a,1.5,2024-01-02\n2,"b, c",2.25,2024-02-03\n')
    (folder / "j.jsonl").write_text('{"id": 1, "doc": {"k": [1, 2]}}\n{"id": 2, "doc": null}\n')
    expected = {
        "t.parquet": (
            [],
            [("id", "integer"), ("amount", "numeric"), ("at", "timestamp with time zone"), ("tags", "jsonb")],
        ),
        "c.csv": (
            ["--type", "price=numeric(8,2)"],
            [("id", "bigint"), ("name", "text"), ("price", "numeric"), ("day", "date")],
        ),
        "j.jsonl": ([], [("id", "bigint"), ("doc", "jsonb")]),
    }
    for name, (args, columns) in expected.items():
        t = "raw.made_" + uuid.uuid4().hex[:8]
        done = json.loads(project("load", f"{folder.name}/{name}", t, "--create", *args, "--json").stdout)
        assert done["created"] and done["rows"] == 2, name
        with connect_as(project.out, "reader") as reader:  # the reader's default privileges cover it
            assert reader.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == 2
            got = reader.execute(
                "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = %s::regclass "
                "AND attnum > 0 ORDER BY attnum",
                (t,),
            ).fetchall()
        assert got == columns, name
        again = json.loads(project("load", f"{folder.name}/{name}", t, "--create", "--reload", "--json").stdout)
        assert not again["created"] and count(project, t) == 2, name  # it exists: loaded into (again, in place)
        if name == "t.parquet":
            with connect_as(project.out, "etl") as etl:
                assert etl.execute(f"SELECT tags FROM {t} ORDER BY id").fetchall() == [(["a"],), ([],)]

    # types are inferred from the first 10,000 rows: a later value that does not fit loads nothing, and
    # the table made for it goes again
    (folder / "late.csv").write_text("n\n" + "".join(f"{i}\n" for i in range(10_000)) + "ten thousand\n")
    t = "raw.made_" + uuid.uuid4().hex[:8]
    refused = project("load", f"{folder.name}/late.csv", t, "--create", expect=1)
    assert "line 10002, column n" in refused.stderr and "bigint" in refused.stderr, refused.stderr
    with connect_as(project.out, "etl") as etl:
        assert etl.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None
    project("load", f"{folder.name}/late.csv", t, "--create", "--type", "n=text")
    assert count(project, t) == 10_001
    for args, words in (
        (["--type", "n=int"], "--type: given with --create"),
        (["--create", "--type", "n=int; drop table x"], "COL=TYPE"),
        (["--create", "--type", "nope=int"], "has no column 'nope'"),
    ):
        refused = project("load", f"{folder.name}/late.csv", "raw.made_" + uuid.uuid4().hex[:8], *args, expect=1)
        assert words in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr


@pytest.mark.parametrize("ddl", [FAST, SLOW], ids=["binary-copy", "server-parsed"])
def test_unload_writes_what_loads_back_as_the_same_rows(project, ddl):
    """unload TABLE|QUERY DEST: every format and compression, loaded back into a copy of the table,
    gives the same rows; DEST appears whole or not at all, is replaced only with --overwrite, and a
    query changes nothing (READ ONLY)."""
    data = rows(5000, slow=ddl is SLOW)
    folder = "unload-" + uuid.uuid4().hex[:6]
    source = reference(project, write_csv(Path(tempfile.mkdtemp()) / "s.csv", data), ddl)
    for name in ("t.csv", "t.csv.gz", "t.csv.zst", "t.parquet"):
        done = json.loads(project("unload", source, f"{folder}/{name}", "--json").stdout)
        assert done["rows"] == 5000 and (project.bucket / folder / name).stat().st_size == done["bytes"]
        back = table(project, ddl)
        project("load", f"{folder}/{name}", back)
        assert differ(project, source, back) == 0, name
    query = f"SELECT id, note FROM {source} WHERE id < 10 ORDER BY id"
    project("unload", query, f"{folder}/few.csv")
    assert (project.bucket / folder / "few.csv").read_text().splitlines()[0] == "id,note"
    assert len((project.bucket / folder / "few.csv").read_text().splitlines()) > 10 - 1

    before = (project.bucket / folder / "t.csv").read_bytes()
    refused = project("unload", query, f"{folder}/t.csv", expect=1)
    assert "exists; --overwrite to replace it" in refused.stderr
    assert (project.bucket / folder / "t.csv").read_bytes() == before
    project("unload", query, f"{folder}/t.csv", "--overwrite")
    assert (project.bucket / folder / "t.csv").read_bytes() != before
    for args, words in (
        ([f"DELETE FROM {source} RETURNING id", f"{folder}/gone.csv"], "read-only transaction"),
        ([f"SELECT id / 0 FROM {source}", f"{folder}/gone.csv"], "division by zero"),
        ([source, f"{folder}/gone.txt"], "cannot tell the format"),
        ([source, "/nonexistent-folder/x.csv"], "its folder"),
        ([source, f"{folder}/.hidden.csv"], "hidden part"),
    ):
        refused = project("unload", *args, expect=1)
        assert words in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert count(project, source) == 5000
    assert sorted(p.name for p in (project.bucket / folder).iterdir()) == sorted(
        ["t.csv", "t.csv.gz", "t.csv.zst", "t.parquet", "few.csv"]
    )  # nothing half-written, no temporary file left


def _peak_rss_mb(project: Cli, *args: str) -> float:
    """The loader's peak resident memory (its own, from the kernel's accounting of the child)."""
    import os

    victim = project.popen(*args)
    _, status, usage = os.wait4(victim.pid, 0)
    victim.returncode = os.waitstatus_to_exitcode(status)
    out, err = victim.communicate()
    assert victim.returncode == 0, err
    return usage.ru_maxrss / 1024


def test_a_2_gb_file_loads_in_the_memory_a_small_one_takes(project):
    """Files stream: the peak memory of loading 2 GB of CSV (gzip, generated here) is that of 16 MB."""
    block = "".join(
        f"{i},{i % 1000},{i / 7},2024-01-0{1 + i % 9} 10:00:00+00,{_field(TEXTS[i % len(TEXTS)])},c{i % 97}\n"
        for i in range(120_000)
    ).encode()  # ~8 MB
    folder = project.bucket / ("big-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    member = gzip.compress(block, compresslevel=1)
    head = gzip.compress(b"id,n,x,atz,note,code\n" + block, compresslevel=1)
    (folder / "small.csv.gz").write_bytes(head + member)  # 16 MB of CSV
    with open(folder / "big.csv.gz", "wb") as f:  # gzip members one after the other: one stream of 2 GB
        f.write(head)
        for _ in range(2 * 1024 // 8 - 1):
            f.write(member)
    ddl = "CREATE UNLOGGED TABLE {t} (id bigint, n int, x double precision, atz timestamptz, note text, code text)"
    small, big = table(project, ddl), table(project, ddl)
    small_mb = _peak_rss_mb(project, "load", f"{folder.name}/small.csv.gz", small)
    big_mb = _peak_rss_mb(project, "load", f"{folder.name}/big.csv.gz", big)
    assert count(project, big) == 120_000 * 2 * 1024 // 8
    assert big_mb < small_mb + 48, (small_mb, big_mb)
    with connect_as(project.out, "etl") as etl:
        etl.execute(f"DROP TABLE {big}")
    (folder / "big.csv.gz").unlink()


def test_what_the_hostile_review_found_in_setting_rows_aside(project):
    """Each of these lost or changed rows, or left things behind (a review of --max-errors and --create)."""
    folder = project.bucket / ("review-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    small = "CREATE TABLE {t} (id int, v text)"

    def load(name: str, body: bytes | str, *args: str, expect: int = 0, ddl: str = small):
        (folder / name).write_bytes(body.encode() if isinstance(body, str) else body)
        t = table(project, ddl)
        return t, project("load", f"{folder.name}/{name}", t, *args, expect=expect)

    # a stray quote: PostgreSQL reads the rest of the file as one field; the file fails, not one "row"
    t, refused = load("quote.csv", 'id,v\n1,5" screen\n2,a\nx,c\n4,d\n', "--max-errors", "1", expect=1)
    assert "quote.csv: line 2: a quote opened there is never closed" in refused.stderr, refused.stderr
    assert count(project, t) == 0
    # a line of \. alone would end PostgreSQL's COPY: set aside on this path, refused on the plain one
    t, _ = load("marker.csv", "id,v\n1,a\nx,b\n\\.\n5,e\n6,f\n", "--max-errors", "5")
    assert count(project, t) == 3 and len(ledger(project, t)) == 1 and ledger(project, t)[0][1] == 3
    slow = "CREATE TABLE {t} (id int, v text, n numeric)"  # numeric: PostgreSQL's own parser, no rows aside
    t, refused = load("marker2.csv", "id,v\n1,a\n\\.\n5,e\n", expect=1, ddl=slow)
    assert "line 3: a line of \\. alone" in refused.stderr and count(project, t) == 0
    # replace, then --reload in append mode: the rows replace loaded (in savepoints) are removed first
    t, _ = load("r.csv", "id,v\n1,a\nx,b\n3,c\n", "--mode", "replace", "--max-errors", "5")
    project("load", f"{folder.name}/r.csv", t, "--reload", "--max-errors", "5")
    assert count(project, t) == 2
    # lines ending in CR alone: the fast path reads them; setting rows aside says what it needs
    t, _ = load("cr.csv", "id,v\r1,a\r2,b\r")
    assert count(project, t) == 2
    t, refused = load("cr2.csv", "id,v\r1,a\rx,b\r", "--max-errors", "5", expect=1)
    assert "carriage return alone" in refused.stderr and refused.stderr.count("\n") == 1
    # year 0000, which PostgreSQL refuses, is refused (or set aside) on the fast path too
    t, _ = load(
        "y0.csv", "id,d\n1,0000-01-01\n2,2024-01-01\n", "--max-errors", "1", ddl="CREATE TABLE {t} (id int, d date)"
    )
    assert count(project, t) == 1
    # a byte-order mark is not part of the first field, whichever path reads it
    t, _ = load("bom.csv", b"\xef\xbb\xbf1,a\nx,b\n3,c\n", "--no-header", "--max-errors", "5")
    assert count(project, t) == 2
    # the reject file is never one of the files being loaded
    (folder / "keep.csv").write_text("id,v\n1,a\nx,b\n")
    refused = project(
        "load",
        f"{folder.name}/keep.csv",
        table(project, small),
        "--max-errors",
        "1",
        "--reject-file",
        folder / "keep.csv",
        expect=1,
    )
    assert "is one of the files being loaded" in refused.stderr and "x,b" in (folder / "keep.csv").read_text()
    # --create: never with upsert on a table it would make; a type is only a type; nothing left behind
    for args, words in (
        (["--mode", "upsert", "--key", "id"], "a table made from a file has no unique key"),
        (["--type", "v=text default current_user"], "--type v=text default current_user"),
        (["--type", "id=int primary key"], "--type id=int primary key"),
    ):
        t = "raw.made_" + uuid.uuid4().hex[:8]
        refused = project("load", f"{folder.name}/r.csv", t, "--create", *args, expect=1)
        assert words in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
        with connect_as(project.out, "etl") as etl:
            assert etl.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None
    (folder / "empty.csv").write_text("")
    t = "raw.made_" + uuid.uuid4().hex[:8]
    assert "no columns" in project("load", f"{folder.name}/empty.csv", t, "--create", expect=1).stderr


@pytest.mark.parametrize("ddl", [FAST, SLOW], ids=["binary-copy", "server-parsed"])
def test_ignore_extra_columns_leaves_a_files_other_columns_out_on_every_path(project, ddl):
    data = rows(500, slow=ddl is SLOW)
    for r in data:
        r["extra"] = "not, in the table"
    folder = project.bucket / ("extra-" + uuid.uuid4().hex[:6])
    folder.mkdir()
    raw = write_csv(folder / "x.csv", data)
    (folder / "x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    pq.write_table(pa.Table.from_pylist(data), folder / "x.parquet")
    ref = reference(
        project,
        write_csv(Path(tempfile.mkdtemp()) / "r.csv", [{k: v for k, v in r.items() if k != "extra"} for r in data]),
        ddl,
    )
    for name in ("x.csv", "x.jsonl", "x.parquet"):
        t = table(project, ddl)
        refused = project("load", f"{folder.name}/{name}", t, expect=1)
        assert "column 'extra' is not a column of" in refused.stderr and "--ignore-extra-columns" in refused.stderr
        project("load", f"{folder.name}/{name}", t, "--ignore-extra-columns")
        assert differ(project, t, ref) == 0, name
        t = table(project, ddl)  # and when rows are set aside (PostgreSQL's parser, by savepoints)
        bad = raw.replace(b"\n1,", b"\nx1,", 1) if name == "x.csv" else None
        if bad is not None:
            (folder / "bad.csv").write_bytes(bad)
            project("load", f"{folder.name}/bad.csv", t, "--ignore-extra-columns", "--max-errors", "1")
            assert count(project, t) == 499
