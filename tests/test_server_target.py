"""target = "server": a bucket on an S3-compatible store (moto in server mode) and a database on an
existing PostgreSQL (the session's server, reached as a non-superuser CREATEDB CREATEROLE admin)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from conftest import SERVER, bucket_of, connect_as


def test_bucket_is_made_properly_and_outputs(server_cli, name, s3, moto_endpoint):
    cli = server_cli()
    cli("apply", "--auto-approve")
    b = bucket_of(name)
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=b)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    pab = s3.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"]
    assert pab == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert s3.get_bucket_ownership_controls(Bucket=b)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]
    policy = json.loads(s3.get_bucket_policy(Bucket=b)["Policy"])
    [deny] = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]}
    assert rules["airflow-infra-abort-multipart"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rules["airflow-infra-expire-noncurrent"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 14
    assert rules["airflow-infra-expire-tmp"]["Expiration"]["Days"] == 3
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=b)["TagSet"]}
    assert tags == {
        "ManagedBy": "airflow-infra",
        "Project": name,
        "Environment": "dev",
        "Lineage": cli.state()["lineage"],
    }

    out = cli.outputs()
    assert out["bucket_url"] == f"s3://{b}/" and out["bucket_name"] == b and out["bucket_region"] == "us-east-1"
    assert out["bucket_endpoint_url"] == moto_endpoint
    with connect_as(out, "etl") as etl:
        etl.execute("CREATE TABLE raw.t (id int)")
    with connect_as(out, "reader") as reader:
        assert reader.execute("SELECT count(*) FROM raw.t").fetchone()[0] == 0
    cli("plan", "--detailed-exitcode")
    texts = cli("plan").stdout + (cli.dir / ".airflow-infra" / "state.json").read_text() + cli("output").stdout
    for secret in (
        out["etl_password"],
        out["reader_password"],
        cli.env()["AIRFLOW_INFRA_ADMIN_DSN"].split(":")[2].split("@")[0],
    ):
        assert secret not in texts


def test_two_projects_on_one_server_cannot_read_each_other(server_cli, make_cli, moto_endpoint, admin_dsn, name):
    a = server_cli()
    a("apply", "--auto-approve")
    b = make_cli()
    (b.dir / "airflow-infra.toml").write_text(SERVER.format(name=b.dir.name, bucket_extra=""))
    b("apply", "--auto-approve")
    oa, ob = a.outputs(), b.outputs()
    with connect_as(oa, "etl") as etl:
        etl.execute("CREATE TABLE raw.secret (v text)")
        etl.execute("INSERT INTO raw.secret VALUES ('a only')")
    for who in ("etl", "reader"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            connect_as(ob, who, dbname=oa["postgres_database"])


def test_drift_by_hand_is_planned_and_repaired(server_cli, name, s3):
    cli = server_cli()
    cli("apply", "--auto-approve")
    b = bucket_of(name)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_public_access_block(Bucket=b)
    s3.delete_bucket_policy(Bucket=b)
    plan = cli("plan", "--detailed-exitcode", expect=2).stdout
    drift = plan.split("Changed outside airflow-infra:")[1].split("airflow-infra will perform")[0]
    assert 's3_bucket.workfiles: versioning changed "Enabled" -> "Suspended"' in drift
    assert "s3_bucket.workfiles: public_access_block changed" in drift and "tls_only changed true -> false" in drift
    assert "~ s3_bucket.workfiles" in plan and "Plan: 0 to add, 1 to change, 0 to destroy." in plan
    cli("apply", "--auto-approve")
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"].values())
    assert "Policy" in s3.get_bucket_policy(Bucket=b)
    cli("plan", "--detailed-exitcode")


def test_non_empty_bucket_is_backed_up_before_it_is_emptied(server_cli, name, s3, tmp_path):
    backup = tmp_path / "bucket-backups"
    # moto is reached over plain http, which the TLS-only policy would (rightly) deny
    cli = server_cli(f'backup = "{backup}"\ntls_only = false')
    cli("apply", "--auto-approve")
    b = bucket_of(name)
    s3.put_object(Bucket=b, Key="in/data.csv", Body=b"v1")
    s3.put_object(Bucket=b, Key="in/data.csv", Body=b"v2")
    s3.put_object(Bucket=b, Key="gone.txt", Body=b"x")
    s3.delete_object(Bucket=b, Key="gone.txt")  # a delete marker
    refused = cli("destroy", "--auto-approve", expect=1)
    assert "s3_bucket.workfiles holds 4 object versions" in refused.stderr
    assert s3.get_object(Bucket=b, Key="in/data.csv")["Body"].read() == b"v2"

    done = cli("destroy", "--auto-approve", "--force-delete-data")
    where = next(
        line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith(f"Backup written: {backup}")
    )
    assert where.endswith(".manifest.json")
    manifest = json.loads(Path(where).read_text())["versions"]
    assert sorted((m["Key"], m["DeleteMarker"]) for m in manifest) == [
        ("gone.txt", False),
        ("gone.txt", True),
        ("in/data.csv", False),
        ("in/data.csv", False),
    ]
    contents = sorted((backup / m["Object"]).read_bytes() for m in manifest if m["Key"] == "in/data.csv")
    assert contents == [b"v1", b"v2"]
    assert b not in [x["Name"] for x in s3.list_buckets()["Buckets"]]


def test_backup_to_another_bucket(server_cli, name, s3):
    s3.create_bucket(Bucket=f"{name}-vault")
    cli = server_cli(f'backup = "s3://{name}-vault/backups"\ntls_only = false')
    cli("apply", "--auto-approve")
    s3.put_object(Bucket=bucket_of(name), Key="a.txt", Body=b"A")
    done = cli("destroy", "--auto-approve", "--force-delete-data")
    assert f"Backup written: s3://{name}-vault/backups/{bucket_of(name)}-" in done.stdout
    where = next(line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("Backup written: "))
    manifest = json.loads(s3.get_object(Bucket=f"{name}-vault", Key=where.split("/", 3)[3])["Body"].read())
    [version] = manifest["versions"]
    copy = s3.get_object(Bucket=f"{name}-vault", Key=f"backups/{version['Object']}")["Body"].read()
    assert version["Key"] == "a.txt" and copy == b"A"


def test_bucket_refresh_call_count(server_cli, name):
    """Counted with botocore's event hooks: one call per setting, 7 in all."""
    import airflow_infra as ai

    cli = server_cli()
    cli("apply", "--auto-approve")
    project = ai.open_project(cli.dir)
    target = project.target()
    provider = target.providers(cli.state()["lineage"])["s3_bucket"]
    [bucket] = [r for r in target.desired() if r.type == "s3_bucket"]
    calls = []
    target.bucket_client().meta.events.register("before-call.s3", lambda model, **kw: calls.append(model.name))
    observed = provider.read(bucket, None)
    assert not observed.foreign and observed.attrs["versioning"] == "Enabled"
    assert len(calls) == 7 and len(set(calls)) == 7, calls
    target.close()


def test_a_bucket_not_ours_is_refused_then_imported(server_cli, name, s3):
    b = bucket_of(name)
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="keep.txt", Body=b"theirs")
    cli = server_cli("tls_only = false")  # so that the test can read the object back over http
    refused = cli("plan", expect=1)
    assert f"s3_bucket.workfiles: '{b}' exists, not made by airflow-infra" in refused.stderr
    assert f"airflow-infra import s3_bucket.workfiles {b}" in refused.stderr  # the way to take it on purpose
    assert "+ postgres_database.main" in refused.stdout  # everything else is still planned
    wrong = cli("import", "s3_bucket.workfiles", "other-name", expect=1)
    assert "is not what the configuration names s3_bucket.workfiles" in wrong.stderr
    cli("import", "s3_bucket.workfiles", b)
    plan = cli("plan", "--detailed-exitcode", expect=2).stdout
    assert "~ s3_bucket.workfiles" in plan and "+ s3_bucket" not in plan
    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")
    assert s3.get_object(Bucket=b, Key="keep.txt")["Body"].read() == b"theirs"


def test_project_under_a_prefix_of_a_shared_bucket(server_cli, name, s3):
    shared = f"{name}-shared"
    s3.create_bucket(Bucket=shared)
    cli = server_cli(f'name = "{shared}"\nprefix = "projects/{name}"\ntls_only = false')
    cli("apply", "--auto-approve")
    assert cli.outputs()["bucket_url"] == f"s3://{shared}/projects/{name}/"
    s3.put_object(Bucket=shared, Key=f"projects/{name}/x.csv", Body=b"1")
    s3.put_object(Bucket=shared, Key="projects/other/y.csv", Body=b"2")
    assert "s3_prefix.workfiles holds" in cli("destroy", "--auto-approve", expect=1).stderr
    cli("destroy", "--auto-approve", "--force-delete-data")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=shared)["Contents"]]
    assert keys == ["projects/other/y.csv"]


@pytest.mark.parametrize("bucket_name", ["Has_Upper", "ab", "192.168.1.1", "a..b"])
def test_invalid_bucket_name(server_cli, bucket_name, s3):
    cli = server_cli(f'name = "{bucket_name}"')
    proc = cli("apply", "--auto-approve", expect=1)
    assert "bucket.name" in proc.stderr and "not a valid S3 bucket name" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert not (cli.dir / ".airflow-infra" / "state.json").exists()


def test_admin_dsn_missing_or_underprivileged(server_cli, name, superuser, server):
    cli = server_cli()
    missing = cli("plan", expect=1, AIRFLOW_INFRA_ADMIN_DSN="")
    assert "AIRFLOW_INFRA_ADMIN_DSN is not set" in missing.stderr
    with superuser() as conn:
        conn.execute("DROP ROLE IF EXISTS it_weak")
        conn.execute("CREATE ROLE it_weak LOGIN PASSWORD 'weak-pass-123'")
        conn.execute("GRANT CONNECT ON DATABASE postgres TO it_weak")  # see admin_dsn
    weak = f"postgresql://it_weak:weak-pass-123@127.0.0.1:{server.port}/postgres"
    proc = cli("apply", "--auto-approve", expect=1, AIRFLOW_INFRA_ADMIN_DSN=weak)
    assert "'it_weak' needs CREATEDB and CREATEROLE" in proc.stderr and "weak-pass-123" not in proc.stderr
    bad = cli("plan", expect=1, AIRFLOW_INFRA_ADMIN_DSN=weak.replace("weak-pass-123", "wrong-pass-456"))
    assert "password authentication failed" in bad.stderr and "wrong-pass-456" not in bad.stderr
    with superuser() as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0] == 0


def test_unreachable_endpoint(server_cli):
    from airflow_infra.localserver.binaries import free_port

    cli = server_cli()
    proc = cli("plan", expect=1, AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    assert "cannot reach the endpoint http://127.0.0.1:" in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_a_store_without_some_settings_is_told_plainly(server_cli, name, moto_endpoint, s3):
    from s3proxy import S3Proxy

    with S3Proxy(moto_endpoint) as store:
        store.not_implemented = {"ownershipControls", "lifecycle"}
        cli = server_cli(f'endpoint_url = "{store.url}"\naddressing_style = "path"')
        applied = cli("apply", "--auto-approve")
        assert "Apply complete!" in applied.stdout
        plan = cli("plan", "--detailed-exitcode")
        assert (
            f"Warning: bucket {bucket_of(name)}: the store does not support lifecycle, ownership; left as they are"
        ) in plan.stdout
        assert cli.outputs()["bucket_endpoint_url"] == store.url
    assert s3.get_bucket_versioning(Bucket=bucket_of(name))["Status"] == "Enabled"


def test_a_store_without_tagging_adopts_nothing_without_import(server_cli, name, moto_endpoint, s3):
    """Such a store can hold no marker: a bucket there is nobody's we can tell, so it is taken only by
    `import`, and is then ours (the state records it) with nothing left to change."""
    from s3proxy import S3Proxy

    b = bucket_of(name)
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="theirs.csv", Body=b"1")
    with S3Proxy(moto_endpoint) as store:
        store.not_implemented = {"tagging"}
        cli = server_cli(f'endpoint_url = "{store.url}"\naddressing_style = "path"\ntls_only = false')
        refused = cli("plan", expect=1)
        assert "the store keeps no tags" in refused.stderr
        assert f"airflow-infra import s3_bucket.workfiles {b}" in refused.stderr
        cli("import", "s3_bucket.workfiles", b)
        cli("apply", "--auto-approve")
        cli("plan", "--detailed-exitcode")
    assert s3.get_object(Bucket=b, Key="theirs.csv")["Body"].read() == b"1"


def test_operation_aborted_is_retried_by_botocore(moto_endpoint, s3, name):
    from s3proxy import S3Proxy

    from airflow_infra.aws.clients import s3_client

    s3.create_bucket(Bucket=f"{name}-aborts")
    with S3Proxy(moto_endpoint) as store:
        store.abort_next = 2
        client = s3_client(region="us-east-1", endpoint_url=store.url, addressing_style="path")
        client.put_bucket_versioning(Bucket=f"{name}-aborts", VersioningConfiguration={"Status": "Enabled"})
        assert len(store.requests) == 3  # two 409 OperationAborted, then through
    assert s3.get_bucket_versioning(Bucket=f"{name}-aborts")["Status"] == "Enabled"


def test_existing_database_is_refused_then_imported(server_cli, name, superuser, admin_dsn):
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(admin_dsn, dbname=name, autocommit=True) as db:
        db.execute("CREATE TABLE kept (v int)")
        db.execute("INSERT INTO kept VALUES (42)")
    cli = server_cli("tls_only = false")
    refused = cli("plan", expect=1)
    assert f"postgres_database.main: '{name}' exists, not made by airflow-infra" in refused.stderr
    missing = cli("import", "postgres_database.main", name + "x", expect=1)
    assert "is not what the configuration names" in missing.stderr
    cli("import", "postgres_database.main", name)
    plan = json.loads(cli("plan", "--json").stdout)
    assert {c["address"]: c["action"] for c in plan["changes"]}["postgres_database.main"] == "update"
    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")
    with connect_as(cli.outputs(), "reader") as reader, pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.execute("SELECT * FROM public.kept")
    with psycopg.connect(admin_dsn, dbname=name) as db:
        assert db.execute("SELECT v FROM kept").fetchone()[0] == 42


def test_a_database_closed_to_the_admin_is_a_conflict_not_a_failure(server_cli, name, superuser):
    """Someone else's database of the project's name, with CONNECT revoked from PUBLIC: plan lists it
    as a conflict (it looks no further inside) and plans the rest."""
    with superuser() as conn:
        conn.execute(f"CREATE DATABASE {name}")
        conn.execute(f"REVOKE CONNECT ON DATABASE {name} FROM PUBLIC")
    try:
        cli = server_cli("tls_only = false")
        refused = cli("plan", expect=1)
        assert f"Conflict: postgres_database.main: '{name}' exists, not made by airflow-infra" in refused.stdout
        assert "+ postgres_role.etl" in refused.stdout
    finally:
        with superuser() as conn:
            conn.execute(f"DROP DATABASE {name}")


def test_two_environments_of_one_project_never_share(server_cli, make_cli, name):
    cli = server_cli("tls_only = false")
    cli("apply", "--auto-approve")
    prod = make_cli()  # another checkout, with its own state: the same project, environment prod
    (prod.dir / "airflow-infra.toml").write_text(
        (cli.dir / "airflow-infra.toml").read_text().replace('environment = "dev"', 'environment = "prod"')
    )
    proc = prod("plan", expect=1)
    assert f"'{name}_" in proc.stderr and "made by this project's environment 'dev'" in proc.stderr
    assert "two environments of one project cannot share a server" in proc.stderr and "import" not in proc.stderr


TEAM = """
[state]
backend = "postgres"
[secrets]
store = "{store}"
"""


def test_team_secrets_in_the_state(server_cli, make_cli, name, state_dsn, tmp_path):
    """Two laptops (two AIRFLOW_INFRA_HOMEs), one shared state: the passwords travel encrypted in it."""
    import shutil
    import tempfile

    a = server_cli("tls_only = false")
    toml = a.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text() + TEAM.format(store="state"))
    env = {"AIRFLOW_INFRA_STATE_DSN": state_dsn, "AIRFLOW_INFRA_PASSPHRASE": "correct horse battery staple"}
    a("apply", "--auto-approve", **env)
    out_a = {k: v["value"] for k, v in json.loads(a("output", "--json", "--show-secrets", **env).stdout).items()}
    with psycopg.connect(state_dsn) as conn:
        stored = json.dumps(
            conn.execute("SELECT state FROM airflow_infra_state WHERE project = %s", (name,)).fetchone()[0]
        )
    assert out_a["etl_password"] not in stored and out_a["reader_password"] not in stored
    assert stored.count('"v1:') == 2
    assert out_a["etl_password"] not in (a.home / "secrets.json").read_text()  # only the local server's own

    laptop_b = Path(tempfile.mkdtemp(prefix="airflow-infra-laptop-b-"))
    try:
        b = make_cli()
        b.home = laptop_b
        (b.dir / "airflow-infra.toml").write_text(toml.read_text())
        b("plan", "--detailed-exitcode", **env)
        out_b = {k: v["value"] for k, v in json.loads(b("output", "--json", "--show-secrets", **env).stdout).items()}
        assert (out_b["etl_password"], out_b["reader_password"]) == (out_a["etl_password"], out_a["reader_password"])
        with connect_as(out_b, "etl") as etl:
            assert etl.execute("SELECT current_user").fetchone()[0] == f"{name}_etl"
        no_pass = {"AIRFLOW_INFRA_STATE_DSN": state_dsn, "AIRFLOW_INFRA_PASSPHRASE": ""}
        b("plan", "--detailed-exitcode", **no_pass)
        refused = b("output", "--show-secrets", expect=1, **no_pass)
        assert "AIRFLOW_INFRA_PASSPHRASE is not set" in refused.stderr and refused.stderr.count("\n") == 1
        wrong = b(
            "output", "--show-secrets", expect=1, AIRFLOW_INFRA_STATE_DSN=state_dsn, AIRFLOW_INFRA_PASSPHRASE="nope"
        )
        assert "does not decrypt" in wrong.stderr
        assert b("output", **no_pass).stdout.count("<sensitive>") == 3
    finally:
        shutil.rmtree(laptop_b, ignore_errors=True)


def test_secrets_in_aws_secrets_manager(server_cli, name, state_dsn):
    import boto3

    cli = server_cli("tls_only = false")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text() + TEAM.format(store="aws-secrets-manager"))
    cli("apply", "--auto-approve", AIRFLOW_INFRA_STATE_DSN=state_dsn)
    out = {
        k: v["value"]
        for k, v in json.loads(
            cli("output", "--json", "--show-secrets", AIRFLOW_INFRA_STATE_DSN=state_dsn).stdout
        ).items()
    }
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    names = [s["Name"] for s in sm.list_secrets()["SecretList"] if s["Name"].startswith(f"airflow-infra/{name}/dev/")]
    assert len(names) == 2
    values = sorted(sm.get_secret_value(SecretId=n)["SecretString"] for n in names)
    assert values == sorted([out["etl_password"], out["reader_password"]])
    with psycopg.connect(state_dsn) as conn:
        stored = json.dumps(
            conn.execute("SELECT state FROM airflow_infra_state WHERE project = %s", (name,)).fetchone()[0]
        )
    assert all(v not in stored for v in values)
    with connect_as(out, "reader") as reader:
        assert reader.execute("SELECT 1").fetchone()[0] == 1
    fresh = cli("doctor", AIRFLOW_INFRA_STATE_DSN=state_dsn).stdout
    assert "password age" in fresh and "failed" not in fresh
    stale = cli("--var", "secrets.max_age_days=0", "doctor", expect=1, AIRFLOW_INFRA_STATE_DSN=state_dsn).stdout
    assert "airflow-infra rotate" in " ".join(stale.replace("│", " ").split())


def test_role_secrets_kept_right_in_secrets_manager(server_cli, name, state_dsn):
    """Encrypted with [secrets] kms_key_id; scheduled for deletion, moved to another key or opened to
    everyone by hand: drift on the role, repaired by apply, the password kept."""
    import boto3

    key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    cli = server_cli("tls_only = false")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text() + TEAM.format(store="aws-secrets-manager") + f'kms_key_id = "{key}"\n')
    env = {"AIRFLOW_INFRA_STATE_DSN": state_dsn}
    cli("apply", "--auto-approve", **env)
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    etl, reader = f"airflow-infra/{name}/dev/{name}_etl", f"airflow-infra/{name}/dev/{name}_reader"
    assert sm.describe_secret(SecretId=etl)["KmsKeyId"] == key
    password = sm.get_secret_value(SecretId=etl)["SecretString"]
    sm.put_resource_policy(
        SecretId=etl,
        ResourcePolicy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "*"},
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    sm.update_secret(
        SecretId=reader, KmsKeyId=boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    )
    plan = cli("plan", "--detailed-exitcode", expect=2, **env).stdout
    assert "it has a resource policy that allows everyone (Principal *)" in plan and "not [secrets] kms_key_id" in plan
    cli("apply", "--auto-approve", **env)
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=etl)
    assert sm.describe_secret(SecretId=reader)["KmsKeyId"] == key
    sm.delete_secret(SecretId=etl, RecoveryWindowInDays=7)  # scheduled for deletion by hand
    assert "scheduled for deletion" in cli("plan", "--detailed-exitcode", expect=2, **env).stdout
    cli("apply", "--auto-approve", **env)
    assert "DeletedDate" not in sm.describe_secret(SecretId=etl)
    assert sm.get_secret_value(SecretId=etl)["SecretString"] == password  # the same password throughout
    cli("plan", "--detailed-exitcode", **env)


def test_team_secrets_wrapped_by_kms(server_cli, make_cli, name, state_dsn):
    import boto3

    key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    a = server_cli("tls_only = false")
    toml = a.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text() + TEAM.format(store="state") + f'kms_key_id = "{key_id}"\n')
    env = {"AIRFLOW_INFRA_STATE_DSN": state_dsn, "AIRFLOW_INFRA_PASSPHRASE": ""}
    a("apply", "--auto-approve", **env)
    out_a = json.loads(a("output", "--json", "--show-secrets", **env).stdout)
    with psycopg.connect(state_dsn) as conn:
        doc = conn.execute("SELECT state FROM airflow_infra_state WHERE project = %s", (name,)).fetchone()[0]
    assert set(doc["secrets"]) == {"_data_key", f"{name}/dev/{name}_etl", f"{name}/dev/{name}_reader"}
    assert out_a["etl_password"]["value"] not in json.dumps(doc)
    b = make_cli()
    (b.dir / "airflow-infra.toml").write_text(toml.read_text())
    b("plan", "--detailed-exitcode", **env)
    assert json.loads(b("output", "--json", "--show-secrets", **env).stdout)["etl_password"] == out_a["etl_password"]


def test_connections_on_s3(server_cli, name, moto_endpoint):
    cli = server_cli('prefix = "projects/x"\nname = "' + name.replace("_", "-") + '-shared"\ntls_only = false')
    import boto3

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=name.replace("_", "-") + "-shared")
    cli("apply", "--auto-approve")
    conns = json.loads(cli.tty("connections", "--format", "json").stdout)
    bucket = conns[f"{name}_workbucket"]
    assert bucket == {
        "conn_type": "aws",
        "extra": {
            "region_name": "us-east-1",
            "endpoint_url": moto_endpoint,
            "service_config": {"s3": {"bucket_name": f"{name.replace('_', '-')}-shared"}},
        },
    }
    env = cli.tty("connections", "--format", "env").stdout
    assert (
        f"AIRFLOW_VAR_{name.upper()}_WORKFILES_URL='s3://{name}_workbucket@{name.replace('_', '-')}-shared/projects/x/'"
        in env
    )
    assert conns[f"{name}_postgres"]["password"] == "<sensitive>"


def test_doctor_leaves_nothing_behind_in_a_versioned_bucket(server_cli, name, s3):
    cli = server_cli("tls_only = false")
    cli("apply", "--auto-approve")
    assert "bucket (list, put, delete)" in cli("doctor").stdout
    page = s3.list_object_versions(Bucket=bucket_of(name))
    assert page.get("Versions", []) == [] and page.get("DeleteMarkers", []) == []
    cli("destroy", "--auto-approve")  # an unused bucket goes without --force-delete-data
    assert bucket_of(name) not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
