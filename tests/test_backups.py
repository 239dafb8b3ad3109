"""Backups are faithful, atomic and restorable (invariant 1).

Destroy with --force-delete-data, `up` again, `restore`, and compare: rows, object definitions,
every object version byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import connect_as


def _backups(stdout: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in stdout.splitlines() if line.startswith("Backup written: ")]


def _definitions(conn) -> dict:
    """What a user made in the database, as PostgreSQL describes it."""
    return {
        "rows": conn.execute("SELECT count(*), sum(id) FROM raw.events").fetchone(),
        "views": conn.execute("SELECT viewname, definition FROM pg_views WHERE schemaname = 'analytics'").fetchall(),
        "functions": conn.execute(
            "SELECT proname, pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n "
            "ON n.oid = p.pronamespace WHERE nspname = 'staging'"
        ).fetchall(),
        "sequences": conn.execute(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname <> 'pg_catalog' ORDER BY 1"
        ).fetchall(),
    }


def test_destroy_up_restore_round_trip_on_the_local_target(cli):
    cli("up")
    out = cli.outputs()
    with connect_as(out, "etl") as etl:
        etl.execute("CREATE TABLE raw.events (id bigserial PRIMARY KEY, note text)")
        etl.execute("INSERT INTO raw.events (note) SELECT 'n' || g FROM generate_series(1, 500) g")
        etl.execute("CREATE VIEW analytics.busy AS SELECT id FROM raw.events WHERE id % 7 = 0")
        etl.execute("CREATE FUNCTION staging.double(x int) RETURNS int LANGUAGE sql AS 'SELECT 2 * x'")
        etl.execute("CREATE SEQUENCE staging.ticket START 40")
        etl.execute("SELECT nextval('staging.ticket')")
        before = _definitions(etl)
    bucket = Path(out["bucket_path"])
    (bucket / "in").mkdir()
    files = {"in/a.csv": os.urandom(3000), "b.bin": os.urandom(10), "in/empty": b"", "line\nbreak": b"nl"}
    for rel, data in files.items():
        (bucket / rel).write_bytes(data)

    done = cli("destroy", "--auto-approve", "--force-delete-data")
    dump = next(b for b in _backups(done.stdout) if b.endswith(".dump"))
    archive = next(b for b in _backups(done.stdout) if b.endswith(".tar.gz"))
    # the paths are printed before the resources go
    assert done.stdout.index(dump) < done.stdout.index("Destroying")
    assert not bucket.exists()

    cli("up")
    restored = cli("restore", dump)
    assert "Restored the dump into postgres_database.main" in restored.stdout
    assert "Restored 5 items into local_bucket.workfiles" in cli("restore", archive).stdout  # 4 files, 1 folder
    out = cli.outputs()
    with connect_as(out, "etl") as etl:
        assert _definitions(etl) == before
    with connect_as(out, "reader") as reader:  # the reader's grants come with the restored tables
        assert reader.execute("SELECT count(*) FROM analytics.busy").fetchone()[0] == 71
    for rel, data in files.items():
        assert (bucket / rel).read_bytes() == data
    assert "No changes." in cli("plan").stdout

    # into a database that holds data: refused, then with the flag backed up first and replaced
    refused = cli("restore", dump, expect=1)
    assert "holds" in refused.stderr and "--force-delete-data" in refused.stderr
    again = cli("restore", dump, "--force-delete-data")
    assert len(_backups(again.stdout)) == 1
    with connect_as(out, "etl") as etl:
        assert _definitions(etl) == before


def test_restore_refuses_what_is_not_a_backup(cli, tmp_path):
    cli("up")
    (tmp_path / "x.txt").write_text("x")
    for arg, said in ((str(tmp_path / "x.txt"), "not a backup"), (str(tmp_path / "nope.dump"), "no such file")):
        proc = cli("restore", arg, expect=1)
        assert said in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


SERVER = """[project]
name = "{name}"
environment = "dev"
[target]
kind = "server"
[bucket]
tls_only = false
backup = "{backup}"
[database]
schemas = ["raw"]
"""

# moto's server answers 404 to a key holding a newline (S3 itself takes it): the local target's test
# below backs up and restores a file name with a newline; here a tab and other odd bytes.
KEYS = ["/abs.txt", "a/../b", "../x", "a/b", "k" * 1000, "tab\there", "ünï %2F+ ?#", "seed.csv"]


def test_seed_bucket_versions_and_odd_keys_round_trip(make_cli, moto_endpoint, admin_dsn, s3, tmp_path):
    """Objects written before versioning was on (the "null" version an imported seed bucket holds)
    and keys that are not paths all come back, every version, byte for byte."""
    backup = tmp_path / "vault"
    cli = make_cli()
    name = cli.dir.name
    (cli.dir / "airflow-infra.toml").write_text(SERVER.format(name=name, backup=backup))
    cli("apply", "--auto-approve")
    bucket = f"{name}-dev-workfiles"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    for k in KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=f"before versioning: {k}".encode())
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="seed.csv", Body=b"after versioning")
    s3.delete_object(Bucket=bucket, Key="a/b")  # a delete marker above the null version

    def history(b: str) -> dict:
        page = s3.list_object_versions(Bucket=b)
        out: dict = {}
        # oldest first; the latest last where two share a timestamp (a restore writes them within one)
        entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
        for v in sorted(entries, key=lambda v: (v["LastModified"], v["IsLatest"])):
            body = (
                None
                if "Size" not in v
                else s3.get_object(Bucket=b, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            )
            out.setdefault(v["Key"], []).append(hashlib.sha256(body).hexdigest() if body is not None else "marker")
        return out

    before = history(bucket)
    assert len(before["seed.csv"]) == 2 and before["a/b"][-1] == "marker"

    done = cli("destroy", "--auto-approve", "--force-delete-data")
    [manifest] = [b for b in _backups(done.stdout) if b.endswith(".manifest.json")]
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    doc = json.loads(Path(manifest).read_text())
    assert sorted({v["Key"] for v in doc["versions"]}) == sorted(KEYS)
    assert len(doc["versions"]) == len(KEYS) + 2

    cli("apply", "--auto-approve")
    assert f"Restored {len(KEYS) + 2} items into s3_bucket.workfiles" in cli("restore", manifest).stdout
    assert history(bucket) == before


def test_a_killed_backup_leaves_nothing_named_like_a_complete_one(cli):
    cli("up")
    bucket = Path(cli.outputs()["bucket_path"])
    for i in range(3000):
        (bucket / f"f{i}.bin").write_bytes(os.urandom(2000))
    backups = cli.home / "backups"
    before = set(backups.iterdir()) if backups.exists() else set()
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_infra", "-C", str(cli.dir), "destroy", "--auto-approve", "--force-delete-data"],
        env=cli.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".partial") for p in (backups.iterdir() if backups.exists() else [])):
        assert time.monotonic() < deadline and proc.poll() is None, "the backup never started"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    new = set(backups.iterdir()) - before
    assert new and all(p.name.startswith(".") and p.name.endswith(".partial") for p in new)
    assert len(list(bucket.iterdir())) == 3001  # nothing deleted
    cli("force-unlock", json.loads((cli.dir / ".airflow-infra" / "state.lock").read_text())["ID"])
    done = cli("destroy", "--auto-approve", "--force-delete-data")
    assert not any(p.name.endswith(".partial") for p in backups.iterdir())  # the leftover is cleaned
    archive = next(b for b in _backups(done.stdout) if b.endswith(".tar.gz"))
    assert Path(archive).stat().st_size > 3000 * 2000


def test_a_delete_the_store_refuses_stops_the_destroy_with_the_bucket_intact(
    make_cli, moto_endpoint, admin_dsn, s3, tmp_path
):
    """Every per-key error of DeleteObjects is checked: the bucket stays, whole and in the state."""
    from s3proxy import S3Proxy

    cli = make_cli()
    name = cli.dir.name
    (cli.dir / "airflow-infra.toml").write_text(SERVER.format(name=name, backup=tmp_path / "vault"))
    cli("apply", "--auto-approve")
    bucket = f"{name}-dev-workfiles"
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"locked/{i}.csv", Body=b"x")
    with connect_as(cli.outputs(), "etl") as etl:  # the database holds data too
        etl.execute("CREATE TABLE raw.kept AS SELECT g AS id FROM generate_series(1, 10) g")
    with S3Proxy(moto_endpoint) as store:
        store.refuse_deletes = True
        failed = cli("destroy", "--auto-approve", "--force-delete-data", expect=1, AWS_ENDPOINT_URL_S3=store.url)
    assert "3 object version(s) could not be deleted" in failed.stderr and "AccessDenied" in failed.stderr
    assert "s3_bucket.workfiles" in cli("state", "list").stdout
    assert len(s3.list_object_versions(Bucket=bucket)["Versions"]) == 3
    # deletions of data run one at a time: the bucket's failed first, so the database was never dropped
    assert "postgres_database.main" in cli("state", "list").stdout
    with connect_as(cli.outputs(), "reader") as reader:
        assert reader.execute("SELECT count(*) FROM raw.kept").fetchone()[0] == 10
    done = cli("destroy", "--auto-approve", "--force-delete-data")  # the store lets go: destroy finishes
    assert "Destroy complete!" in done.stdout


def test_a_bucket_archive_that_cannot_be_read_changes_nothing(cli, tmp_path):
    import tarfile

    cli("up")
    bucket = Path(cli.outputs()["bucket_path"])
    (bucket / "important.csv").write_text("keep me\n")
    whole = tmp_path / "whole.tar.gz"
    with tarfile.open(whole, "w:gz") as tar:
        for i in range(30):
            data = tmp_path / f"f{i}"
            data.write_bytes(os.urandom(20_000))
            tar.add(data, arcname=f"f{i}")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[:300_000])
    failed = cli("restore", str(cut), "--force-delete-data", expect=1)
    assert "cannot restore" in failed.stderr and "is backed up at" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in bucket.iterdir()) == [".airflow-infra-bucket", "important.csv"]


def test_links_in_a_bucket_come_back_when_they_stay_inside_it(cli):
    cli("up")
    bucket = Path(cli.outputs()["bucket_path"])
    (bucket / "2024.csv").write_text("rows\n")
    os.symlink("2024.csv", bucket / "latest.csv")
    os.symlink("/etc/hostname", bucket / "outside")
    os.mkfifo(bucket / "pipe")
    done = cli("destroy", "--auto-approve", "--force-delete-data")
    archive = next(b for b in _backups(done.stdout) if b.endswith(".tar.gz"))
    cli("up")
    restored = cli("restore", archive).stdout
    assert "Skipped: outside" in restored and "Skipped: pipe" in restored
    assert os.readlink(bucket / "latest.csv") == "2024.csv" and (bucket / "latest.csv").read_text() == "rows\n"
    assert not (bucket / "outside").exists() and not (bucket / "outside").is_symlink()


def test_a_schema_backup_holds_the_extensions_installed_in_it(cli, superuser, server, name):
    cli("up")
    with superuser(name) as conn:
        conn.execute("CREATE EXTENSION hstore SCHEMA staging")
        conn.execute(f"SET ROLE {name}_owner")
        conn.execute("CREATE TABLE staging.kv (id int, h staging.hstore)")
        conn.execute("INSERT INTO staging.kv VALUES (1, 'a=>1'), (2, 'b=>2')")
    toml = cli.dir / "airflow-infra.toml"
    original = toml.read_text()
    toml.write_text(original.replace('"staging", ', ""))
    done = cli("apply", "--auto-approve", "--force-delete-data")
    [dump] = [b for b in _backups(done.stdout) if b.endswith(".dump")]
    toml.write_text(original)
    cli("apply", "--auto-approve")
    cli("restore", dump, "--force-delete-data")
    with superuser(name) as conn:
        assert conn.execute("SELECT staging.fetchval(h, 'b') FROM staging.kv WHERE id = 2").fetchone()[0] == "2"


def test_a_backup_inside_the_bucket_it_protects_is_refused(make_cli, moto_endpoint, admin_dsn, s3, tmp_path):
    cli = make_cli()
    name = cli.dir.name
    bucket = f"{name}-dev-workfiles"
    (cli.dir / "airflow-infra.toml").write_text(SERVER.format(name=name, backup=f"s3://{bucket}/backups"))
    for args in (("apply", "--auto-approve"), ("destroy", "--auto-approve", "--force-delete-data")):
        refused = cli(*args, expect=1)  # the containment rule, before anything is made or deleted
        assert f"s3://{bucket}/backups/ lies in the bucket s3://{bucket}/" in refused.stderr
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_what_is_written_after_the_backup_is_never_deleted(moto_endpoint, s3, tmp_path):
    """Emptying deletes exactly the versions the backup holds: a later write stays, and says so."""
    import uuid

    import pytest

    from airflow_infra.errors import ProviderError
    from airflow_infra.ownership import Owner
    from airflow_infra.providers.s3 import S3BucketProvider
    from airflow_infra.resources import Observed, Resource

    bucket = "late-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="early.csv", Body=b"1")
    provider = S3BucketProvider(lambda: s3, Owner("p", "dev", "lineage"))
    r = Resource("s3_bucket", "workfiles", {"name": bucket})
    provider.backup(r, Observed(r.attrs), tmp_path)
    s3.put_object(Bucket=bucket, Key="late.csv", Body=b"2")  # an Airflow task still writing
    with pytest.raises(ProviderError, match="received new objects"):
        provider.delete(r, Observed(r.attrs), force=True)
    assert [v["Key"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]] == ["late.csv"]


def test_a_restore_runs_what_the_project_wrote_with_no_more_than_its_owner_may(cli, superuser, name):
    """A function the etl user planted in a CHECK constraint runs while the dump's rows are loaded: it
    tries RESET ROLE and ALTER ROLE ... SUPERUSER. The restore's session is the etl role's own, so it
    can reach nothing beyond the owner role (invariant 7)."""
    cli("up")
    out = cli.outputs()
    with connect_as(out, "etl") as etl:
        etl.execute("CREATE TABLE staging.seen (who text, super boolean)")
        etl.execute(f"""CREATE FUNCTION staging.planted(x int) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN
                EXECUTE 'RESET ROLE';
                INSERT INTO staging.seen SELECT session_user, rolsuper FROM pg_roles WHERE rolname = session_user;
                BEGIN
                    EXECUTE 'ALTER ROLE {name}_etl SUPERUSER';
                EXCEPTION WHEN OTHERS THEN NULL;
                END;
                RETURN true;
            END $$""")
        etl.execute("CREATE TABLE raw.t (id int CHECK (staging.planted(id)))")
        etl.execute("INSERT INTO raw.t SELECT g FROM generate_series(1, 3) g")
        etl.execute("TRUNCATE staging.seen")
    dump = next(
        b for b in _backups(cli("destroy", "--auto-approve", "--force-delete-data").stdout) if b.endswith(".dump")
    )
    cli("up")
    cli("restore", dump)
    with superuser(name) as conn:
        assert conn.execute("SELECT count(*) FROM raw.t").fetchone()[0] == 3
        seen = conn.execute("SELECT DISTINCT who, super FROM staging.seen").fetchall()
        assert seen == [(f"{name}_etl", False)]  # the planted code ran, in the etl role's own session
        assert conn.execute(
            "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = %s", (f"{name}_etl",)
        ).fetchone() == (False, False)


def test_a_restore_into_roles_that_carry_more_than_the_owner_is_refused(cli, superuser, name):
    cli("up")
    out = cli.outputs()
    with connect_as(out, "etl") as etl:
        etl.execute("CREATE TABLE raw.t (id int)")
    dump = next(
        b for b in _backups(cli("destroy", "--auto-approve", "--force-delete-data").stdout) if b.endswith(".dump")
    )
    cli("up")
    with superuser() as conn:
        conn.execute(f"GRANT pg_write_server_files TO {name}_etl")
    refused = cli("restore", dump, expect=1)
    assert "pg_write_server_files" in refused.stderr and "nothing was restored" in refused.stderr
    with superuser(name) as conn:
        assert conn.execute("SELECT to_regclass('raw.t')").fetchone()[0] is None


def test_no_password_in_the_environment_of_pg_dump_or_pg_restore(server_cli, name, admin_dsn, tmp_path):
    """invariant 5: pg_dump and pg_restore read their password from a passfile of the run's own (0600,
    gone after), never PGPASSWORD: a wrapper first on PATH records what each was given."""
    import shutil

    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    for program in ("pg_dump", "pg_restore"):
        real = shutil.which(program)
        script = wrappers / program
        script.write_text(
            f"#!/bin/sh\nenv > {tmp_path}/{program}.$$.env\n"
            f'[ -n "$PGPASSFILE" ] && stat -L -c %a "$PGPASSFILE" >> {tmp_path}/{program}.$$.env\n'
            f'exec {real} "$@"\n'
        )
        script.chmod(0o755)
    path = f"{wrappers}:{os.environ['PATH']}"
    cli = server_cli("tls_only = false")
    cli("apply", "--auto-approve")
    out = cli.outputs()
    with connect_as(out, "etl") as etl:
        etl.execute("CREATE TABLE raw.t AS SELECT 1 AS id")
    done = cli("destroy", "--auto-approve", "--force-delete-data", PATH=path)
    dump = next(b for b in _backups(done.stdout) if b.endswith(".dump"))
    cli("apply", "--auto-approve")
    cli("restore", dump, PATH=path)
    seen = sorted(tmp_path.glob("pg_*.env"))
    assert {p.name.split(".")[0] for p in seen} == {"pg_dump", "pg_restore"}
    admin_password = admin_dsn.split(":")[2].split("@")[0]
    for recorded in seen:
        text = recorded.read_text()
        assert "PGPASSWORD" not in text and admin_password not in text and out["etl_password"] not in text
        passfile = next((ln.split("=", 1)[1] for ln in text.splitlines() if ln.startswith("PGPASSFILE=")), None)
        if passfile:  # pg_restore --list reads no server: it gets no password at all
            # a file in memory the child inherited (0600), on no disk: nothing left behind however it ends
            assert passfile.startswith("/proc/self/fd/") and text.splitlines()[-1] == "600"


def test_no_text_of_a_dump_runs_in_the_admins_session(cli, superuser, server, name, tmp_path):
    """An untrusted extension is made by the admin, with a statement of airflow-infra's own: a dump whose
    extension entry was changed by hand (to ALTER ROLE ... SUPERUSER) is refused, and nothing runs."""
    cli("up")
    scratch = f"{name}_craft"
    with superuser() as conn:
        conn.execute(f"CREATE DATABASE {scratch}")
    with superuser(scratch) as conn:
        conn.execute("CREATE EXTENSION dblink")
    dump = tmp_path / "craft.dump"
    subprocess.run(
        [str(server.bindir / "pg_dump"), "-Fc", f"--file={dump}", f"--dbname={scratch}"],
        env=server.client_env(),
        check=True,
    )
    with superuser() as conn:
        conn.execute(f"DROP DATABASE {scratch}")
    data = dump.read_bytes()
    for old, new in [
        (b"CREATE EXTENSION IF NOT EXISTS dblink WITH SCHEMA public;", f"ALTER ROLE {name}_etl SUPERUSER;"),
        (b"COMMENT ON EXTENSION dblink IS ", "SELECT 1;"),
    ]:
        assert old in data
        data = data.replace(old, new.encode().ljust(len(old)))
    evil = tmp_path / "evil.dump"
    evil.write_bytes(data)
    refused = cli("restore", str(evil), expect=1)
    assert "not the statement pg_dump writes" in refused.stderr and refused.stderr.count("\n") == 1
    with superuser(name) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (f"{name}_etl",)).fetchone() == (False,)
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'dblink'").fetchone() == (0,)

    honest = tmp_path / "honest.dump"  # the dump as pg_dump wrote it: the extension comes back
    honest.write_bytes(dump.read_bytes())
    cli("restore", str(honest))
    with superuser(name) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'dblink'").fetchone() == (1,)


def test_backup_now_then_restore_gives_the_rows_and_files_of_that_moment(make_cli, moto_endpoint, admin_dsn, tmp_path):
    """`backup` takes the database and the bucket as they are, changes nothing, and `backup list` shows
    them (and not another project's); restoring them after rows and objects changed and were deleted
    gives what was there at the backup, on the local target and on the server target's S3 bucket."""
    local, other = make_cli(), make_cli()
    server = make_cli()
    (server.dir / "airflow-infra.toml").write_text(SERVER.format(name=server.dir.name, backup=tmp_path / "vault"))
    other("up")
    other("backup")
    for cli in (local, server):
        cli("up") if cli is local else cli("apply", "--auto-approve")
        out = cli.outputs()
        with connect_as(out, "etl") as etl:  # made by the etl role itself, as a DAG does
            etl.execute("CREATE TABLE raw.events (id bigserial PRIMARY KEY, note text)")
            etl.execute("INSERT INTO raw.events (note) SELECT 'n' || g FROM generate_series(1, 500) g")
            before = _definitions(etl)
        put, read = _bucket_io(cli, out)
        put("in/a.csv", b"first")
        put("b.bin", b"kept")

        done = json.loads(cli("backup", "--json").stdout)
        dump = next(b for b in done["backups"] if b.endswith(".dump"))
        bucket_backup = next(b for b in done["backups"] if not b.endswith(".dump"))
        assert "No changes." in cli("plan").stdout  # a backup changes nothing
        listed = json.loads(cli("backup", "list", "--json").stdout)
        assert {b["path"] for b in listed} == set(done["backups"]) and all(b["bytes"] > 0 for b in listed)
        assert {b["kind"] for b in listed} == {"database", "bucket"}

        with connect_as(out, "etl") as etl:  # changed and deleted since
            etl.execute("DELETE FROM raw.events WHERE id > 100")
            etl.execute("UPDATE raw.events SET note = 'changed'")
        put("in/a.csv", b"second")
        put("new.txt", b"after the backup")

        replaced = cli("restore", dump, "--force-delete-data")
        [first] = _backups(replaced.stdout)  # what was there (the etl role's own table) backed up first
        cli("restore", bucket_backup, "--force-delete-data")
        with connect_as(out, "etl") as etl:
            assert _definitions(etl) == before
        listing = subprocess.run(["pg_restore", "--list", first], capture_output=True, text=True, check=True)
        assert "TABLE DATA raw events" in listing.stdout
        with connect_as(out, "reader") as reader:  # the restored table is the owner's: the reader reads it
            assert reader.execute("SELECT count(*) FROM raw.events").fetchone()[0] == 500
        assert read("in/a.csv") == b"first" and read("b.bin") == b"kept"


def _bucket_io(cli, out: dict):
    """put(key, bytes) and read(key) on the project's bucket: its directory, or its S3 bucket."""
    if out.get("bucket_path"):
        root = Path(out["bucket_path"])

        def put(key: str, data: bytes) -> None:
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            (root / key).write_bytes(data)

        return put, lambda key: (root / key).read_bytes()
    import boto3

    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    bucket = out["bucket_name"]
    return (
        lambda key, data: s3.put_object(Bucket=bucket, Key=key, Body=data),
        lambda key: s3.get_object(Bucket=bucket, Key=key)["Body"].read(),
    )
