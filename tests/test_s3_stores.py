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
    return boto3.client("s3", endpoint_url=store, region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))


def on(store: str, extra: str = "") -> str:
    return f'endpoint_url = "{store}"\naddressing_style = "path"\ntls_only = false\n{extra}'


def test_the_server_target_converges_on_every_store(server_cli, name, store, s3rver_endpoint, tmp_path):
    backup = tmp_path / "bucket-backups"
    cli = server_cli(on(store, f'backup = "{backup}"'))
    applied = cli("apply", "--auto-approve")
    assert "Apply complete!" in applied.stdout and "taken by another account" not in applied.stderr
    plan = cli("plan", "--detailed-exitcode")  # converged: nothing left to do
    warning = f"Warning: bucket {bucket_of(name)}: the store does not support"
    if store == s3rver_endpoint:
        assert plan.stdout.count(warning) == 1, plan.stdout
        for setting in ("encryption", "lifecycle", "ownership", "public_access_block", "tags", "tls_only", "versioning"):
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
    where = next(line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith(f"Backup written: {backup}"))
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
