"""Generated Airflow connections, read by a real Airflow 3; pushed to Secrets Manager (moto); doctor."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def airflow_db(airflow_python, tmp_path_factory):
    """A migrated Airflow metadata database (sqlite) in an AIRFLOW_HOME of its own."""
    home = tmp_path_factory.mktemp("airflow-db")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    airflow = str(airflow_python.parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
    return airflow, env


def airflow_get(airflow_db, conn_id: str, env_extra: dict | None = None) -> dict:
    airflow, env = airflow_db
    proc = subprocess.run(
        [airflow, "connections", "get", conn_id, "-o", "json"],
        env={**env, **(env_extra or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])[0]


def test_files_are_accepted_by_airflow_connections_import(cli, name, airflow_db):
    cli("up")
    out = cli.outputs()
    for fmt, suffix in (("json", "json"), ("yaml", "yaml"), ("uri", "env")):
        path = cli.dir / f"connections.{suffix}"
        cli("connections", "--format", fmt, "--output", str(path))
        assert path.stat().st_mode & 0o777 == 0o600
        airflow, env = airflow_db
        subprocess.run(
            [airflow, "connections", "import", "--overwrite", str(path)],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        got = airflow_get(airflow_db, f"{name}_postgres")
        assert (got["host"], int(got["port"]), got["login"], got["schema"]) == (
            out["postgres_host"],
            out["postgres_port"],
            out["etl_user"],
            out["postgres_database"],
        ), fmt
        assert got["password"] == out["etl_password"]
        bucket = airflow_get(airflow_db, f"{name}_workbucket")
        assert bucket["conn_type"] == "fs" and bucket["extra_dejson"] == {"path": out["bucket_path"]}

    # env: sourced, Airflow reads AIRFLOW_CONN_* from the environment
    env_file = cli.dir / "airflow.env"
    cli("connections", "--format", "env", "--output", str(env_file))
    airflow, env = airflow_db
    script = f"set -a; . {env_file}; set +a; {airflow} connections get {name}_postgres -o json"
    proc = subprocess.run(
        ["bash", "-c", script],
        env={**env, "AIRFLOW_HOME": str(cli.dir / "no-db")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    got = json.loads(proc.stdout.strip().splitlines()[-1])[0]
    assert (got["host"], got["login"], got["password"]) == (out["postgres_host"], out["etl_user"], out["etl_password"])
    variables = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert variables[f"AIRFLOW_VAR_{name.upper()}_WORKFILES_URL"] == f"'{out['bucket_url']}'"


def test_no_secret_without_show_secrets(cli):
    cli("up")
    password = cli.outputs()["etl_password"]
    for fmt in ("env", "json", "yaml", "uri"):
        shown = cli.tty("connections", "--format", fmt)
        assert password not in shown.stdout and "sensitive" in shown.stdout and "passwords are masked" in shown.stderr
        piped = cli("connections", "--format", fmt, expect=1)  # `| tee conns.env` would get the mask
        assert "stdout is not a terminal" in piped.stderr and piped.stdout == ""
    assert password in cli("connections", "--format", "json", "--show-secrets").stdout


def test_seed_connection_ids_are_kept(cli, name):
    cli("init")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(
        toml.read_text() + '\n[airflow]\npostgres_conn_id = "redb_postgres"\nbucket_conn_id = "redb-workbucket"\n'
    )
    cli("apply", "--auto-approve")
    conns = json.loads(cli.tty("connections", "--format", "json").stdout)
    assert set(conns) == {"redb_postgres", "redb-workbucket"}
    refused = cli("connections", "--format", "env", "--show-secrets", expect=1)
    assert "'redb-workbucket' cannot be an environment variable" in refused.stderr


def test_push_to_secrets_manager(cli, name, moto_endpoint, airflow_python):
    import boto3

    cli("up")
    first = cli("connections", "push", "--to", "aws-secrets-manager").stdout
    assert f"airflow/connections/{name}_postgres: created" in first
    assert f"airflow/variables/{name}_workfiles_url: created" in first
    again = cli("connections", "push", "--to", "aws-secrets-manager").stdout
    assert again.count("unchanged") == 3 and "created" not in again
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    body = json.loads(sm.get_secret_value(SecretId=f"airflow/connections/{name}_postgres")["SecretString"])
    out = cli.outputs()
    assert body == {
        "conn_type": "postgres",
        "host": out["postgres_host"],
        "port": out["postgres_port"],
        "schema": out["postgres_database"],
        "login": out["etl_user"],
        "password": out["etl_password"],
    }
    assert sm.get_secret_value(SecretId=f"airflow/variables/{name}_workfiles_url")["SecretString"] == out["bucket_url"]
    assert out["etl_password"] not in first + again
    secret = sm.describe_secret(SecretId=f"airflow/connections/{name}_postgres")  # tagged like the project's others
    assert {t["Key"]: t["Value"] for t in secret["Tags"]} == {
        "ManagedBy": "airflow-infra",
        "Project": name,
        "Environment": "dev",
    }
    assert cli.state()["pushed"][f"airflow/connections/{name}_postgres"] == secret["ARN"]  # recorded, for destroy

    # read back as Airflow reads them: the amazon provider's SecretsManagerBackend
    read = f"""
import json
from airflow.providers.amazon.aws.secrets.secrets_manager import SecretsManagerBackend
b = SecretsManagerBackend(region_name="us-east-1")
c = b.get_connection("{name}_postgres")
print(json.dumps([c.conn_type, c.host, c.port, c.schema, c.login, c.password, b.get_variable("{name}_workfiles_url")]))
"""
    proc = subprocess.run([str(airflow_python), "-c", read], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [
        "postgres",
        out["postgres_host"],
        out["postgres_port"],
        out["postgres_database"],
        out["etl_user"],
        out["etl_password"],
        out["bucket_url"],
    ]

    gone = cli("destroy", "--auto-approve")  # the pushed secrets go with the project (recoverable for 7 days)
    assert "scheduled for deletion" in gone.stderr and f"airflow/connections/{name}_postgres" in gone.stderr
    for n in (f"airflow/connections/{name}_postgres", f"airflow/variables/{name}_workfiles_url"):
        assert sm.describe_secret(SecretId=n).get("DeletedDate")
    assert "pushed" not in cli.state()


def test_push_to_a_local_airflow(cli, name, airflow_db):
    airflow, env = airflow_db
    cli("up")
    pushed = cli(
        "connections", "push", "--to", "airflow", "--airflow-bin", airflow, AIRFLOW_HOME=env["AIRFLOW_HOME"]
    ).stdout
    assert f"{name}_postgres: imported" in pushed
    assert airflow_get(airflow_db, f"{name}_postgres")["login"] == f"{name}_etl"


def test_doctor(cli, name, superuser):
    cli("up")
    ok = cli("doctor").stdout
    assert ok.count("passed") == 2
    with superuser(name) as conn:
        conn.execute(f"ALTER ROLE {name}_etl PASSWORD 'changed-by-hand-1'")
    failed = cli("doctor", expect=1, COLUMNS="300").stdout
    assert "failed" in failed and "password authentication failed" in failed and "changed-by-hand-1" not in failed


def test_new_project_runs_its_example_dag_in_airflow(tmp_path, home, airflow_db):
    import sys
    import uuid

    import psycopg
    from gitrepos import git

    name = "demo_" + uuid.uuid4().hex[:6]
    env = {**os.environ, "AIRFLOW_INFRA_HOME": str(home)}

    def ai(*args, cwd=tmp_path, check=True):
        return subprocess.run(
            [sys.executable, "-m", "airflow_infra", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=check,
        )

    bad = ai("new", "211dashboard", check=False)
    assert bad.returncode == 1 and "not a valid project name" in bad.stderr
    ai("new", name)
    repo = tmp_path / name
    for d in ("dags", "scripts", "resources", "sql", "tests"):
        assert (repo / d).is_dir()
    rotation = [ln for ln in (repo / "README.md").read_text().splitlines() if "airflow-infra --lock-timeout" in ln]
    assert rotation and rotation[0].split()[:5] == ["17", "3", "1", "*", "*"] and f"/{name} &&" in rotation[0]
    ai("up", cwd=repo)
    ai("connections", "--format", "env", "--output", ".airflow.env", cwd=repo)

    # the repository's .gitignore keeps every file that can hold a secret, and the state, out of git
    git("init", "--quiet", cwd=repo)
    for f in (".airflow.env", "connections.json", "prod.env", ".airflow-infra/state.json"):
        assert subprocess.run(["git", "check-ignore", "-q", f], cwd=repo).returncode == 0, f
    assert subprocess.run(["git", "check-ignore", "-q", "dags/x.py"], cwd=repo).returncode == 1

    # a second file beside the one the DAG writes: two mapped load tasks, each file loaded once
    bucket = Path(json.loads(ai("output", "--json", cwd=repo).stdout)["bucket_path"]["value"])
    (bucket / "incoming").mkdir(parents=True)
    (bucket / "incoming" / "more.csv").write_text("name,state,population\nPeoria,IL,113150\nJoplin,MO,51762\n")
    airflow, af_env = airflow_db
    run = f"set -a; . ./.airflow.env; set +a; {airflow} dags test {name}_example_elt"
    proc = subprocess.run(
        ["bash", "-c", run],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        env={**af_env, "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "dags")},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = {k: v["value"] for k, v in json.loads(ai("output", "--json", "--show-secrets", cwd=repo).stdout).items()}
    with psycopg.connect(out["postgres_uri"]) as conn:
        rows = conn.execute("SELECT state, cities, population FROM analytics.cities_by_state ORDER BY state").fetchall()
    assert rows == [("IL", 3, 2777846 + 113150), ("MO", 4, 927116 + 51762)]
    assert (Path(out["bucket_path"]) / "incoming" / "cities.csv").exists()
    with psycopg.connect(out["postgres_uri"]) as conn:  # loaded by airflow-infra's operator, once, as the etl role
        loads = conn.execute("SELECT url, rows, loaded_by FROM airflow_infra.loads WHERE table_name = 'raw.cities'")
        got = sorted((u.rsplit("/", 1)[1], r, who) for u, r, who in loads)
        assert got == [("cities.csv", 5, out["etl_user"]), ("more.csv", 2, out["etl_user"])]
    assets = subprocess.run(
        [airflow, "assets", "list", "-o", "json"], capture_output=True, text=True, timeout=300, env=af_env, cwd=repo
    )
    assert f"airflow-infra://{name}/raw/cities" in assets.stdout, assets.stdout[-2000:] + assets.stderr[-2000:]

    check = subprocess.run(
        [
            str(Path(airflow).parent / "python"),
            "-c",
            "import sys; sys.path.insert(0, 'tests'); import test_dags; test_dags.test_dags_load()",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env=af_env,
    )
    assert check.returncode == 0, check.stderr


def test_rotate_reaches_airflow_and_the_old_password_stops(cli, name, airflow_db):
    import psycopg
    from conftest import connect_as

    airflow, env = airflow_db
    cli("up")
    old = cli.outputs()
    cli("connections", "push", "--to", "airflow", "--airflow-bin", airflow, AIRFLOW_HOME=env["AIRFLOW_HOME"])
    done = cli("rotate", "etl", "--push", "airflow", "--airflow-bin", airflow, AIRFLOW_HOME=env["AIRFLOW_HOME"]).stdout
    assert f"{name}_etl: new password set and stored" in done and f"{name}_reader" not in done.split("\n")[1:2]
    new = cli.outputs()
    assert new["etl_password"] != old["etl_password"] and new["reader_password"] == old["reader_password"]
    got = airflow_get(airflow_db, f"{name}_postgres")  # as Airflow reads it back
    assert got["password"] == new["etl_password"]
    with connect_as({**new, "etl_password": got["password"]}, "etl") as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == f"{name}_etl"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect_as(old, "etl")
    cli("plan", "--detailed-exitcode")
