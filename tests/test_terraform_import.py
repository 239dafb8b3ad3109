"""Moving from the seed's Terraform module: `import-terraform terraform.tfstate`.

The fixture does what the seed's `terraform apply` did (moto in server mode: a bare bucket, a security
group open to 0.0.0.0/0 on 22/80/443/5432, a public unencrypted postgres 11 instance with a password
from tfvars) and writes the state file Terraform 1.x wrote for it. The instance's database, with rows,
lives on the session's real PostgreSQL, reached through connect_through.
"""

from __future__ import annotations

import json

import boto3
import pytest
from conftest import give_master_user

SEED_PASSWORD = "seed-tfvars-pa55word"  # what the seed kept in terraform.tfvars and its state


@pytest.fixture
def tls_env(rds_tls) -> dict[str, str]:
    """moto is plain http: a TLS-only bucket policy denies it all; RDS's certificates are the test's own."""
    return {"AIRFLOW_INFRA_BUCKET__TLS_ONLY": "false", "AIRFLOW_INFRA_AWS__RDS__CA_BUNDLE": str(rds_tls.bundle)}


def _tf_resource(rtype: str, name: str, attributes: dict, *, deps: tuple = (), sensitive: tuple = ()) -> dict:
    """One resource as Terraform 1.x writes it in a version 4 state."""
    return {
        "mode": "managed",
        "type": rtype,
        "name": name,
        "provider": 'provider["registry.terraform.io/hashicorp/aws"]',
        "instances": [
            {
                "schema_version": 1 if rtype != "aws_s3_bucket" else 0,
                "attributes": attributes,
                "sensitive_attributes": [[{"type": "get_attr", "value": s}] for s in sensitive],
                "private": "eyJzY2hlbWFfdmVyc2lvbiI6IjEifQ==",
                "dependencies": list(deps),
            }
        ],
    }


@pytest.fixture
def seed(name, network, server, superuser, tmp_path):
    """The seed module's resources and the terraform.tfstate describing them."""
    ec2, rds, s3 = (boto3.client(s, region_name="us-east-1") for s in ("ec2", "rds", "s3"))
    bucket = f"{name.replace('_', '-')}-workbucket"
    s3.create_bucket(Bucket=bucket)
    sg = ec2.create_security_group(
        GroupName=f"{name}-db-sg", Description="Allow all inbound traffic", VpcId=network["vpc"]
    )["GroupId"]
    open_rules = [
        {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        for p in (22, 80, 443, 5432)
    ]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=open_rules)
    rds.create_db_subnet_group(
        DBSubnetGroupName=f"{name}-platform-subnets",
        SubnetIds=network["subnets"],
        DBSubnetGroupDescription="made by the platform module",
    )
    ident = f"{name.replace('_', '-')}-db"
    db = rds.create_db_instance(
        DBInstanceIdentifier=ident,
        Engine="postgres",
        EngineVersion="11.5",
        DBInstanceClass="db.t2.micro",
        AllocatedStorage=20,
        DBName=name,
        MasterUsername="admin",
        MasterUserPassword=SEED_PASSWORD,
        StorageType="gp2",
        BackupRetentionPeriod=7,
        MultiAZ=False,
        PubliclyAccessible=True,
        StorageEncrypted=False,
        DBSubnetGroupName=f"{name}-platform-subnets",
        VpcSecurityGroupIds=[sg],
    )["DBInstance"]

    # The instance's database, on the real server: the master user's tables in public, with rows.
    with superuser() as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'admin'").fetchone()
        conn.execute(
            f"{'ALTER' if exists else 'CREATE'} ROLE admin LOGIN CREATEDB CREATEROLE PASSWORD '{SEED_PASSWORD}'"
        )
        conn.execute("GRANT CONNECT ON DATABASE postgres TO admin")  # see admin_dsn in conftest
        conn.execute(f"CREATE DATABASE {name} OWNER admin")
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=server.port, user="admin", password=SEED_PASSWORD, dbname=name, autocommit=True
    ) as conn:
        conn.execute("CREATE TABLE public.crimes (id int PRIMARY KEY, kind text)")
        conn.execute("INSERT INTO public.crimes SELECT g, 'theft' FROM generate_series(1, 250) g")

    account = "123456789012"
    state = {
        "version": 4,
        "terraform_version": "1.5.7",
        "serial": 14,
        "lineage": "3f0c3f8e-5e4e-7a49-0d5c-5d5b3c1f2a10",
        "outputs": {},
        "check_results": None,
        "resources": [
            _tf_resource(
                "aws_db_instance",
                "db_database",
                {
                    "address": db["Endpoint"]["Address"]
                    if db.get("Endpoint")
                    else f"{ident}.x.us-east-1.rds.amazonaws.com",
                    "allocated_storage": 20,
                    "allow_major_version_upgrade": None,
                    "apply_immediately": True,
                    "arn": f"arn:aws:rds:us-east-1:{account}:db:{ident}",
                    "auto_minor_version_upgrade": True,
                    "availability_zone": "us-east-1a",
                    "backup_retention_period": 7,
                    "backup_window": "03:50-04:20",
                    "ca_cert_identifier": "rds-ca-2019",
                    "copy_tags_to_snapshot": False,
                    "db_subnet_group_name": f"{name}-platform-subnets",
                    "deletion_protection": False,
                    "domain": "",
                    "enabled_cloudwatch_logs_exports": [],
                    "endpoint": f"{ident}.x.us-east-1.rds.amazonaws.com:5432",
                    "engine": "postgres",
                    "engine_version": "11.5",
                    "final_snapshot_identifier": None,
                    "hosted_zone_id": "Z2R2ITUGPM61AM",
                    "iam_database_authentication_enabled": False,
                    "id": ident,
                    "identifier": ident,
                    "identifier_prefix": None,
                    "instance_class": "db.t2.micro",
                    "iops": 0,
                    "kms_key_id": "",
                    "license_model": "postgresql-license",
                    "maintenance_window": "sun:05:00-sun:05:30",
                    "max_allocated_storage": 0,
                    "monitoring_interval": 0,
                    "multi_az": False,
                    "name": name,
                    "option_group_name": "default:postgres-11",
                    "parameter_group_name": "default.postgres11",
                    "password": SEED_PASSWORD,
                    "port": 5432,
                    "publicly_accessible": True,
                    "replicate_source_db": "",
                    "resource_id": "db-ABCDEFGHIJKLMNOP",
                    "security_group_names": [],
                    "skip_final_snapshot": True,
                    "snapshot_identifier": None,
                    "status": "available",
                    "storage_encrypted": False,
                    "storage_type": "gp2",
                    "tags": {"Project": "Airflow"},
                    "timezone": "",
                    "username": "admin",
                    "vpc_security_group_ids": [sg],
                },
                deps=("aws_security_group.db_security_group",),
                sensitive=("password",),
            ),
            _tf_resource(
                "aws_s3_bucket",
                "airflow_workbucket",
                {
                    "acceleration_status": "",
                    "acl": "private",
                    "arn": f"arn:aws:s3:::{bucket}",
                    "bucket": bucket,
                    "bucket_domain_name": f"{bucket}.s3.amazonaws.com",
                    "bucket_prefix": None,
                    "cors_rule": [],
                    "force_destroy": True,
                    "grant": [],
                    "hosted_zone_id": "Z3AQBSTGFYJSTF",
                    "id": bucket,
                    "lifecycle_rule": [],
                    "logging": [],
                    "object_lock_configuration": [],
                    "policy": None,
                    "region": "us-east-1",
                    "replication_configuration": [],
                    "request_payer": "BucketOwner",
                    "server_side_encryption_configuration": [],
                    "tags": {"Project": "Airflow"},
                    "versioning": [{"enabled": False, "mfa_delete": False}],
                    "website": [],
                },
            ),
            _tf_resource(
                "aws_security_group",
                "db_security_group",
                {
                    "arn": f"arn:aws:ec2:us-east-1:{account}:security-group/{sg}",
                    "description": "Allow all inbound traffic",
                    "egress": [
                        {
                            "cidr_blocks": ["0.0.0.0/0"],
                            "description": "",
                            "from_port": 0,
                            "ipv6_cidr_blocks": [],
                            "prefix_list_ids": [],
                            "protocol": "-1",
                            "security_groups": [],
                            "self": False,
                            "to_port": 0,
                        }
                    ],
                    "id": sg,
                    "ingress": [
                        {
                            "cidr_blocks": ["0.0.0.0/0"],
                            "description": "",
                            "from_port": p,
                            "ipv6_cidr_blocks": [],
                            "prefix_list_ids": [],
                            "protocol": "tcp",
                            "security_groups": [],
                            "self": False,
                            "to_port": p,
                        }
                        for p in (22, 80, 443, 5432)
                    ],
                    "name": f"{name}-db-sg",
                    "name_prefix": "",
                    "owner_id": account,
                    "revoke_rules_on_delete": False,
                    "tags": {},
                    "timeouts": None,
                    "vpc_id": network["vpc"],
                },
            ),
        ],
    }
    path = tmp_path / "terraform.tfstate"
    path.write_text(json.dumps(state, indent=2))
    return {"tfstate": path, "ident": ident, "bucket": bucket, "sg": sg}


def _rows(superuser, name) -> int:
    with superuser(name) as conn:
        return conn.execute("SELECT count(*) FROM public.crimes").fetchone()[0]


def test_seed_state_is_adopted_hardened_and_encrypted_without_replacing_anything(
    tls_env, cli, name, network, server, seed, superuser
):
    ident, rds = seed["ident"], boto3.client("rds", region_name="us-east-1")
    done = cli(
        "import-terraform",
        str(seed["tfstate"]),
        "--allow-security-group",
        network["workers"],
        "--connect-through",
        f"127.0.0.1:{server.port}",
        **tls_env,
    )
    assert "tcp 22-22 from 0.0.0.0/0" in done.stdout and "tcp 5432-5432 from 0.0.0.0/0" in done.stdout
    config = (cli.dir / "airflow-infra.toml").read_text()
    assert f'identifier = "{ident}"' in config and f'name = "{seed["bucket"]}"' in config
    state = cli.state()
    assert sorted(f"{r['type']}.{r['name']}" for r in state["resources"]) == [
        "aws_db_instance.main",
        "aws_security_group.db",
        "postgres_database.main",
        "s3_bucket.workfiles",
    ]
    assert SEED_PASSWORD not in config and SEED_PASSWORD not in json.dumps(state) and SEED_PASSWORD not in done.stdout
    conns = cli(
        "connections", "--format", "json", "--show-secrets", **tls_env
    )  # before the first apply: what exists, and why not more
    assert [c.replace("-", "_") for c in json.loads(conns.stdout)] == [f"{name}_workbucket"]
    assert f"connection {name}_postgres: the project's etl role does not exist yet" in conns.stderr

    # The first plan: hardening only. Nothing replaced, nothing destroyed.
    plan = json.loads(cli("plan", "--json", **tls_env).stdout)
    actions = {c["address"]: c["action"] for c in plan["changes"]}
    assert not {"replace", "delete"} & set(actions.values()), actions
    changed = {c["address"]: c["changed"] for c in plan["changes"] if c["action"] == "update"}
    assert {"deletion_protection", "publicly_accessible", "master_password_managed", "storage_encrypted"} <= set(
        changed["aws_db_instance.main"]
    )
    assert {"versioning", "encryption", "public_access_block"} <= set(changed["s3_bucket.workfiles"])
    assert "ingress" in changed["aws_security_group.db"]
    assert changed["postgres_database.main"] and actions["aws_db_parameter_group.pg11"] == "create"
    text = cli("plan", **tls_env).stdout
    assert "apply --encrypt-storage" in text and "not encrypted at rest" in text
    assert SEED_PASSWORD not in text

    # apply: the in-database step waits for the master user RDS now manages (see test_aws_target)
    cli("apply", "--auto-approve", expect=None, **tls_env)
    give_master_user(ident, superuser)
    cli("apply", "--auto-approve", **tls_env)

    db = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    assert db["DeletionProtection"] and not db["PubliclyAccessible"] and db["MasterUserSecret"]["SecretArn"]
    assert not db["StorageEncrypted"]  # not without the flag
    assert db["DBParameterGroups"][0]["DBParameterGroupName"] == f"{ident}-pg11"
    assert {t["Key"]: t["Value"] for t in db["TagList"]}["ManagedBy"] == "airflow-infra"
    [sg] = boto3.client("ec2", region_name="us-east-1").describe_security_groups(GroupIds=[seed["sg"]])[
        "SecurityGroups"
    ]
    assert [
        (p["FromPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]], p["IpRanges"]) for p in sg["IpPermissions"]
    ] == [(5432, [network["workers"]], [])]
    s3 = boto3.client("s3", region_name="us-east-1")
    assert s3.get_bucket_versioning(Bucket=seed["bucket"])["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=seed["bucket"])["PublicAccessBlockConfiguration"].values())
    assert _rows(superuser, name) == 250
    out = cli.outputs()
    assert out["postgres_database"] == name and "?sslmode=verify-full&sslrootcert=" in out["postgres_uri"]

    # Still pending, and said so: the encryption. With the flag: snapshot, encrypted copy, restore, swap.
    pending = json.loads(cli("plan", "--json", **tls_env).stdout)["changes"]
    assert [(c["address"], c["changed"]) for c in pending] == [("aws_db_instance.main", ["storage_encrypted"])]
    encrypted = cli("apply", "--auto-approve", "--encrypt-storage", **tls_env).stdout
    db = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    assert db["StorageEncrypted"] and db["DeletionProtection"] and not db["PubliclyAccessible"]
    kept = [
        d["DBInstanceIdentifier"]
        for d in rds.describe_db_instances()["DBInstances"]
        if d["DBInstanceIdentifier"].startswith(f"{ident}-unencrypted-")
    ]
    assert len(kept) == 1  # the old instance is kept, never deleted, and the progress lines say so
    assert f"RDS instance {ident} is now encrypted; the unencrypted one is kept as {kept[0]}" in encrypted
    cli("plan", "--detailed-exitcode", **tls_env)
    assert _rows(superuser, name) == 250

    # A key of the organisation's own, later: the same snapshot-copy-restore, with that key
    key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text().replace("[aws.rds]\n", f'[aws.rds]\nkms_key_id = "{key}"\n'))
    pending = json.loads(cli("plan", "--json", **tls_env).stdout)["changes"]
    assert [(c["address"], c["changed"], "--encrypt-storage" in c["notes"]["kms_key_id"]) for c in pending] == [
        ("aws_db_instance.main", ["kms_key_id"], True)
    ]
    cli("apply", "--auto-approve", **tls_env)  # without the flag: nothing done, still pending
    assert json.loads(cli("plan", "--json", **tls_env).stdout)["changes"]
    cli("apply", "--auto-approve", "--encrypt-storage", **tls_env)
    assert rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]["KmsKeyId"] == key
    cli("plan", "--detailed-exitcode", **tls_env)
    assert _rows(superuser, name) == 250


def test_import_terraform_bad_input_changes_nothing(cli, seed, tmp_path):
    def refused(path, *extra):
        proc = cli("import-terraform", str(path), *extra, expect=1)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert not (cli.dir / "airflow-infra.toml").exists() and not (cli.dir / ".airflow-infra").exists()
        return proc.stderr

    doc = json.loads(seed["tfstate"].read_text())
    old = tmp_path / "v3.tfstate"
    old.write_text(json.dumps({**doc, "version": 3}))
    assert "version 3" in refused(old)
    no_sg = tmp_path / "no-sg.tfstate"
    no_sg.write_text(
        json.dumps({**doc, "resources": [r for r in doc["resources"] if r["type"] != "aws_security_group"]})
    )
    assert "no aws_security_group resource" in refused(no_sg)
    gone = tmp_path / "gone.tfstate"
    doc["resources"][0]["instances"][0]["attributes"]["identifier"] = "not-there-db"
    gone.write_text(json.dumps(doc))
    assert "not in AWS" in refused(gone)
    assert "not found" in refused(tmp_path / "missing.tfstate")
    assert "valid project name" in refused(seed["tfstate"], "--name", "Bad-Name")


def test_a_state_terraform_pushed_to_the_shared_bucket_is_imported_from_there(
    tls_env, cli, seed, terraform, shared, network
):
    """The seed's team kept its states in one bucket: `terraform state push` (Terraform 0.12.29 itself)
    puts the seed's state there, and import-terraform reads it from s3:// as from a file."""
    doc = json.loads(seed["tfstate"].read_text())
    doc["terraform_version"] = "0.12.29"  # as 0.12 wrote it: its provider addresses, no check_results
    doc.pop("check_results")
    for r in doc["resources"]:
        r["provider"] = "provider.aws"
    key = "crime/terraform.tfstate"
    tf = terraform(key)
    pushed = tf.dir / "seed.tfstate"
    pushed.write_text(json.dumps(doc))
    tf("state", "push", "-force", str(pushed))
    done = cli(
        "import-terraform", f"s3://{shared['bucket']}/{key}", "--allow-security-group", network["workers"], **tls_env
    )
    assert f'identifier = "{seed["ident"]}"' in (cli.dir / "airflow-infra.toml").read_text()
    assert "tcp 22-22 from 0.0.0.0/0" in done.stdout
    assert SEED_PASSWORD not in done.stdout + json.dumps(cli.state())
    missing = cli(
        "-C", str(cli.dir / "other"), "import-terraform", f"s3://{shared['bucket']}/nothing.tfstate", expect=1
    )
    assert "nothing.tfstate: not found" in missing.stderr


def test_seed_used_as_a_module_is_found_by_module(tmp_path):
    """The seed was often called as a module, once per project: --module picks one; several without it is an error."""
    from airflow_infra import ConfigError
    from airflow_infra.terraform import read_seed_state

    def module_state(mod: str, project: str) -> list[dict]:
        arn = f"arn:aws:rds:eu-west-1:123456789012:db:{project}-db"
        return [
            {
                **_tf_resource(
                    "aws_s3_bucket", "airflow_workbucket", {"bucket": f"{project}-workbucket", "region": "eu-west-1"}
                ),
                "module": mod,
            },
            {
                **_tf_resource(
                    "aws_security_group",
                    "db_security_group",
                    {
                        "name": f"{project}-sg",
                        "id": "sg-1",
                        "ingress": [
                            {
                                "cidr_blocks": ["10.0.0.0/16"],
                                "from_port": 5432,
                                "to_port": 5432,
                                "protocol": "tcp",
                                "security_groups": [],
                            },
                            {
                                "cidr_blocks": [],
                                "from_port": 5432,
                                "to_port": 5432,
                                "protocol": "tcp",
                                "security_groups": ["sg-w"],
                            },
                        ],
                    },
                ),
                "module": mod,
            },
            {
                **_tf_resource(
                    "aws_db_instance",
                    "db_database",
                    {
                        "identifier": f"{project}-db",
                        "engine": "postgres",
                        "engine_version": "11.5",
                        "arn": arn,
                        "name": project,
                        "db_subnet_group_name": "platform",
                        "password": "x",
                    },
                ),
                "module": mod,
            },
        ]

    path = tmp_path / "terraform.tfstate"
    path.write_text(
        json.dumps(
            {"version": 4, "resources": module_state("module.redb", "redb") + module_state("module.crime", "crime")}
        )
    )
    with pytest.raises(ConfigError, match="several aws_s3_bucket resources .*: name the module with --module"):
        read_seed_state(path)
    seed = read_seed_state(path, module="module.crime")
    assert (seed.bucket, seed.region, seed.database, seed.instance["identifier"]) == (
        "crime-workbucket",
        "eu-west-1",
        "crime",
        "crime-db",
    )
    assert seed.allowed_cidrs == ["10.0.0.0/16"] and seed.allowed_security_groups == ["sg-w"] and not seed.dropped_rules
    assert "password" not in seed.instance
