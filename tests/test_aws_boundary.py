"""The botocore boundary (aws_clients.aws): an AWS answer becomes a kind of ours that callers catch, in one
line naming what failed; a bug passes unchanged. Against moto in server mode."""

from __future__ import annotations

import uuid

import pytest

from airflow_infra.aws_clients import AccessDenied, AwsError, Conflict, NotFound, aws, aws_client
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
