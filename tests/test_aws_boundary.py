"""The botocore boundary (aws/clients.py): an AWS answer becomes a kind of ours that callers catch, in one
line naming what failed; a bug passes unchanged. Against moto in server mode."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

import airflow_infra
from airflow_infra.aws.clients import (
    AccessDenied,
    AwsError,
    BucketNotEmpty,
    Conflict,
    NoSuchBucket,
    NotConfigured,
    NotFound,
    aws,
    aws_client,
)
from airflow_infra.errors import AirflowInfraError


def test_answers_become_kinds_by_code_or_status(moto_endpoint):
    sm = aws_client("secretsmanager", region="us-east-1")
    with pytest.raises(NotFound) as missing, aws("Secrets Manager secret nope", "read"):
        sm.get_secret_value(SecretId=f"nope-{uuid.uuid4().hex}")
    assert str(missing.value).startswith("Secrets Manager secret nope: read failed: ResourceNotFoundException")
    assert missing.value.code == "ResourceNotFoundException" and isinstance(missing.value, AirflowInfraError)

    name = f"twice-{uuid.uuid4().hex}"
    sm.create_secret(Name=name, SecretString="v")
    with pytest.raises(Conflict) as twice, aws(f"Secrets Manager secret {name}", "create"):
        sm.create_secret(Name=name, SecretString="v")
    assert twice.value.code == "ResourceExistsException"

    s3 = aws_client("s3", region="us-east-1")
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(NotFound) as head, aws(f"s3://{bucket}/k", "read"):
        s3.head_object(Bucket=bucket, Key="k")  # a HEAD has no body: found by its HTTP status alone
    assert head.value.code == "404"
    assert not issubclass(AccessDenied, NotFound) and issubclass(AccessDenied, AwsError)


def test_a_bug_inside_the_boundary_stays_a_bug():
    def broken() -> int:
        return len(None)  # type: ignore[arg-type]

    with pytest.raises(TypeError), aws("anything", "read"):
        broken()


def test_every_client_made_here_raises_our_kinds_itself(moto_endpoint):
    s3 = aws_client("s3", region="us-east-1")
    missing = f"gone-{uuid.uuid4().hex[:12]}"
    with pytest.raises(NoSuchBucket) as bucket:  # no aws() block: the client is the boundary
        s3.get_object(Bucket=missing, Key="k")
    assert str(bucket.value).startswith("s3: GetObject failed: NoSuchBucket")
    assert isinstance(bucket.value, NotFound) and not bucket.value.addressed

    pages = s3.get_paginator("list_object_versions").paginate(Bucket=missing)
    with pytest.raises(NoSuchBucket), aws(f"s3://{missing}", "list"):
        list(pages)  # the error comes while iterating, still ours

    with pytest.raises(NoSuchBucket) as named, aws(f"s3://{missing}/k", "read"):
        s3.get_object(Bucket=missing, Key="k")
    assert str(named.value).startswith(f"s3://{missing}/k: read failed: NoSuchBucket")

    bucket_name = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket_name)
    with pytest.raises(NotConfigured):  # a setting never set is a kind of its own, not a missing bucket
        s3.get_bucket_tagging(Bucket=bucket_name)
    s3.put_object(Bucket=bucket_name, Key="k", Body=b"x")
    with pytest.raises(BucketNotEmpty):
        s3.delete_bucket(Bucket=bucket_name)
    assert s3.get_object(Bucket=bucket_name, Key="k")["Body"].read() == b"x"


def test_no_module_but_the_boundary_reads_botocore_errors():
    """Callers catch our kinds; only aws/clients.py knows botocore's exceptions and error codes."""
    root = Path(airflow_infra.__file__).parent
    readers = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p.relative_to(root).as_posix() != "aws/clients.py"
        and re.search(r"ClientError|botocore\.exceptions|error_code\(|\[\"Error\"\]", p.read_text())
    ]
    assert readers == []
