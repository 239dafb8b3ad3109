"""Drift on everything we manage (invariant 4): what a hand changes behind the tool's back that
matters for security shows under "Changed outside airflow-infra", and apply puts it back."""

from __future__ import annotations

import json

import psycopg
import pytest
from conftest import bucket_of, connect_as


def _drifted(cli) -> str:
    plan = cli("plan", "--detailed-exitcode", expect=2).stdout
    assert "Changed outside airflow-infra:" in plan
    return plan


def _repaired(cli) -> None:
    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")


def test_role_attributes_membership_and_password(cli, superuser):
    cli("up")
    name = cli.dir.name
    with superuser() as conn:
        conn.execute(
            f"ALTER ROLE {name}_etl SUPERUSER CREATEROLE CREATEDB BYPASSRLS REPLICATION NOINHERIT "
            "CONNECTION LIMIT 0 VALID UNTIL '2000-01-01' PASSWORD 'x'"
        )
        conn.execute(f"ALTER ROLE {name}_owner LOGIN")
        conn.execute(f"CREATE ROLE {name}_intruder")
        conn.execute(f"GRANT {name}_owner TO {name}_intruder")
    plan = _drifted(cli)
    for line in (
        "superuser changed false -> true",
        "createrole changed false -> true",
        "createdb changed false -> true",
        "bypassrls changed false -> true",
        "replication changed false -> true",
        "inherit changed true -> false",
        "connection_limit changed -1 -> 0",
        'valid_until changed null -> "2000-01-01',
        'password changed "stored" -> "not the stored one"',
    ):
        assert f"postgres_role.etl: {line}" in plan
    assert "postgres_role.owner: login changed false -> true" in plan
    assert f'postgres_role.owner: other_members changed [] -> ["{name}_intruder"]' in plan
    _repaired(cli)
    with superuser() as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolinherit, "
            "rolconnlimit FROM pg_roles WHERE rolname = %s",
            (f"{name}_etl",),
        ).fetchone()
        assert row == (False, False, False, False, False, True, -1)
        assert not conn.execute(
            "SELECT 1 FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
            (f"{name}_intruder",),
        ).fetchone()
    with connect_as(cli.outputs(), "etl") as conn:  # the stored password works again
        assert conn.execute("SELECT current_user").fetchone()[0] == f"{name}_etl"


def test_table_grants_in_the_project_schemas(cli, superuser):
    cli("up")
    name = cli.dir.name
    out = cli.outputs()
    with connect_as(out, "etl") as etl:
        etl.execute("CREATE TABLE raw.t AS SELECT 1 AS x")
        etl.execute("CREATE SEQUENCE staging.s")
    with superuser(name) as conn:
        conn.execute(f"GRANT INSERT, DELETE ON raw.t TO {name}_reader")
        conn.execute(f"REVOKE SELECT ON raw.t FROM {name}_reader")
        conn.execute(f"GRANT USAGE, UPDATE ON staging.s TO {name}_reader")
        conn.execute("CREATE ROLE " + name + "_outsider")
        conn.execute(f"GRANT SELECT ON raw.t TO {name}_outsider")
    plan = _drifted(cli)
    assert (
        f'postgres_schema.raw: grants changed [] -> ["{name}_outsider holds SELECT on raw.t", '
        f'"{name}_reader cannot SELECT raw.t", "{name}_reader holds DELETE, INSERT on raw.t"]'
    ) in plan
    assert f'postgres_schema.staging: grants changed [] -> ["{name}_reader holds UPDATE, USAGE on staging.s"]' in plan
    _repaired(cli)
    with superuser(name) as conn:
        held = conn.execute(
            "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
            "WHERE table_schema = 'raw' AND table_name = 't' AND grantee <> %s ORDER BY 1, 2",
            (f"{name}_etl",),
        ).fetchall()
        assert held == [(f"{name}_reader", "SELECT")]
    with connect_as(out, "reader") as reader:
        assert reader.execute("SELECT x FROM raw.t").fetchone()[0] == 1


def test_schema_public_and_the_servers_other_databases(cli, superuser):
    cli("up")
    name = cli.dir.name
    out = cli.outputs()
    with connect_as(out, "etl") as etl, pytest.raises(psycopg.errors.InsufficientPrivilege):
        etl.execute("CREATE TABLE public.hidden (x int)")  # the readers' grants never reach there
    for who in ("etl", "reader"):
        for db in ("postgres", "template1"):
            with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                connect_as(out, who, db)
    with superuser(name) as conn:
        conn.execute(f"GRANT CREATE ON SCHEMA public TO {name}_etl")
    with superuser() as conn:
        conn.execute(f"GRANT CONNECT ON DATABASE template1 TO {name}_reader")
    plan = _drifted(cli)
    assert f'postgres_database.main: public_create changed [] -> ["{name}_etl"]' in plan
    assert 'postgres_role.reader: other_databases changed [] -> ["template1"]' in plan
    _repaired(cli)
    with connect_as(out, "etl") as etl, pytest.raises(psycopg.errors.InsufficientPrivilege):
        etl.execute("CREATE TABLE public.hidden (x int)")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect_as(out, "reader", "template1")


def test_a_bucket_policy_statement_added_by_hand(server_cli, name, s3):
    cli = server_cli()
    cli("apply", "--auto-approve")
    bucket = bucket_of(name)
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    policy["Statement"].append(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    plan = _drifted(cli)
    assert 's3_bucket.workfiles: other_policy_statements changed [] -> ["(no Sid): Allow * s3:GetObject"]' in plan
    _repaired(cli)
    [statement] = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_a_createrole_admin_says_what_it_cannot_repair(server_cli, name, superuser):
    """The server target's admin is no superuser: it takes CREATEDB back, but a role made SUPERUSER
    by hand is beyond it; plan shows it, and apply says so in one line."""
    cli = server_cli("tls_only = false")
    cli("apply", "--auto-approve")
    with superuser() as conn:
        conn.execute(f"ALTER ROLE {name}_reader CREATEDB")
    assert "postgres_role.reader: createdb changed false -> true" in _drifted(cli)
    _repaired(cli)
    with superuser() as conn:
        conn.execute(f"ALTER ROLE {name}_reader SUPERUSER")
    assert "postgres_role.reader: superuser changed false -> true" in _drifted(cli)
    failed = cli("apply", "--auto-approve", expect=1)
    assert "postgres_role.reader: update failed: " in failed.stderr and "superuser" in failed.stderr
    with superuser() as conn:
        conn.execute(f"ALTER ROLE {name}_reader NOSUPERUSER")
    cli("plan", "--detailed-exitcode")


def test_grants_the_admin_cannot_take_back_are_said(server_cli, name, superuser):
    """A table a superuser made in a project schema, granted to PUBLIC: the CREATEROLE admin can neither
    take it over nor revoke its grants; apply says so in one line, and changes nothing else."""
    cli = server_cli("tls_only = false")
    cli("apply", "--auto-approve")
    with superuser(name) as conn:
        conn.execute("CREATE TABLE raw.theirs (x int)")
        conn.execute("GRANT SELECT ON raw.theirs TO PUBLIC")
    assert '"PUBLIC holds SELECT on raw.theirs"' in _drifted(cli)
    error = cli("apply", "--auto-approve", expect=1).stderr.strip().splitlines()[-1]
    assert error.startswith("Error: ") and "postgres_schema.raw: update failed: must be owner of table theirs" in error
    with superuser(name) as conn:
        conn.execute("DROP TABLE raw.theirs")
    cli("plan", "--detailed-exitcode")


def test_every_way_into_the_project_schemas_and_database(cli, superuser):
    """Found by a hostile review: privileges the first drift checks did not see."""
    cli("up")
    name = cli.dir.name
    with connect_as(cli.outputs(), "etl") as etl:
        etl.execute("CREATE TABLE raw.t AS SELECT 1 AS id")
        etl.execute("CREATE TABLE raw.theirs (x int)")
    with superuser() as conn:
        conn.execute(f"CREATE ROLE {name}_out")
        conn.execute(f"GRANT {name}_owner TO {name}_etl WITH ADMIN OPTION")
    with superuser(name) as conn:
        for statement in (
            f"GRANT CREATE ON DATABASE {name} TO {name}_reader",
            f"GRANT CREATE ON SCHEMA raw TO {name}_reader",
            f"GRANT CREATE ON SCHEMA raw TO {name}_out",
            "GRANT USAGE ON SCHEMA staging TO PUBLIC",
            f"GRANT SELECT (id) ON raw.t TO {name}_out",
            f"ALTER TABLE raw.theirs OWNER TO {name}_out",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {name}_etl IN SCHEMA raw GRANT ALL ON TABLES TO {name}_out",
        ):
            conn.execute(statement)
    plan = _drifted(cli)
    for words in (
        f'other_privileges changed [] -> ["{name}_reader holds CREATE"]',
        f'admin_of changed [] -> ["{name}_owner"]',
        f"{name}_reader holds CREATE on schema raw",
        f"{name}_out holds CREATE on schema raw",
        "PUBLIC holds USAGE on schema staging",
        f"{name}_out holds SELECT on raw.t (id)",
        f"{name}_out owns raw.theirs",
        f"the default privileges of {name}_etl give {name}_out ",
    ):
        assert words in plan, words
    _repaired(cli)
    with superuser(name) as conn:
        assert (
            conn.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'theirs'").fetchone()[0]
            == f"{name}_owner"
        )
        assert not conn.execute(
            "SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) a WHERE pg_get_userbyid(a.grantee) = %s",
            (f"{name}_out",),
        ).fetchone()
    with connect_as(cli.outputs(), "reader") as reader, pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.execute("CREATE SCHEMA mine")
