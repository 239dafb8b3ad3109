"""`backend bootstrap`: the state bucket (versioning, SSE, public-access block) and the lock table,
made when missing; an existing bucket changed only when the user confirms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...aws.clients import (
    AwsError,
    NotConfigured,
    NotFound,
)
from ...aws.s3stores import unsupported_answer
from ...errors import (
    ConfigError,
)
from .backend import PROBE_KEY, S3StateBackend, _fail


def bootstrap(
    *, bucket: str, region: str, lock: str, dynamodb_table: str, confirm: Callable[[list[str]], bool] | None = None
) -> list[str] | None:
    """Make the state bucket (versioning, SSE, public-access block) and the lock table when missing;
    a second run changes nothing. An existing bucket (often shared, with Terraform's states in it)
    is changed only after confirm(the changes) says yes (None: no confirmation, nothing changed on
    it). Settings the store lacks are left alone, named in the list. Returns what it did (None:
    declined); a store's error is one StateError line."""
    from ...aws.clients import aws_client

    try:
        s3 = aws_client("s3", region=region)
        made = _bootstrap_made_bucket(s3, bucket, region)
        changes, lacking = _bootstrap_changes(s3, bucket)
        if changes and not made and (confirm is None or not confirm([text for _, text, _ in changes])):
            return None
        for _, _, change in changes:
            change()
        done = ([f"created bucket {bucket}"] if made else []) + [
            text for setting, text, _ in changes if setting not in lacking
        ]
        done += [f"the store does not support {setting} on bucket {bucket}; left as it is" for setting in lacking]
        if lock in ("dynamodb", "both"):
            done += _bootstrap_table(aws_client("dynamodb", region=region), dynamodb_table)
        if lock != "dynamodb" and not S3StateBackend(bucket=bucket, key=PROBE_KEY, region=region)._honours_conditions():
            done.append(
                "this store ignores conditional writes, so its S3 lock will be refused: set [state] "
                'lock = "dynamodb" (compare-and-swap then goes through the lock table too)'
            )
    except AwsError as exc:
        raise _fail(f"s3://{bucket}", exc, bucket=bucket) from None
    return done


def _bootstrap_made_bucket(s3: Any, bucket: str, region: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except NotFound:
        pass
    kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **kwargs)
    return True


_FLAGS = {f: True for f in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}


def _bootstrap_changes(s3: Any, bucket: str) -> tuple[list[tuple[str, str, Callable[[], Any]]], list[str]]:
    """([(setting, what would change, the call that changes it)], [settings the store lacks])."""
    wanted: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [  # setting, read (NotFound: unset), write
        (
            "versioning",
            lambda: s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled",
            lambda: s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}),
        ),
        (
            "default encryption",
            lambda: bool(s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]),
            lambda: s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            ),
        ),
        (
            "public access block",
            lambda: s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == _FLAGS,
            lambda: s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=_FLAGS),
        ),
    ]
    changes, lacking = [], []
    for setting, read, write in wanted:
        try:
            if read():
                continue
        except NotConfigured:
            pass
        except AwsError as exc:
            if not unsupported_answer(exc):
                raise
            lacking.append(setting)
            continue
        changes.append((setting, f"enable {setting} on bucket {bucket}", _or_lacking(write, setting, lacking)))
    return changes, lacking


def _or_lacking(write: Callable[[], Any], setting: str, lacking: list[str]) -> Callable[[], Any]:
    def run() -> None:
        try:
            write()
        except AwsError as exc:
            if not unsupported_answer(exc, put=True):
                raise
            lacking.append(setting)

    return run


def _bootstrap_table(ddb: Any, table_name: str) -> list[str]:
    try:
        table = ddb.describe_table(TableName=table_name)["Table"]
    except NotFound:
        ddb.create_table(
            TableName=table_name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        )
        ddb.get_waiter("table_exists").wait(TableName=table_name)
        return [f"created lock table {table_name}"]
    if table["KeySchema"] != [{"AttributeName": "LockID", "KeyType": "HASH"}]:
        raise ConfigError(
            f"[state] dynamodb_table: {table_name!r} exists but its key is not LockID (string, "
            "partition key), the shape Terraform's lock table has"
        )
    return []
