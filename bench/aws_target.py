"""Benchmark of the aws target: the API calls and wall time of a no-op plan of one project on moto,
broken down by service (the in-database refresh goes to the local PostgreSQL through connect_through)."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import sys
import time
from pathlib import Path

CONFIG = """[project]
name = "bench_aws"
environment = "prod"
[target]
kind = "aws"
[bucket]
tls_only = false
[aws.rds]
subnet_ids = {subnets}
allowed_security_groups = ["{workers}"]
connect_through = "127.0.0.1:{port}"
ca_bundle = "{bundle}"
"""


def rows() -> list[tuple[str, float, str]]:
    import boto3
    from servers import moto_and_postgres

    sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
    from conftest import RdsTls  # TLS on the server as RDS has it (the admin session verifies the certificate)

    import airflow_infra as ai
    from airflow_infra.aws import clients as aws

    out = []
    with moto_and_postgres("airflow-infra-bench-aws-") as (tmp, server):
        ec2 = boto3.client("ec2", region_name="us-east-1")
        vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
                "SubnetId"
            ]
            for i, az in enumerate("ab")
        ]
        workers = ec2.create_security_group(GroupName="workers", Description="w", VpcId=vpc)["GroupId"]
        d = tmp / "bench_aws"
        d.mkdir()
        tls = RdsTls(server, tmp)
        tls.serve(RdsTls.ENDPOINTS)
        (d / "airflow-infra.toml").write_text(
            CONFIG.format(subnets=json.dumps(subnets), workers=workers, port=server.port, bundle=tls.bundle)
        )
        with contextlib.suppress(ai.AirflowInfraError):  # the master user is not on the local server yet
            ai.apply(ai.open_project(d))
        db = boto3.client("rds", region_name="us-east-1").describe_db_instances()["DBInstances"][0]
        secret = json.loads(
            boto3.client("secretsmanager", region_name="us-east-1").get_secret_value(
                SecretId=db["MasterUserSecret"]["SecretArn"]
            )["SecretString"]
        )
        with server.connect() as conn:
            conn.execute(f"CREATE ROLE {secret['username']} LOGIN CREATEDB CREATEROLE PASSWORD '{secret['password']}'")
        ai.apply(ai.open_project(d))

        calls: collections.Counter = collections.Counter()
        aws._shared_session().events.register(
            "before-call", lambda event_name, **kw: calls.update([event_name.split(".")[1]])
        )
        times = []
        for _ in range(5):
            calls.clear()
            start = time.perf_counter()
            plan = ai.plan(ai.open_project(d))
            times.append(time.perf_counter() - start)
            assert not plan.has_changes, [c.address for c in plan.changes]
        times.sort()
        out.append(
            (
                "no-op plan, one aws project (in process)",
                times[len(times) // 2],
                ", ".join(f"{svc} {n}" for svc, n in sorted(calls.items())) + f"; {sum(calls.values())} calls",
            )
        )
        os.environ.pop("AWS_ENDPOINT_URL_S3", None)
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    for label, secs, note in rows():
        print(f"{label:<52} {secs:>9.3f}  {note}")
