"""Any S3-compatible store: the server target, destroy with its backup and doctor, run against moto
and against s3rver (a second implementation nobody here wrote), in the same tests.

s3rver has no versioning, tags, policies, encryption or lifecycle, and answers them with 405, 409
or 501, or with a body that is not the setting: each is named once as unsupported, left alone, and
the second plan is empty."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from botocore.config import Config
from conftest import bucket_of


def client(store: str):
    return boto3.client(
        "s3", endpoint_url=store, region_name="us-east-1", config=Config(s3={"addressing_style": "path"})
    )


def on(store: str, extra: str = "") -> str:
    return f'endpoint_url = "{store}"\naddressing_style = "path"\ntls_only = false\n{extra}'


def test_the_server_target_converges_on_every_store(server_cli, name, store, s3rver_endpoint, tmp_path):
    backup = tmp_path / "bucket-backups"
    cli = server_cli(on(store, f'backup = "{backup}"'))
    applied = cli("apply", "--auto-approve")
    assert "Apply complete!" in applied.stdout and "taken by another account" not in applied.stderr
    plan = cli("plan", "--detailed-exitcode")  # converged: nothing left to do
    assert "Changed outside airflow-infra" not in plan.stdout
    toml = cli.dir / "airflow-infra.toml"  # a setting the store cannot keep, changed: still nothing to do there
    toml.write_text(toml.read_text().replace("noncurrent_days = 14", "noncurrent_days = 21"))
    if store == s3rver_endpoint:
        plan = cli("plan", "--detailed-exitcode")
    else:
        cli("plan", "--detailed-exitcode", expect=2)
        cli("apply", "--auto-approve")
    warning = f"Warning: bucket {bucket_of(name)}: the store does not support"
    if store == s3rver_endpoint:
        assert plan.stdout.count(warning) == 1, plan.stdout
        for setting in (
            "encryption",
            "lifecycle",
            "ownership",
            "public_access_block",
            "tags",
            "tls_only",
            "versioning",
        ):
            assert setting in plan.stdout.split(warning)[1].splitlines()[0]
    else:
        assert warning not in plan.stdout
    assert "bucket (list, put, delete)" in cli("doctor").stdout

    s3 = client(store)
    s3.put_object(Bucket=bucket_of(name), Key="in/data.csv", Body=b"v1")
    refused = cli("destroy", "--auto-approve", expect=1)
    assert "s3_bucket.workfiles holds 1 object version" in refused.stderr
    assert s3.get_object(Bucket=bucket_of(name), Key="in/data.csv")["Body"].read() == b"v1"
    done = cli("destroy", "--auto-approve", "--force-delete-data")
    where = next(
        line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith(f"Backup written: {backup}")
    )
    [version] = json.loads(Path(where).read_text())["versions"]
    assert version["Key"] == "in/data.csv" and (backup / version["Object"]).read_bytes() == b"v1"
    assert bucket_of(name) not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_a_prefix_of_a_shared_bucket_on_every_store(server_cli, name, store, tmp_path):
    shared = name.replace("_", "-") + "-shared"
    s3 = client(store)
    s3.create_bucket(Bucket=shared)
    s3.put_object(Bucket=shared, Key="others/keep.csv", Body=b"theirs")
    cli = server_cli(on(store, f'name = "{shared}"\nprefix = "projects/{name}"\nbackup = "{tmp_path / "bk"}"'))
    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")
    s3.put_object(Bucket=shared, Key=f"projects/{name}/a.csv", Body=b"ours")
    cli("destroy", "--auto-approve", expect=1)
    done = cli("destroy", "--auto-approve", "--force-delete-data")
    assert "Backup written: " in done.stdout
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=shared).get("Contents", [])]
    assert keys == ["others/keep.csv"]


STATE = """
[state]
backend = "s3"
bucket = "{bucket}"
key = "{name}/dev/airflow-infra.json"
lock = "dynamodb"
dynamodb_table = "{bucket}-locks"
"""


def test_two_applies_on_one_state_key_lose_no_update(server_cli, make_cli, name, s3rver_endpoint, superuser):
    """s3rver ignores If-Match: with lock = "dynamodb" the lock table's digest keeps every write, so two
    applies of one project racing on one state key leave the state equal to what exists, every time."""
    env = {"AWS_ENDPOINT_URL_S3": s3rver_endpoint}
    state = STATE.format(bucket=f"{name.replace('_', '-')}-states", name=name)
    a = server_cli(on(s3rver_endpoint) + state)
    made = a("backend", "bootstrap", **env).stdout
    assert "created bucket" in made and "the store does not support versioning" in made
    b = make_cli()
    config = (a.dir / "airflow-infra.toml").read_text()
    for i in range(20):
        for cli, who in ((a, "a"), (b, "b")):
            (cli.dir / "airflow-infra.toml").write_text(
                config.replace('schemas = ["raw", "analytics"]', f'schemas = ["raw", "analytics", "{who}{i}"]')
            )
        racing = [cli.popen("--lock-timeout", "60", "apply", "--auto-approve", **env) for cli in (a, b)]
        for proc in racing:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, out + err
        stored = json.loads(
            client(s3rver_endpoint)
            .get_object(Bucket=f"{name.replace('_', '-')}-states", Key=f"{name}/dev/airflow-infra.json")["Body"]
            .read()
        )
        recorded = sorted(r["attrs"]["name"] for r in stored["resources"] if r["type"] == "postgres_schema")
        with superuser(name) as conn:
            exists = sorted(
                n
                for (n,) in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' "
                    "AND nspname <> 'public'"
                )
            )
        assert recorded == exists, f"run {i}"


def test_bootstrap_changes_an_existing_bucket_only_when_approved(server_cli, name, store, s3rver_endpoint):
    """A state bucket often exists already, shared with Terraform's states: its settings are listed
    first, and changed with --auto-approve only."""
    bucket = f"{name.replace('_', '-')}-tfstates"
    s3 = client(store)
    s3.create_bucket(Bucket=bucket)
    cli = server_cli(on(store) + STATE.format(bucket=bucket, name=name))
    env = {"AWS_ENDPOINT_URL_S3": store}
    if store == s3rver_endpoint:  # nothing it could change: said, and done
        done = cli("backend", "bootstrap", **env).stdout
        assert f"the store does not support versioning on bucket {bucket}; left as it is" in done
        unsafe = cli("--var", "state.lock=s3", "backend", "bootstrap", **env).stdout
        assert 'ignores conditional writes, so its S3 lock will be refused: set [state] lock = "dynamodb"' in unsafe
        return
    refused = cli("backend", "bootstrap", expect=1, **env)
    assert f"~ enable versioning on bucket {bucket}" in refused.stdout
    assert f"~ enable public access block on bucket {bucket}" in refused.stdout
    assert "no terminal to ask on: pass --auto-approve" in refused.stderr
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") is None
    done = cli("backend", "bootstrap", "--auto-approve", **env).stdout
    assert f"enable versioning on bucket {bucket}" in done and f"created lock table {bucket}-locks" in done
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert "Nothing to do" in cli("backend", "bootstrap", **env).stdout


def test_a_bucket_deleted_behind_its_back_is_seen_on_a_store_that_keeps_no_settings(server_cli, name, s3rver_endpoint):
    cli = server_cli(on(s3rver_endpoint))
    cli("apply", "--auto-approve")
    client(s3rver_endpoint).delete_bucket(Bucket=bucket_of(name))
    plan = cli("plan", "--detailed-exitcode", expect=2).stdout
    assert "+ s3_bucket.workfiles" in plan
    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")
