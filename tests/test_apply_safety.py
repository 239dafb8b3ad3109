"""Apply under pressure: two writers at once, and a writer killed half-way.

To catch an apply in the middle without hooks in the product, the test holds an open
transaction that creates the project's reader role: the apply's own CREATE ROLE waits on it,
as it would behind any slow server, until the test rolls it back.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from conftest import WRITES_OF_UP


def _wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _state(cli) -> dict | None:
    try:
        return json.loads((cli.dir / ".airflow-infra" / "state.json").read_text())
    except (FileNotFoundError, ValueError):
        return None


@pytest.fixture
def blocked_reader(superuser, name):
    """An open transaction creating <name>_reader: the apply's CREATE ROLE waits behind it."""
    conn = superuser()
    conn.autocommit = False
    conn.execute(f"CREATE ROLE {name}_reader")
    yield conn
    conn.rollback()
    conn.close()


def test_second_apply_fails_on_the_lock_or_waits(cli, blocked_reader):
    cli("init")
    first = cli.popen("apply", "--auto-approve")
    lock = cli.dir / ".airflow-infra" / "state.lock"
    _wait_for(lock.exists, what="the first apply's lock")
    holder = json.loads(lock.read_text())

    second = cli("apply", "--auto-approve", expect=1)
    err = second.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"state is locked by {holder['Who']} since {holder['Created']} (apply, lock ID {holder['ID']})" in err
    shown = json.loads(cli("state", "lock", "--json").stdout)
    assert shown["ID"] == holder["ID"] and shown["pid"] == first.pid

    waiting = cli.popen("--lock-timeout", "120", "apply", "--auto-approve")
    time.sleep(1.0)
    assert waiting.poll() is None  # still waiting for the lock
    blocked_reader.rollback()
    assert first.wait(120) == 0, first.stderr.read()
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert "No changes." in out

    state = _state(cli)
    # the waiting apply found nothing to do and wrote nothing
    assert state["serial"] == WRITES_OF_UP and len(state["resources"]) == 8
    assert not lock.exists()
    cli("plan", "--detailed-exitcode")


def test_apply_killed_midway_converges(cli, blocked_reader, superuser, name):
    cli("init")
    victim = cli.popen("apply", "--auto-approve")
    # the first resource recorded (the first write may be a pending create's intent, with none yet)
    _wait_for(lambda: len((_state(cli) or {}).get("resources", [])) >= 1, what="the first resource in state")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(30)
    blocked_reader.rollback()  # the killed apply's CREATE ROLE can now run to its end (rollback: client gone)
    written = _state(cli)
    assert 1 <= len(written["resources"]) < 8

    lock = json.loads((cli.dir / ".airflow-infra" / "state.lock").read_text())
    stale = cli("apply", "--auto-approve", expect=1)
    assert "stale" in stale.stderr and lock["ID"] in stale.stderr
    wrong = cli("force-unlock", "not-the-id", expect=1)
    assert "does not match" in wrong.stderr
    cli("force-unlock", lock["ID"])

    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")
    state = _state(cli)
    assert len(state["resources"]) == 8
    with superuser() as conn:  # no duplicate, no orphan: exactly our three roles and one database
        roles = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s ORDER BY 1", (f"{name}\\_%",)
        ).fetchall()
        assert [r[0] for r in roles] == [f"{name}_etl", f"{name}_owner", f"{name}_reader"]


def test_resource_made_but_not_recorded_is_adopted(cli, superuser, name):
    """An apply that died after CREATE but before writing state: the next plan adopts, never duplicates."""
    cli("up")
    state_file = cli.dir / ".airflow-infra" / "state.json"
    doc = json.loads(state_file.read_text())
    doc["resources"] = [r for r in doc["resources"] if r["type"] != "postgres_schema"]
    doc["serial"] += 1
    state_file.write_text(json.dumps(doc))
    p = json.loads(cli("plan", "--json", "--detailed-exitcode", expect=2).stdout)
    assert {c["action"] for c in p["changes"]} == {"adopt"} and len(p["changes"]) == 3
    assert "3 to adopt" in cli("plan").stdout
    done = cli("apply", "--auto-approve").stdout  # says what it did: not "0 added, 0 changed, 0 destroyed" alone
    assert "Apply complete! Resources: 0 added, 0 changed, 0 destroyed, 3 adopted." in done
    cli("plan", "--detailed-exitcode")


def test_something_not_ours_is_never_taken_over(cli, superuser, name):
    with superuser() as conn:
        conn.execute(f"CREATE ROLE {name}_etl LOGIN")
    try:
        cli("init")
        proc = cli("plan", expect=1)
        assert f"'{name}_etl' exists, not made by airflow-infra" in proc.stderr
        cli("apply", "--auto-approve", expect=1)
        assert not (cli.dir / ".airflow-infra" / "state.json").exists()
        with superuser() as conn:
            assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0] == 0
    finally:
        with superuser() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {name}_etl")


def test_eight_applies_racing_on_postgres_state(cli, state_dsn):
    cli("init")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text().replace('backend = "local"', 'backend = "postgres"'))
    racers = [
        cli.popen("--lock-timeout", "120", "apply", "--auto-approve", AIRFLOW_INFRA_STATE_DSN=state_dsn)
        for _ in range(8)
    ]
    outcomes = [(p.wait(180), p.stdout.read()) for p in racers]
    assert all(code == 0 for code, _ in outcomes), [p.stderr.read() for p in racers]
    assert sum("Apply complete!" in out for _, out in outcomes) == 1  # one applied, seven found nothing to do
    assert not (cli.dir / ".airflow-infra").exists()  # nothing written locally
    listed = cli("state", "list", AIRFLOW_INFRA_STATE_DSN=state_dsn).stdout.split()
    assert len(listed) == 8
    cli("plan", "--detailed-exitcode", AIRFLOW_INFRA_STATE_DSN=state_dsn)
    import psycopg

    with psycopg.connect(state_dsn) as conn:
        serial = conn.execute("SELECT serial FROM airflow_infra_state WHERE project = %s", (cli.dir.name,)).fetchone()[
            0
        ]
    assert serial == WRITES_OF_UP  # by the one apply that had work


def test_state_migrate_local_to_postgres_and_back(cli, state_dsn):
    cli("up")
    before = cli.state()
    moved = cli("state", "migrate", "--to", "postgres", AIRFLOW_INFRA_STATE_DSN=state_dsn)
    assert f"postgres:{cli.dir.name}/dev" in moved.stdout
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text().replace('backend = "local"', 'backend = "postgres"'))
    (cli.dir / ".airflow-infra" / "state.json").rename(cli.dir / "old-state.json")
    cli("plan", "--detailed-exitcode", AIRFLOW_INFRA_STATE_DSN=state_dsn)
    again = cli("state", "migrate", "--to", "postgres", AIRFLOW_INFRA_STATE_DSN=state_dsn, expect=1)
    assert "already at" in again.stderr
    cli("state", "migrate", "--to", "local", "--path", "back/state.json", AIRFLOW_INFRA_STATE_DSN=state_dsn)
    after = json.loads((cli.dir / "back" / "state.json").read_text())
    assert (after["lineage"], after["serial"], after["resources"]) == (
        before["lineage"],
        before["serial"],
        before["resources"],
    )
    refused = cli(
        "state", "migrate", "--to", "local", "--path", "back/state.json", AIRFLOW_INFRA_STATE_DSN=state_dsn, expect=1
    )
    assert "a state is there already" in refused.stderr


def test_postgres_state_needs_its_dsn(cli):
    cli("init")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text().replace('backend = "local"', 'backend = "postgres"'))
    proc = cli("plan", expect=1, AIRFLOW_INFRA_STATE_DSN="")
    assert "AIRFLOW_INFRA_STATE_DSN is not set" in proc.stderr and proc.stderr.count("\n") == 1


S3_STATE = """
[state]
backend = "s3"
bucket = "{bucket}"
lock = "{lock}"
dynamodb_table = "tf-locks-{bucket}"
lease_seconds = {lease}
"""


def use_s3_state(cli, bucket: str, lock: str, lease: int = 300) -> None:
    toml = cli.dir / "airflow-infra.toml"
    text = toml.read_text().split("[state]")[0]
    toml.write_text(text + S3_STATE.format(bucket=bucket, lock=lock, lease=lease))


@pytest.fixture
def state_bucket(moto_endpoint, name):
    return f"{name.replace('_', '-')}-tfstate"


@pytest.mark.parametrize("lock", ["s3", "dynamodb", "both"])
def test_eight_applies_racing_on_s3_state(cli, state_bucket, lock, s3):
    cli("init")
    use_s3_state(cli, state_bucket, lock)
    missing = cli("plan", expect=1)
    assert "does not exist: run `airflow-infra backend bootstrap`" in missing.stderr
    made = cli("backend", "bootstrap").stdout
    assert f"created bucket {state_bucket}" in made
    assert "Nothing to do" in cli("backend", "bootstrap").stdout  # idempotent
    assert s3.get_bucket_versioning(Bucket=state_bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=state_bucket)["PublicAccessBlockConfiguration"].values())

    racers = [cli.popen("--lock-timeout", "120", "apply", "--auto-approve") for _ in range(8)]
    outcomes = [(p.wait(180), p.stdout.read(), p.stderr.read()) for p in racers]
    assert all(code == 0 for code, _, _ in outcomes), [err for _, _, err in outcomes]
    assert sum("Apply complete!" in out for _, out, _ in outcomes) == 1
    key = f"{cli.dir.name}/dev/airflow-infra.json"
    obj = s3.get_object(Bucket=state_bucket, Key=key)
    assert obj["ServerSideEncryption"] == "AES256"
    state = json.loads(obj["Body"].read())
    assert state["serial"] == WRITES_OF_UP and len(state["resources"]) == 8
    cli("plan", "--detailed-exitcode")
    assert "not locked" in cli("state", "lock").stdout


def test_killed_holder_is_taken_over_after_its_lease(cli, state_bucket, blocked_reader):
    cli("init")
    use_s3_state(cli, state_bucket, "s3", lease=3)
    cli("backend", "bootstrap")
    victim = cli.popen("apply", "--auto-approve")
    _wait_for(lambda: "locked by" in cli("state", "lock", expect=None).stdout, what="the victim's lock")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(30)
    blocked_reader.rollback()
    held = cli("apply", "--auto-approve", expect=1)
    assert "lease runs until" in held.stderr and f"its process {victim.pid} on this host is gone" in held.stderr
    assert "`airflow-infra force-unlock " in held.stderr and held.stderr.count("\n") == 1
    cli("--lock-timeout", "60", "apply", "--auto-approve")  # waits for the lease to run out, takes over
    cli("plan", "--detailed-exitcode")


def test_state_migrate_through_every_backend(cli, state_bucket, state_dsn):
    cli("up")
    before = cli.state()
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text().split("[state]")[0] + f'[state]\nbackend = "local"\nbucket = "{state_bucket}"\n')
    cli("backend", "bootstrap")  # nothing for local
    from airflow_infra.state.s3 import bootstrap

    bootstrap(bucket=state_bucket, region="us-east-1", lock="s3", dynamodb_table="x")
    cli("state", "migrate", "--to", "s3")
    toml.write_text(toml.read_text().replace('backend = "local"', 'backend = "s3"'))
    cli("plan", "--detailed-exitcode")
    cli("state", "migrate", "--to", "postgres", AIRFLOW_INFRA_STATE_DSN=state_dsn)
    toml.write_text(toml.read_text().replace('backend = "s3"', 'backend = "postgres"'))
    cli("plan", "--detailed-exitcode", AIRFLOW_INFRA_STATE_DSN=state_dsn)
    cli("state", "migrate", "--to", "local", "--path", "again/state.json", AIRFLOW_INFRA_STATE_DSN=state_dsn)
    after = json.loads((cli.dir / "again" / "state.json").read_text())
    assert (after["lineage"], after["serial"], after["resources"]) == (
        before["lineage"],
        before["serial"],
        before["resources"],
    )


def make_lock_table(state_bucket: str, key: str) -> None:
    """A lock table made by someone else beforehand, keyed on key."""
    import boto3

    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName=f"tf-locks-{state_bucket}",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
    )


def test_lock_table_with_the_wrong_key_is_refused(cli, state_bucket, moto_endpoint):
    make_lock_table(state_bucket, "id")
    cli("init")
    use_s3_state(cli, state_bucket, "dynamodb")
    proc = cli("backend", "bootstrap", expect=1)
    assert "its key is not LockID" in proc.stderr and proc.stderr.count("\n") == 1


def test_existing_terraform_lock_table_is_used_as_is(cli, state_bucket, moto_endpoint):
    make_lock_table(state_bucket, "LockID")  # Terraform's shape
    cli("init")
    use_s3_state(cli, state_bucket, "dynamodb")
    made = cli("backend", "bootstrap").stdout
    assert "created bucket" in made and "lock table" not in made
    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")


def test_bad_s3_state_inputs(cli, state_bucket, s3):
    cli("init")
    use_s3_state(cli, state_bucket, "s3")
    cli("backend", "bootstrap")
    no_creds = cli(
        "plan",
        expect=1,
        AWS_ACCESS_KEY_ID="",
        AWS_SECRET_ACCESS_KEY="",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_CONFIG_FILE="/nonexistent",
    )
    assert "no AWS credentials" in no_creds.stderr and no_creds.stderr.count("\n") == 1
    key = f"{cli.dir.name}/dev/airflow-infra.json"
    s3.put_object(Bucket=state_bucket, Key=key, Body=b'{"serial": 3, "linea')
    for args in (("plan",), ("apply", "--auto-approve")):
        proc = cli(*args, expect=1)
        assert "state object is corrupt" in proc.stderr and "left as it is" in proc.stderr
    assert s3.get_object(Bucket=state_bucket, Key=key)["Body"].read() == b'{"serial": 3, "linea'
    assert "not locked" in cli("state", "lock").stdout  # the failed apply released its lock


def _waiting_create_roles(superuser) -> int:
    with superuser() as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'CREATE ROLE%'"
        ).fetchone()[0]


def test_a_paused_holder_writes_and_makes_nothing_after_its_lease(cli, state_bucket, blocked_reader, superuser, s3):
    """A (an apply on S3 state with a 3 s lease) is stopped (SIGSTOP) while its CREATE ROLE waits;
    B takes the lock over and applies within its --lock-timeout, though A's session holds an
    uncommitted CREATE ROLE by then; A, resumed, writes no state and makes nothing, and says so."""
    cli("init")
    use_s3_state(cli, state_bucket, "s3", lease=3)
    cli("backend", "bootstrap")
    a = cli.popen("apply", "--auto-approve")
    _wait_for(lambda: _waiting_create_roles(superuser) == 1, what="A's CREATE ROLE to wait")
    a_lock = json.loads(cli("state", "lock", "--json").stdout)["ID"]
    os.kill(a.pid, signal.SIGSTOP)
    try:
        time.sleep(4)  # A's lease runs out
        b = cli.popen("--lock-timeout", "20", "apply", "--auto-approve")
        _wait_for(lambda: _waiting_create_roles(superuser) == 2, what="B's CREATE ROLE to wait")
        blocked_reader.rollback()  # A's CREATE ROLE goes through, uncommitted: A is stopped
        assert b.wait(60) == 0, b.stderr.read()
    finally:
        os.kill(a.pid, signal.SIGCONT)
    assert a.wait(60) == 1
    err = a.stderr.read()
    assert "lease on the state lock ran out" in err and "Apply complete" not in a.stdout.read()
    key = f"{cli.dir.name}/dev/airflow-infra.json"
    versions = sorted(
        (v for v in s3.list_object_versions(Bucket=state_bucket, Prefix=key)["Versions"] if v["Key"] == key),
        key=lambda v: v["LastModified"],
    )
    locks = [
        json.loads(s3.get_object(Bucket=state_bucket, Key=key, VersionId=v["VersionId"])["Body"].read())["lock"]
        for v in versions
    ]
    b_lock = locks[-1]
    assert b_lock != a_lock and a_lock not in locks[locks.index(b_lock) :]  # B's fence, then only B's writes
    with superuser() as conn:
        roles = {
            r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (f"{cli.dir.name}_%",))
        }
    assert roles == {f"{cli.dir.name}_{r}" for r in ("owner", "etl", "reader")}
    cli("plan", "--detailed-exitcode")
    assert "not locked" in cli("state", "lock").stdout


def test_database_lock_waits_end_within_the_lock_timeout(cli, blocked_reader):
    cli("init")
    started = time.monotonic()
    proc = cli("--lock-timeout", "2", "apply", "--auto-approve", expect=1)
    assert time.monotonic() - started < 30
    assert "postgres_role.reader" in proc.stderr and "lock timeout" in proc.stderr
    blocked_reader.rollback()
    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")


def _unlock_after_kill(cli) -> None:
    """A killed holder's lock, removed on purpose as a user would (the message gives the line)."""
    held = json.loads(cli("state", "lock", "--json").stdout)
    if held:
        cli("force-unlock", held["ID"])


def test_a_kill_between_create_bucket_and_its_tags_is_adopted(server_cli, name, s3, moto_endpoint):
    """The create's name is in the state before CreateBucket: a bucket left untagged (unmarked) by a
    kill is this project's, and the next apply marks and finishes it, instead of refusing it as foreign."""
    from conftest import bucket_of
    from s3proxy import S3Proxy

    with S3Proxy(moto_endpoint) as store:
        store.hold = {"tagging"}
        cli = server_cli(f'endpoint_url = "{store.url}"\naddressing_style = "path"\ntls_only = false')
        victim = cli.popen("apply", "--auto-approve")
        assert store.held.wait(60), "the apply never reached the bucket's tagging"
        victim.kill()
        victim.wait(30)
        store.hold.clear()
        store.release.set()
        bucket = bucket_of(name)
        with pytest.raises(s3.exceptions.ClientError, match="NoSuchTagSet"):
            s3.get_bucket_tagging(Bucket=bucket)  # made, and marked by nothing
        assert cli.state()["pending"]["s3_bucket.workfiles"] == bucket
        _unlock_after_kill(cli)
        cli("apply", "--auto-approve")
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
        assert tags["Project"] == name and tags["Lineage"] == cli.state()["lineage"]
        assert "pending" not in cli.state()
        cli("plan", "--detailed-exitcode")


def test_a_kill_at_any_moment_converges_on_the_next_apply(make_cli):
    """SIGKILL an apply after 0.1 s, 0.2 s, ...: whatever it left, the next apply finishes it
    without a conflict, and a plan after that is empty."""
    for delay in (0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0):
        cli = make_cli()
        cli("init")
        victim = cli.popen("apply", "--auto-approve")
        time.sleep(delay)
        victim.kill()
        victim.wait(30)
        _unlock_after_kill(cli)
        cli("apply", "--auto-approve")
        cli("plan", "--detailed-exitcode")


def test_a_terraform_state_at_the_key_is_refused_and_left_alone(cli, state_bucket, s3):
    """Issue 14: the seed's setup keeps every project's Terraform state in one bucket; one at our key is
    named as Terraform's, pointed at import-terraform, and never overwritten (nor migrated over)."""
    cli("init")
    use_s3_state(cli, state_bucket, "s3")
    cli("backend", "bootstrap")
    key = f"{cli.dir.name}/dev/airflow-infra.json"
    theirs = json.dumps(
        {
            "version": 4,
            "terraform_version": "0.12.29",
            "serial": 1,
            "lineage": "7f1e9b9c-0000-4000-8000-000000000000",
            "outputs": {},
            "resources": [],
        }
    ).encode()
    s3.put_object(Bucket=state_bucket, Key=key, Body=theirs)
    for args in (("plan",), ("apply", "--auto-approve")):
        refused = cli(*args, expect=1)
        assert "holds a Terraform state (Terraform 0.12.29)" in refused.stderr
        assert "import-terraform" in refused.stderr and refused.stderr.count("\n") == 1
    assert s3.get_object(Bucket=state_bucket, Key=key)["Body"].read() == theirs
