"""The embedded local default, end to end through the CLI against the real local PostgreSQL."""

from __future__ import annotations

import json

import psycopg
import pytest
from conftest import WRITES_OF_UP, connect_as


def test_up_gives_working_roles_and_grants(cli, make_cli, name):
    up = cli("up")
    assert "Apply complete! Resources: 8 added" in up.stdout
    assert (cli.dir / "airflow-infra.toml").read_text().count(f'name = "{name}"') == 1
    out = cli.outputs()
    assert out["postgres_database"] == name and out["etl_user"] == f"{name}_etl"
    assert out["schemas"] == ["analytics", "raw", "staging"]
    assert out["bucket_url"].startswith("file:///")

    with connect_as(out, "etl") as etl:
        for schema in out["schemas"]:
            etl.execute(f"CREATE TABLE {schema}.t (id int)")
            etl.execute(f"INSERT INTO {schema}.t VALUES (1), (2)")
    with connect_as(out, "reader") as reader:
        for schema in out["schemas"]:
            assert reader.execute(f"SELECT count(*) FROM {schema}.t").fetchone()[0] == 2
        for stmt in (
            "INSERT INTO raw.t VALUES (3)",
            "CREATE TABLE raw.mine (id int)",
            "DROP TABLE raw.t",
            "CREATE TABLE public.mine (id int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(stmt)

    other = make_cli()
    other("up")
    theirs = other.outputs()
    for who in ("etl", "reader"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            connect_as(theirs, who, dbname=name)


def test_noop_plan_new_schema_and_drift(cli, superuser, name):
    cli("up")
    noop = cli("plan", "--detailed-exitcode")
    assert "No changes." in noop.stdout and "Changed outside" not in noop.stdout

    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text().replace('"analytics"]', '"analytics", "marts"]'))
    p = json.loads(cli("plan", "--json", "--detailed-exitcode", expect=2).stdout)
    assert [(c["action"], c["address"]) for c in p["changes"]] == [("create", "postgres_schema.marts")]
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in cli("plan").stdout
    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")

    with superuser(name) as conn:  # a role dropped by hand
        conn.execute(f"DROP OWNED BY {name}_reader")
        conn.execute(f"DROP ROLE {name}_reader")
    drift = cli("plan", "--detailed-exitcode", expect=2).stdout
    section = drift.split("Changed outside airflow-infra:")[1].split("airflow-infra will perform")[0]
    assert "postgres_role.reader has been deleted" in section
    assert "+ postgres_role.reader" in drift
    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")
    with connect_as(cli.outputs(), "reader") as reader:  # the same password works again
        assert (
            reader.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'marts'").fetchone()[0]
            == 1
        )


def test_no_secret_in_files_or_plain_output(cli):
    texts = [
        cli("up").stdout,
        cli("plan").stdout,
        cli("apply", "--auto-approve").stdout,
        cli("output").stdout,
        cli("output", "--json").stdout,
        cli("state", "show", "postgres_role.etl").stdout,
    ]
    out = cli.outputs()
    secrets = [out["etl_password"], out["reader_password"]]
    assert all(len(s) >= 32 for s in secrets)
    texts += [
        (cli.dir / "airflow-infra.toml").read_text(),
        (cli.dir / ".airflow-infra" / "state.json").read_text(),
        (cli.home / "postgres" / "server.log").read_text(),
    ]
    for secret in secrets:
        for text in texts:
            assert secret not in text
    assert json.loads(cli("output", "--json").stdout)["etl_password"] == {"sensitive": True}
    refused = cli("output", "etl_password", expect=1)
    assert "--show-secrets" in refused.stderr and out["etl_password"] not in refused.stderr
    assert cli("output", "etl_password", "--show-secrets").stdout.strip() == out["etl_password"]
    secret_file = cli.home / "secrets.json"
    assert secret_file.stat().st_mode & 0o777 == 0o600


def test_state_list_show_and_outputs_shape(cli, name):
    cli("init")
    assert cli("output", "--json").stdout.strip() == "{}"  # nothing before apply
    cli("up")
    addresses = cli("state", "list").stdout.split()
    assert addresses == sorted(addresses) and "postgres_database.main" in addresses and len(addresses) == 8
    shown = json.loads(cli("state", "show", "postgres_database.main").stdout)
    assert shown["attrs"]["name"] == name and shown["attrs"]["public_access"] is False
    out = json.loads(cli("output", "--json", "--show-secrets").stdout)
    for key in (
        "bucket_url",
        "postgres_host",
        "postgres_port",
        "postgres_database",
        "etl_user",
        "etl_password",
        "reader_user",
        "reader_password",
        "schemas",
        "postgres_uri",
    ):
        assert set(out[key]) == {"value", "sensitive"}
    assert {k for k, v in out.items() if v["sensitive"]} == {"etl_password", "reader_password", "postgres_uri"}
    with psycopg.connect(out["postgres_uri"]["value"]) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == f"{name}_etl"
    state = cli.state()
    assert state["serial"] == WRITES_OF_UP and state["version"] == 1 and len(state["lineage"]) == 36


def test_saved_plan_applies_once_and_refuses_when_stale(cli):
    cli("init")
    planfile = str(cli.dir / "tfplan.json")
    cli("plan", "--out", planfile)
    applied = cli("apply", planfile)
    assert "Apply complete! Resources: 8 added" in applied.stdout
    again = cli("apply", planfile, expect=1)
    assert "saved plan was made from state serial 0" in again.stderr
    assert again.stderr.count("\n") == 1


def test_a_saved_plan_naming_no_action_of_ours_is_refused_and_changes_nothing(cli):
    """Plan actions are an enum: a hand-edited saved plan whose action is none of them (before, apply ended
    in "unexpected KeyError") is refused in one line as a malformed plan file, and nothing is applied."""
    import json

    cli("init")
    planfile = cli.dir / "tfplan.json"
    cli("plan", "--out", str(planfile))
    doc = json.loads(planfile.read_text())
    doc["changes"][0]["action"] = "obliterate"
    planfile.write_text(json.dumps(doc))
    refused = cli("apply", str(planfile), expect=1)
    assert refused.stderr.count("\n") == 1 and str(planfile) in refused.stderr and "Traceback" not in refused.stderr
    assert not (cli.dir / ".airflow-infra" / "state.json").exists()


def test_apply_and_destroy_refuse_without_terminal(cli):
    cli("init")
    for args in (("apply",), ("destroy",)):
        proc = cli(*args, expect=1)
        assert "no terminal" in proc.stderr and "--auto-approve" in proc.stderr
    assert not (cli.dir / ".airflow-infra" / "state.json").exists()


def test_destroy_refuses_data_then_backs_up(cli, superuser, name, server):
    cli("up")
    out = cli.outputs()
    with connect_as(out, "etl") as etl:
        etl.execute("CREATE TABLE raw.events (id int)")
        etl.execute("INSERT INTO raw.events SELECT generate_series(1, 100)")
    before = (cli.dir / ".airflow-infra" / "state.json").read_text()
    refused = cli("destroy", "--auto-approve", expect=1)
    assert "--force-delete-data" in refused.stderr and "raw" in refused.stderr
    assert (cli.dir / ".airflow-infra" / "state.json").read_text() == before
    with connect_as(out, "etl") as etl:
        assert etl.execute("SELECT count(*) FROM raw.events").fetchone()[0] == 100

    done = cli("destroy", "--auto-approve", "--force-delete-data")
    backups = [line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("Backup written: ")]
    assert backups and all(b.startswith(str(cli.home / "backups")) for b in backups)
    import subprocess

    full = next(b for b in backups if b.endswith(".dump") and "-raw-" not in b)
    listing = subprocess.run(
        [str(server.bindir / "pg_restore"), "--list", full], capture_output=True, text=True, check=True
    )
    assert "TABLE DATA raw events" in listing.stdout
    with superuser() as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE %s", (f"{name}\\_%",)).fetchone()[0] == 0
    assert cli.state()["resources"] == []
    assert not (cli.home / "buckets" / name).exists()


def test_bucket_with_objects_is_archived_before_delete(cli, name):
    cli("up")
    bucket = cli.home / "buckets" / name
    (bucket / "in").mkdir()
    (bucket / "in" / "data.csv").write_text("a,b\n1,2\n")
    refused = cli("destroy", "--auto-approve", expect=1)
    assert "local_bucket.workfiles holds 2 entries" in refused.stderr
    assert (bucket / "in" / "data.csv").exists()
    done = cli("destroy", "--auto-approve", "--force-delete-data")
    archive = next(line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.endswith(".tar.gz"))
    import tarfile

    with tarfile.open(archive) as tar:
        assert "in/data.csv" in tar.getnames()
    assert not bucket.exists()


def test_local_status_and_binaries(cli, server):
    status = json.loads(cli("local", "status", "--json").stdout)
    assert status["running"] and status["host"] == "127.0.0.1" and status["port"] != 5432
    assert status["data_dir"].startswith(str(cli.home))
    assert (server.bindir / "postgres").exists()


def test_local_server_life_cycle_and_start_on_demand(make_cli, fresh_home):
    c = make_cli()
    c.home = fresh_home
    assert "not initialised" in c("local", "status").stdout
    c("up")
    status = json.loads(c("local", "status", "--json").stdout)
    assert status["running"] and status["port"] != 5432
    port = status["port"]
    assert "stopped" in c("local", "stop").stdout
    assert not json.loads(c("local", "status", "--json").stdout)["running"]
    c("plan", "--detailed-exitcode")  # starts the server on demand, on the same port
    status = json.loads(c("local", "status", "--json").stdout)
    assert status["running"] and status["port"] == port
    import socket

    with socket.socket() as s:  # listens on loopback only
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.1", port)) == 0


def test_plan_imports_only_what_the_local_target_needs(cli):
    import subprocess
    import sys

    cli("up")
    for args, absent in ((("--help",), ("pydantic", "psycopg", "boto3")), (("plan",), ("boto3", "botocore", "rich"))):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "airflow_infra", "-C", str(cli.dir), *args],
            env=cli.env(),
            capture_output=True,
            text=True,
            check=True,
        )
        imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
        assert "click" in imported
        assert not imported & set(absent), (args, imported & set(absent))


@pytest.mark.parametrize("answer, applied", [("no", False), ("yes", True)])
def test_apply_asks_on_a_terminal(cli, answer, applied):
    from conftest import on_terminal

    cli("init")
    seen, status = on_terminal(["-C", str(cli.dir), "apply"], cli.env(), answer)
    assert "Plan: 8 to add, 0 to change, 0 to destroy." in seen
    assert status == (0 if applied else 1)  # "no" at the prompt is a refusal: exit 1
    assert (cli.dir / ".airflow-infra" / "state.json").exists() is applied


def test_admin_sessions_are_pooled_and_bounded(server):
    """Fleet commands share admin sessions per server; idle ones are capped so that many projects never
    exhaust the server's connections (apply --all over 100 projects once did)."""
    from airflow_infra.providers.postgres import POOL, PgAdmin
    from airflow_infra.secretstores.file import FileSecretStore as SecretStore

    admin = PgAdmin(
        server.connect,
        server="test-pool",
        secrets=SecretStore(server.home),
        bindir=lambda: server.bindir,
        client_env=dict,
    )
    with admin.session() as a:
        pid = a.info.backend_pid
    with admin.session() as b:
        assert b.info.backend_pid == pid  # reused, not reconnected
    held = [server.connect() for _ in range(20)]
    for i, conn in enumerate(held):
        POOL.give(("test-pool", f"db{i}"), conn)
    assert sum(not c.closed for c in held) == POOL.MAX_IDLE
    with server.connect() as conn:
        count = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'").fetchone()[
            0
        ]
    assert count < 30
    for i in range(20):
        POOL.close(("test-pool", f"db{i}"))
    POOL.close(("test-pool", "postgres"))
    assert all(c.closed for c in held)


def test_state_versions_and_restore(cli, make_cli):
    cli("up")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text().replace('"analytics"]', '"analytics", "marts"]'))
    cli("apply", "--auto-approve")
    versions = json.loads(cli("state", "versions", "--json").stdout)
    current, previous = versions[0], versions[1]
    assert current["current"] and not previous["current"]
    assert previous["serial"] == current["serial"] - 1 and previous["resources"] == current["resources"] - 1
    saved = str(cli.dir / "old.plan")  # made from the state that is about to go bad
    cli("plan", "--out", saved)
    (cli.dir / ".airflow-infra" / "state.json").write_text('{"version": 1, "serial": ')  # damaged
    corrupt = cli("plan", expect=1)
    assert f"state rollback {current['serial'] - 1}" in corrupt.stderr
    listed = cli("state", "versions").stdout
    assert "cannot be read" in listed and not any(line.endswith("current") for line in listed.splitlines())
    restored = cli("state", "rollback", str(previous["serial"]))
    assert f"Restored state serial {previous['serial']}" in restored.stdout
    assert "postgres_schema.marts" not in cli("state", "list").stdout
    # the restored serial is past the bad one: the plan saved from it is stale
    stale = cli("apply", "--auto-approve", saved, expect=1)
    assert "saved plan was made from state serial" in stale.stderr
    # marts exists (it was made) but the restored state does not hold it: plan adopts it, makes nothing
    p = json.loads(cli("plan", "--json").stdout)
    assert [(c["action"], c["address"]) for c in p["changes"]] == [("adopt", "postgres_schema.marts")]

    other = make_cli()
    other("init")
    refused = other("state", "restore", "1", expect=1)
    assert "no such state is kept" in refused.stderr

    # another project's state, copied in as the backup, is never restored over a corrupt one
    other("up")
    (cli.dir / ".airflow-infra" / "state.json.backup").write_bytes(
        (other.dir / ".airflow-infra" / "state.json").read_bytes()
    )
    (cli.dir / ".airflow-infra" / "state.json").write_text("{")
    theirs = json.loads(other("state", "versions", "--json").stdout)[0]["serial"]
    refused = cli("state", "restore", str(theirs), expect=1)
    assert "another project's state" in refused.stderr


def test_state_from_a_newer_release_or_with_an_unknown_type_is_refused(cli):
    cli("up")
    path = cli.dir / ".airflow-infra" / "state.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "version": 99}))
    for command in (("plan",), ("apply", "--auto-approve"), ("destroy", "--auto-approve")):
        proc = cli(*command, expect=1)
        assert "written by a newer airflow-infra" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert json.loads(path.read_text())["version"] == 99  # left as it is
    doc["resources"].append({"type": "kafka_topic", "name": "x", "attrs": {}, "depends_on": []})
    path.write_text(json.dumps(doc))
    proc = cli("plan", expect=1)
    assert "kafka_topic.x" in proc.stderr and "'kafka_topic'" in proc.stderr and "Traceback" not in proc.stderr
