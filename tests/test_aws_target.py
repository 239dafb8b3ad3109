"""target = "aws": moto in server mode for EC2, RDS, Secrets Manager and S3; the in-database step reaches
the session's real PostgreSQL through connect_through, as the master user whose password the test reads
from the secret moto made for the instance."""

from __future__ import annotations

import json
import signal
from urllib.parse import quote

import boto3
import psycopg
import pytest
from conftest import give_master_user

AWS = """[project]
name = "{name}"
environment = "prod"
[target]
kind = "aws"
region = "us-east-1"
[bucket]
tls_only = false
[database]
schemas = ["raw"]
[aws.rds]
subnet_ids = {subnets}
allowed_security_groups = ["{workers}"]
connect_through = "127.0.0.1:{port}"
ca_bundle = "{bundle}"
{extra}
"""


@pytest.fixture
def aws_cli(cli, name, network, server, rds_tls):
    def write(extra: str = ""):
        (cli.dir / "airflow-infra.toml").write_text(
            AWS.format(
                name=name,
                subnets=json.dumps(network["subnets"]),
                workers=network["workers"],
                port=server.port,
                extra=extra,
                bundle=rds_tls.bundle,
            )
        )
        return cli

    return write


def airflow_dsn(conn: dict) -> str:
    """The libpq DSN Airflow's PostgresHook makes of a connection (its extra is passed as libpq keywords)."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        host=conn["host"],
        port=conn["port"],
        dbname=conn["schema"],
        user=conn["login"],
        password=conn["password"],
        **conn["extra"],
    )


def test_rds_with_safe_defaults_drift_and_protected_destroy(aws_cli, name, network, superuser, server, rds_tls):
    cli = aws_cli("deletion_protection = true\n[aws.rds.parameters]\nwork_mem = 65536")
    ident = f"{name}-prod".replace("_", "-")
    first = cli("apply", "--auto-approve", expect=None)  # the master user is not on "the instance" yet...
    if first.returncode:  # ...unless an earlier test made it: then this apply went through
        last = first.stderr.strip().splitlines()[-1]
        assert last.startswith("Error: ") and "password authentication failed" in last
    give_master_user(ident, superuser)
    cli("apply", "--auto-approve")  # carries on from where it stopped
    cli("plan", "--detailed-exitcode")

    rds, ec2 = boto3.client("rds", region_name="us-east-1"), boto3.client("ec2", region_name="us-east-1")
    db = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    assert (db["Engine"], db["EngineVersion"].split(".")[0]) == ("postgres", "16")
    assert db["StorageEncrypted"] and not db["PubliclyAccessible"] and db["DeletionProtection"]
    assert db["CopyTagsToSnapshot"] and db["BackupRetentionPeriod"] == 7 and db["MasterUserSecret"]["SecretArn"]
    assert db["MasterUsername"] == "airflow_infra_admin"  # not a default admin name (RDS.25)
    assert (db["DBInstanceClass"], db["AllocatedStorage"], db["MaxAllocatedStorage"], db["MultiAZ"]) == (
        "db.t4g.micro",
        20,
        100,
        True,
    )  # prod: Multi-AZ (FSBP RDS.5)
    rule = boto3.client("s3", region_name="us-east-1").get_bucket_encryption(Bucket=f"{ident}-workfiles")[
        "ServerSideEncryptionConfiguration"
    ]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"  # prod: KMS (S3.17)
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == ident
    assert sorted(s["SubnetIdentifier"] for s in db["DBSubnetGroup"]["Subnets"]) == sorted(network["subnets"])
    [pg] = rds.describe_db_parameter_groups(DBParameterGroupName=f"{ident}-pg16")["DBParameterGroups"]
    assert pg["DBParameterGroupFamily"] == "postgres16"
    params = {
        p["ParameterName"]: p["ParameterValue"]
        for p in rds.describe_db_parameters(DBParameterGroupName=f"{ident}-pg16", Source="user")["Parameters"]
    }
    assert params == {
        "rds.force_ssl": "1",
        "password_encryption": "scram-sha-256",
        "log_connections": "1",
        "log_disconnections": "1",
        "work_mem": "65536",
    }  # FSBP's, and the config's own
    assert db["AutoMinorVersionUpgrade"] and db["EnabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    iam = boto3.client("iam", region_name="us-east-1")
    monitoring = iam.get_role(RoleName=f"{ident}-rds-monitoring")["Role"]  # enhanced monitoring (RDS.6), its own role
    assert db["MonitoringInterval"] == 60 and db["MonitoringRoleArn"] == monitoring["Arn"]
    assert [
        p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=f"{ident}-rds-monitoring")["AttachedPolicies"]
    ] == ["AmazonRDSEnhancedMonitoringRole"]
    assert db["DBParameterGroups"][0]["DBParameterGroupName"] == f"{ident}-pg16"
    [sg] = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{ident}-postgres"]}])[
        "SecurityGroups"
    ]
    assert [
        (p["FromPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]], p["IpRanges"]) for p in sg["IpPermissions"]
    ] == [(5432, [network["workers"]], [])]
    assert sg["IpPermissionsEgress"] == []  # the database opens no connections
    assert {t["Key"]: t["Value"] for t in db["TagList"]} == {
        "ManagedBy": "airflow-infra",
        "Project": name,
        "Environment": "prod",
        "Lineage": cli.state()["lineage"],
    }
    out = {k: v["value"] for k, v in json.loads(cli("output", "--json", "--show-secrets").stdout).items()}
    assert out["postgres_host"] == db["Endpoint"]["Address"] and out["postgres_sslrootcert"] == str(rds_tls.bundle)
    assert out["postgres_uri"].endswith(f"?sslmode=verify-full&sslrootcert={quote(str(rds_tls.bundle))}")
    airflow = json.loads(cli("connections", "--format", "json", "--show-secrets").stdout)[f"{name}_postgres"]
    assert airflow["extra"] == {"sslmode": "verify-full", "sslrootcert": str(rds_tls.bundle)}  # Airflow's too
    # TLS verified: what `connections` generates opens the instance whose certificate names it...
    for dsn in (out["postgres_uri"], airflow_dsn(airflow)):
        with psycopg.connect(dsn, hostaddr="127.0.0.1", port=server.port) as conn:  # the endpoint, as DNS would say
            assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
    rds_tls.serve("db.example.com")  # ...and refuses a certificate for another host (sslmode=require took it)
    try:
        for dsn in (out["postgres_uri"], airflow_dsn(airflow)):
            with pytest.raises(psycopg.OperationalError, match="does not match host name"):
                psycopg.connect(dsn, hostaddr="127.0.0.1", port=server.port)
        with psycopg.connect(dsn.replace("verify-full", "require"), hostaddr="127.0.0.1", port=server.port):
            pass
        # so does the admin session through the tunnel: the certificate is checked against the endpoint's name
        last = cli("plan", expect=1).stderr.strip().splitlines()[-1]
        assert "does not match host name" in last and out["etl_password"] not in last
    finally:
        rds_tls.serve(rds_tls.ENDPOINTS)
    secrets = {
        s["Name"]: s for s in boto3.client("secretsmanager", region_name="us-east-1").list_secrets()["SecretList"]
    }
    etl_secret = secrets[f"airflow-infra/{name}/prod/{name}_etl"]  # role passwords live in Secrets Manager
    assert {t["Key"]: t["Value"] for t in etl_secret["Tags"]} == {
        "ManagedBy": "airflow-infra",
        "Project": name,
        "Environment": "prod",
    }
    [etl_role] = [r for r in cli.state()["resources"] if (r["type"], r["name"]) == ("postgres_role", "etl")]
    assert etl_role["attrs"]["password_secret"] == etl_secret["ARN"] == out["etl_password_secret"]  # the state: the ARN
    assert out["etl_password"] not in cli.dir.joinpath(".airflow-infra", "state.json").read_text()

    # drift by hand on what matters for security
    rds.modify_db_instance(
        DBInstanceIdentifier=ident,
        PubliclyAccessible=True,
        ApplyImmediately=True,
        VpcSecurityGroupIds=[sg["GroupId"], network["workers"]],
    )
    ec2.authorize_security_group_ingress(
        GroupId=sg["GroupId"],
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        ],
    )
    rds.modify_db_parameter_group(
        DBParameterGroupName=f"{ident}-pg16",
        Parameters=[{"ParameterName": "rds.force_ssl", "ParameterValue": "0", "ApplyMethod": "immediate"}],
    )
    rds.modify_db_instance(
        DBInstanceIdentifier=ident,
        AutoMinorVersionUpgrade=False,
        ApplyImmediately=True,
        MultiAZ=False,
        MonitoringInterval=0,
        CloudwatchLogsExportConfiguration={"DisableLogTypes": ["postgresql", "upgrade"]},
    )
    ec2.authorize_security_group_egress(
        GroupId=sg["GroupId"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    plan = cli("plan", "--detailed-exitcode", expect=2).stdout
    assert 'aws_security_group.db: egress changed [] -> ["tcp 443-443 to 0.0.0.0/0"]' in plan
    assert "aws_db_parameter_group.pg16: parameters changed" in plan and "rds.force_ssl is not 1" in plan
    assert "aws_db_instance.main: auto_minor_version_upgrade changed true -> false" in plan
    assert "exports no PostgreSQL log to CloudWatch" in plan and "takes no minor version upgrades" in plan
    assert "multi_az changed true -> false" in plan and "runs in one availability zone" in plan
    assert "monitoring_interval changed 60 -> 0" in plan and "has no enhanced monitoring" in plan
    assert "aws_db_instance.main: publicly_accessible changed false -> true" in plan
    assert "0.0.0.0/0" in plan and "open to the whole internet" in plan
    assert "tcp 22-22 from ::/0" in plan and "other ports are open to the whole internet" in plan
    assert f'aws_db_instance.main: other_security_groups changed [] -> ["{network["workers"]}"]' in plan  # by hand
    cli("apply", "--auto-approve")
    db = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    assert not db["PubliclyAccessible"] and [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [
        sg["GroupId"]
    ]
    assert (
        db["AutoMinorVersionUpgrade"]
        and db["EnabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
        and db["MultiAZ"]
    )
    assert db["MonitoringInterval"] == 60
    assert {
        p["ParameterName"]: p["ParameterValue"]
        for p in rds.describe_db_parameters(DBParameterGroupName=f"{ident}-pg16", Source="user")["Parameters"]
    }["rds.force_ssl"] == "1"
    [sg] = ec2.describe_security_groups(GroupIds=[sg["GroupId"]])["SecurityGroups"]
    assert [
        (p["FromPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]], p["IpRanges"], p.get("Ipv6Ranges", []))
        for p in sg["IpPermissions"]
    ] == [(5432, [network["workers"]], [], [])]
    assert sg["IpPermissionsEgress"] == []
    cli("plan", "--detailed-exitcode")

    # a major upgrade: the new version's parameter group first, the instance moved onto it, the old group last
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(
        toml.read_text().replace("deletion_protection = true", 'deletion_protection = true\nengine_major = "17"')
    )
    actions = {c["address"]: c["action"] for c in json.loads(cli("plan", "--json").stdout)["changes"]}
    assert actions == {
        "aws_db_parameter_group.pg17": "create",
        "aws_db_instance.main": "update",
        "aws_db_parameter_group.pg16": "delete",
    }
    cli("apply", "--auto-approve")
    db = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    assert (
        db["EngineVersion"].split(".")[0] == "17"
        and db["DBParameterGroups"][0]["DBParameterGroupName"] == f"{ident}-pg17"
    )
    groups = [g["DBParameterGroupName"] for g in rds.describe_db_parameter_groups()["DBParameterGroups"]]
    assert f"{ident}-pg17" in groups and f"{ident}-pg16" not in groups
    toml.write_text(toml.read_text().replace('engine_major = "17"', 'engine_major = "16"'))
    refused = cli("plan", expect=1).stderr
    assert "RDS cannot downgrade" in refused and refused.count("\n") == 1
    toml.write_text(toml.read_text().replace('engine_major = "16"', 'engine_major = "17"'))

    # destroy: refused while deletion protection is on; after lifting it, a final snapshot is kept
    before = cli.state()["serial"]
    refused = cli("destroy", "--auto-approve", "--force-delete-data", expect=1)
    assert "has deletion protection on" in refused.stderr and "nothing was deleted" in refused.stderr
    assert rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"]
    assert cli.state()["serial"] == before and len(cli.state()["resources"]) > 5  # refused before any step
    with superuser(name) as conn:
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'raw'").fetchone()
    cli.dir.joinpath("airflow-infra.toml").write_text(
        cli.dir.joinpath("airflow-infra.toml")
        .read_text()
        .replace("deletion_protection = true", "deletion_protection = false")
    )
    cli("apply", "--auto-approve")
    cli("destroy", "--auto-approve", "--force-delete-data")
    snaps = [s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots()["DBSnapshots"]]
    assert any(s.startswith(f"final-{ident}-") for s in snaps) and any(s.startswith(f"backup-{ident}-") for s in snaps)


def test_bad_aws_inputs(aws_cli, network, moto_endpoint):
    cli = aws_cli('allowed_cidrs = ["0.0.0.0/0"]')
    proc = cli("plan", expect=1)
    assert "allow_public_cidr = true" in proc.stderr and proc.stderr.count("\n") == 1
    ec2 = boto3.client("ec2", region_name="us-east-1")
    one_az = ec2.create_subnet(VpcId=network["vpc"], CidrBlock="10.20.9.0/24", AvailabilityZone="us-east-1a")["Subnet"][
        "SubnetId"
    ]
    cli = aws_cli("")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(
        toml.read_text().replace(json.dumps(network["subnets"]), json.dumps([network["subnets"][0], one_az]))
    )
    proc = cli("plan", expect=1)
    assert "all in one availability zone" in proc.stderr
    assert not (cli.dir / ".airflow-infra" / "state.json").exists()


def one_line(proc) -> str:
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


def test_more_bad_aws_inputs_are_one_line(aws_cli, moto_endpoint):
    cli = aws_cli("")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text().replace('region = "us-east-1"\n', ""))
    assert "[target] region: required" in one_line(cli("plan", expect=None, AWS_DEFAULT_REGION="", AWS_REGION=""))
    no_credentials = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    assert "no AWS credentials" in one_line(cli("plan", expect=None, **no_credentials))
    assert "the profile 'nobody'" in one_line(cli("plan", expect=None, AWS_PROFILE="nobody", **no_credentials))
    assert "instance_class" in one_line(aws_cli('instance_class = "t4g.micro"')("plan", expect=None))
    cli = aws_cli("")
    assert "only for environment" in one_line(cli("destroy", "--auto-approve", "--skip-final-snapshot", expect=None))
    assert not (cli.dir / ".airflow-infra" / "state.json").exists()


def test_the_rds_ca_bundle_is_fetched_once_and_pinned(aws_cli, rds_tls, moto_endpoint, tmp_path):
    """The default bundle is a URL (AWS's trust store): fetched at the first plan, kept in the home, checked
    against `ca_bundle_sha256` when the team pins it; a bad bundle stops the plan before anything is made."""
    import functools
    import hashlib
    import http.server
    import threading

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "global-bundle.pem").write_bytes(rds_tls.bundle.read_bytes())
    (tmp_path / "www" / "junk.pem").write_text("<html>not found</html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{web.server_address[1]}"
    digest = hashlib.sha256(rds_tls.bundle.read_bytes()).hexdigest()

    def plan_with(lines: str, expect: int | None):
        cli = aws_cli("")
        toml = cli.dir / "airflow-infra.toml"
        toml.write_text(toml.read_text().replace(f'ca_bundle = "{rds_tls.bundle}"', lines))
        return cli("plan", expect=expect)

    try:
        err = one_line(plan_with(f'ca_bundle = "{url}/global-bundle.pem"\nca_bundle_sha256 = "{"0" * 64}"', None))
        assert f"[aws.rds] ca_bundle_sha256: {url}/global-bundle.pem has SHA-256 {digest}, not the pinned" in err
        assert "[aws.rds] ca_bundle: " in one_line(plan_with(f'ca_bundle = "{url}/junk.pem"', None))
        assert "not a PEM bundle of certificates" in one_line(plan_with(f'ca_bundle = "{url}/junk.pem"', None))
        assert "cannot fetch" in one_line(plan_with(f'ca_bundle = "{url}/missing.pem"', None))
        # a presigned URL's query is a credential: never shown, never in the kept file's name
        err = one_line(
            plan_with(f'ca_bundle = "{url}/global-bundle.pem?token=s3cr3t"\nca_bundle_sha256 = "{"0" * 64}"', None)
        )
        assert "s3cr3t" not in err and f"{url}/global-bundle.pem has SHA-256" in err
        plan_with(f'ca_bundle = "{url}/global-bundle.pem?token=s3cr3t"', 0)
        assert not [p for p in (aws_cli("").home / "certs").iterdir() if "s3cr3t" in p.name]
        plan_with(f'ca_bundle = "{url}/global-bundle.pem"\nca_bundle_sha256 = "{digest}"', 0)
    finally:
        web.shutdown()
    plan_with(f'ca_bundle = "{url}/global-bundle.pem"\nca_bundle_sha256 = "{digest}"', 0)  # kept: no fetch
    [kept] = [p for p in (aws_cli("").home / "certs").iterdir() if p.name.endswith("-global-bundle.pem")]
    assert kept.read_bytes() == rds_tls.bundle.read_bytes()
    kept.write_text(kept.read_text().replace("A", "B", 1))  # changed behind its back: refused, never used
    err = one_line(plan_with(f'ca_bundle = "{url}/global-bundle.pem"\nca_bundle_sha256 = "{digest}"', None))
    assert f"{kept} (kept from {url}/global-bundle.pem; delete it to fetch again)" in err
    assert "cannot read" in one_line(plan_with('ca_bundle = "/nonexistent/bundle.pem"', None))
    cli = aws_cli("")  # a bundle cut short (a download broken off): what libpq would refuse, refused at plan
    pem = rds_tls.bundle.read_bytes()
    (cli.dir / "cut.pem").write_bytes(pem + pem[:300])
    assert "not a PEM bundle of certificates" in one_line(plan_with('ca_bundle = "cut.pem"', None))
    (cli.dir / "ca.pem").write_bytes(pem)  # relative: to the project, wherever the command runs from
    plan_with('ca_bundle = "ca.pem"', 0)


def test_instance_class_rds_rejects_is_one_line(aws_cli, moto_endpoint):
    """moto takes any class; the proxy answers CreateDBInstance the way RDS does."""
    from s3proxy import S3Proxy

    with S3Proxy(moto_endpoint) as aws:
        aws.reject_actions["CreateDBInstance"] = (
            "InvalidParameterCombination",
            "RDS does not support creating a DB instance with the following combination: "
            "DBInstanceClass=db.m1.giant, Engine=postgres, EngineVersion=16.4, LicenseModel=postgresql-license.",
        )
        cli = aws_cli('instance_class = "db.m1.giant"')
        proc = cli("apply", "--auto-approve", expect=1, AWS_ENDPOINT_URL=aws.url)
    err = proc.stderr.strip().splitlines()[-1]  # above it: the progress line of the failed step
    assert err.startswith("Error: ") and "Traceback" not in proc.stderr
    assert "aws_db_instance.main: create failed: InvalidParameterCombination" in err and "db.m1.giant" in err


@pytest.mark.parametrize("action", ["DescribeDBInstances", "GetRole", "DescribeSecurityGroups"])
def test_a_read_aws_denies_is_never_taken_for_absent(aws_cli, moto_endpoint, action):
    """The boundary: AccessDenied is not NotFound. A provider whose read is refused must not plan a create
    over what may be another's resource: plan stops in one line naming the refusal."""
    from s3proxy import S3Proxy

    cli = aws_cli("")
    with S3Proxy(moto_endpoint) as aws:
        aws.reject_actions[action] = ("AccessDenied", f"User is not authorized to perform: {action}")
        proc = cli("plan", expect=1, AWS_ENDPOINT_URL=aws.url)
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("Error: ") and "failed: AccessDenied" in line and "Traceback" not in proc.stderr
    assert "will be created" not in proc.stdout and not (cli.dir / ".airflow-infra" / "state.json").exists()


def test_worker_policy_grants_exactly_the_project_bucket(aws_cli, name, superuser):
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_role(
        RoleName=f"workers-{name}", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )
    # the organisation's log bucket (FSBP S3.9), which lets S3's log delivery write
    s3, logs = boto3.client("s3", region_name="us-east-1"), f"{name.replace('_', '-')}-org-logs"
    s3.create_bucket(Bucket=logs)
    s3.put_bucket_policy(
        Bucket=logs,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::{logs}/*",
                    }
                ],
            }
        ),
    )
    cli = aws_cli(f'[aws.iam]\nattach_to_role = "workers-{name}"')
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text().replace("[bucket]\n", f'[bucket]\naccess_log_bucket = "{logs}"\n'))
    ident = f"{name}-prod".replace("_", "-")
    cli("apply", "--auto-approve", expect=None)  # may stop at the in-database step (see the test above)
    give_master_user(ident, superuser)
    cli("apply", "--auto-approve")
    bucket = f"{name.replace('_', '-')}-prod-workfiles"
    assert s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"] == {
        "TargetBucket": logs,
        "TargetPrefix": f"{bucket}/",
    }
    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})  # turned off by hand
    off = cli("plan", "--detailed-exitcode", expect=2).stdout
    assert "s3_bucket.workfiles: logging changed" in off and "keeps no server access logs" in off
    cli("apply", "--auto-approve")
    assert s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]["TargetBucket"] == logs
    out = {k: v["value"] for k, v in json.loads(cli("output", "--json").stdout).items() if not v["sensitive"]}
    arn = out["worker_policy_arn"]
    attached = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=f"workers-{name}")["AttachedPolicies"]]
    assert attached == [arn]
    doc = out["worker_policy_json"]
    assert doc["Statement"][0] == {
        "Sid": "ListProjectObjects",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
    }
    assert doc["Statement"][1]["Action"] == ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    assert doc["Statement"][1]["Resource"] == f"arn:aws:s3:::{bucket}/*"
    iam.detach_role_policy(RoleName=f"workers-{name}", PolicyArn=arn)  # drift: detached by hand
    iam.put_role_policy(
        RoleName=f"workers-{name}",
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    org = iam.create_policy(
        PolicyName=f"org-reads-{name}",
        PolicyDocument=json.dumps(  # IAM's names ignore case
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "S3:GetObject", "Resource": "arn:aws:s3:::*/*"}],
            }
        ),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=f"workers-{name}", PolicyArn=org)
    plan = cli("plan", "--detailed-exitcode", expect=2).stdout
    assert "attached_to changed" in plan
    assert f"Warning: role workers-{name}: its inline policy everything allows S3 on every bucket" in plan
    assert f"the attached policy org-reads-{name} allows S3 on every bucket" in plan
    cli("apply", "--auto-approve")
    assert "its inline policy everything" in cli("plan", "--detailed-exitcode").stdout  # warned, never changed
    assert iam.list_role_policies(RoleName=f"workers-{name}")["PolicyNames"] == ["everything"]


def test_a_monitoring_role_rds_does_not_see_yet_is_waited_for(aws_cli, name, moto_endpoint):
    """IAM takes seconds to propagate a new role: RDS refuses it for enhanced monitoring meanwhile."""
    from s3proxy import S3Proxy

    cli = aws_cli("")
    ident = f"{name}-prod".replace("_", "-")
    with S3Proxy(moto_endpoint) as aws:
        aws.reject_actions["CreateDBInstance"] = (
            "InvalidParameterCombination",
            "IAM role ARN value is invalid or does not include the required permissions for: ENHANCED_MONITORING",
        )
        aws.reject_times["CreateDBInstance"] = 2
        done = cli("apply", "--auto-approve", expect=None, AWS_ENDPOINT_URL=aws.url)
        assert "RDS does not see the monitoring role yet" in done.stdout + done.stderr
        assert aws.reject_times["CreateDBInstance"] == 0
    db = boto3.client("rds", region_name="us-east-1").describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][
        0
    ]
    assert db["MonitoringInterval"] == 60


def test_a_monitoring_role_not_ours_is_never_taken(aws_cli, name, moto_endpoint):
    """A role of the planned name made by someone else (no marker): a conflict, left as it is."""
    iam = boto3.client("iam", region_name="us-east-1")
    ident = f"{name}-prod".replace("_", "-")
    iam.create_role(
        RoleName=f"{ident}-rds-monitoring",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    refused = aws_cli("")("apply", "--auto-approve", expect=1)
    assert "aws_iam_role.monitoring" in refused.stderr and "not made by airflow-infra" in refused.stderr
    assert iam.list_attached_role_policies(RoleName=f"{ident}-rds-monitoring")["AttachedPolicies"] == []
    trust = iam.get_role(RoleName=f"{ident}-rds-monitoring")["Role"]["AssumeRolePolicyDocument"]
    assert "ec2.amazonaws.com" in json.dumps(trust) and "monitoring.rds" not in json.dumps(trust)


def test_a_parameter_group_not_ours_is_never_written(aws_cli, name, moto_endpoint):
    rds = boto3.client("rds", region_name="us-east-1")
    ident = f"{name}-prod".replace("_", "-")
    rds.create_db_parameter_group(
        DBParameterGroupName=f"{ident}-pg16", DBParameterGroupFamily="postgres16", Description="the DBA's"
    )
    refused = aws_cli("")("apply", "--auto-approve", expect=1)
    assert "aws_db_parameter_group.pg16" in refused.stderr and "not made by airflow-infra" in refused.stderr
    assert rds.describe_db_parameters(DBParameterGroupName=f"{ident}-pg16", Source="user")["Parameters"] == []


def test_dev_destroy_without_final_snapshot(aws_cli, name, superuser):
    """environment "dev": deletion protection off by default; --skip-final-snapshot leaves no final snapshot
    (the backup snapshot --force-delete-data takes is still made: data is never deleted without one)."""
    cli = aws_cli("port = 6543")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text().replace('environment = "prod"', 'environment = "dev"'))
    ident = f"{name}-dev".replace("_", "-")
    cli("apply", "--auto-approve", expect=None)
    give_master_user(ident, superuser)
    cli("apply", "--auto-approve")
    rds = boto3.client("rds", region_name="us-east-1")
    db = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    assert not db["DeletionProtection"] and not db["MultiAZ"]  # dev: cheaper, and no warning for it
    assert not db.get("MonitoringInterval")
    rule = boto3.client("s3", region_name="us-east-1").get_bucket_encryption(Bucket=f"{ident}-workfiles")[
        "ServerSideEncryptionConfiguration"
    ]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert "one availability zone" not in cli("plan").stdout
    [sg] = boto3.client("ec2", region_name="us-east-1").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"{ident}-postgres"]}]
    )["SecurityGroups"]
    assert db["Endpoint"]["Port"] == 6543 and [(p["FromPort"], p["ToPort"]) for p in sg["IpPermissions"]] == [
        (6543, 6543)
    ]
    assert cli.outputs()["postgres_port"] == 6543  # not the engine's default port (RDS.23)
    done = cli("destroy", "--auto-approve", "--force-delete-data", "--skip-final-snapshot").stdout
    assert "no final snapshot: --skip-final-snapshot" in done and "final snapshot final-" not in done
    assert not [d for d in rds.describe_db_instances()["DBInstances"] if d["DBInstanceIdentifier"] == ident]
    snaps = [s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots()["DBSnapshots"]]
    assert not any(s.startswith(f"final-{ident}-") for s in snaps) and any(
        s.startswith(f"backup-{ident}-") for s in snaps
    )


def test_performance_insights_and_the_maintenance_window_outside_dev(aws_cli, name, superuser, moto_endpoint):
    """prod: Performance Insights on, and repaired when turned off. A new instance class waits for the maintenance window (ApplyImmediately=false), a security
    setting applies now; what RDS holds as pending counts as done. moto applies everything at once: the
    proxy records the calls and makes moto's answer look like RDS's meanwhile."""
    from s3proxy import S3Proxy

    cli = aws_cli("")
    ident = f"{name}-prod".replace("_", "-")
    with S3Proxy(moto_endpoint) as aws:
        cli("apply", "--auto-approve", expect=None, AWS_ENDPOINT_URL=aws.url)
        [create] = [c for c in aws.calls if c.get("Action") == "CreateDBInstance"]
    assert (create["EnablePerformanceInsights"], create["PerformanceInsightsRetentionPeriod"]) == ("true", "7")
    give_master_user(ident, superuser)
    cli("apply", "--auto-approve")
    with S3Proxy(moto_endpoint) as aws:  # Performance Insights turned off by hand (moto does not keep it: the proxy)
        aws.rewrite["DescribeDBInstances"] = (
            b"<DBInstanceStatus>",
            b"<PerformanceInsightsEnabled>false</PerformanceInsightsEnabled><DBInstanceStatus>",
        )
        plan = cli(
            "plan", "--detailed-exitcode", "--out", str(cli.dir / "pi.plan"), expect=2, AWS_ENDPOINT_URL=aws.url
        ).stdout
        assert "performance_insights changed true -> false" in plan and "has no Performance Insights" in plan
    with S3Proxy(moto_endpoint) as aws:  # the saved plan applied: on again
        cli("apply", str(cli.dir / "pi.plan"), AWS_ENDPOINT_URL=aws.url)
        [modify] = [c for c in aws.calls if c.get("Action") == "ModifyDBInstance"]
    assert (modify["EnablePerformanceInsights"], modify["ApplyImmediately"]) == ("true", "true")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(
        toml.read_text() + 'instance_class = "db.t4g.small"\nallocated_storage = 30\ndeletion_protection = false\n'
    )
    plan = cli("plan").stdout
    assert "in the next maintenance window unless [aws.rds] apply_immediately = true" in plan
    with S3Proxy(moto_endpoint) as aws:
        cli("apply", "--auto-approve", AWS_ENDPOINT_URL=aws.url)
        modify = [
            {k: v for k, v in c.items() if k not in ("Action", "Version", "DBInstanceIdentifier")}
            for c in aws.calls
            if c.get("Action") == "ModifyDBInstance"
        ]
    assert modify == [
        {"ApplyImmediately": "false", "DBInstanceClass": "db.t4g.small", "AllocatedStorage": "30"},
        {"ApplyImmediately": "true", "DeletionProtection": "false"},
    ]
    with S3Proxy(moto_endpoint) as aws:  # as RDS answers until the window: the old class, the new one pending
        aws.rewrite["DescribeDBInstances"] = (
            b"<DBInstanceClass>db.t4g.small</DBInstanceClass>",
            b"<DBInstanceClass>db.t4g.micro</DBInstanceClass><PendingModifiedValues><DBInstanceClass>db.t4g.small"
            b"</DBInstanceClass></PendingModifiedValues>",
        )
        plan = cli("plan", "--detailed-exitcode", AWS_ENDPOINT_URL=aws.url).stdout
    assert f"RDS instance {ident}: instance_class changed, waiting for the maintenance window" in plan
    toml.write_text(toml.read_text() + "port = 6543\n")  # RDS restarts for a port at once: so says the plan
    assert "a restart now (RDS restarts for it whatever apply_immediately says)" in cli("plan").stdout
    with S3Proxy(moto_endpoint) as aws:
        cli("apply", "--auto-approve", AWS_ENDPOINT_URL=aws.url)
        modify = [c for c in aws.calls if c.get("Action") == "ModifyDBInstance"]
    assert [(c["ApplyImmediately"], c.get("DBPortNumber")) for c in modify] == [("true", "6543")]
    [sg] = boto3.client("ec2", region_name="us-east-1").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"{ident}-postgres"]}]
    )["SecurityGroups"]
    assert [(p["FromPort"], p["ToPort"]) for p in sg["IpPermissions"]] == [(6543, 6543)]  # in the same apply
    # (moto keeps the instance's port as it was made: DBPortNumber is not applied there, so no plan after it)


def test_ctrl_c_during_the_wait_leaves_a_state_the_next_apply_carries_on_from(aws_cli, name, superuser, moto_endpoint):
    """A real instance stays "creating" for minutes; the proxy makes moto's say so until the test lets it go."""
    from s3proxy import S3Proxy

    cli = aws_cli("")
    ident = f"{name}-prod".replace("_", "-")
    with S3Proxy(moto_endpoint) as aws:
        aws.rewrite["DescribeDBInstances"] = (b"<DBInstanceStatus>available<", b"<DBInstanceStatus>creating<")
        proc = cli.popen("apply", "--auto-approve", AWS_ENDPOINT_URL=aws.url)
        for line in proc.stdout:  # the progress display
            if f"RDS instance {ident}: creating" in line and "waiting for available" in line:
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130, proc.stderr.read()
    state = {f"{r['type']}.{r['name']}" for r in cli.state()["resources"]}
    assert "aws_security_group.db" in state and "aws_db_instance.main" not in state
    assert json.loads(cli("state", "lock", "--json").stdout) is None  # the lock was released

    cli("apply", "--auto-approve", expect=None)  # finds the instance, waits, records it; then the master user (above)
    give_master_user(ident, superuser)
    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")
    rds = boto3.client("rds", region_name="us-east-1")
    assert [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]].count(ident) == 1
