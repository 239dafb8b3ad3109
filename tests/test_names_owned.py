"""Each project's names are its own: a connection id, variable or database two projects of one registry
claim belongs to neither; `projects add` refuses the second claim, a fleet command the later row, the
secrets backend serves it to nobody; a Secrets Manager secret another project's tags name is never
overwritten or deleted. The backend fails small and loud: one bad row or project costs its own names."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_infra.airflow.catalog import Catalog


def run(*args: str, expect: int | None = 0, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "airflow_infra", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, **env},
    )
    if expect is not None:
        assert proc.returncode == expect, f"exit {proc.returncode} for {args}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def with_conn_id(cli, conn_id: str) -> None:
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text() + f'\n[airflow]\npostgres_conn_id = "{conn_id}"\n')


@pytest.fixture
def pair(make_cli):
    """Two applied local projects: victim, then thief (whose config may be pointed at the victim's names)."""
    victim, thief = make_cli(), make_cli()
    for c in (victim, thief):
        c("up")
    return victim, thief


def register(registry: Path, *clis, add: bool = False) -> subprocess.CompletedProcess | None:
    rows = ["Project,Repo,URL,Config"] + [f"{c.dir.name},{c.dir.name},{c.dir},{c.dir}/airflow-infra.toml" for c in clis]
    registry.write_text("\n".join(rows) + "\n")
    return None


def test_a_second_claim_on_a_connection_id_is_refused_by_projects_add_and_the_fleet(pair, tmp_path, home):
    victim, thief = pair
    with_conn_id(thief, f"{victim.dir.name}_postgres")
    reg = tmp_path / "projects.csv"
    run(
        "projects",
        "add",
        victim.dir.name,
        str(victim.dir),
        "--config",
        f"{victim.dir}/airflow-infra.toml",
        "--registry",
        str(reg),
        AIRFLOW_INFRA_HOME=str(home),
    )
    before = reg.read_text()
    refused = run(
        "projects",
        "add",
        thief.dir.name,
        str(thief.dir),
        "--config",
        f"{thief.dir}/airflow-infra.toml",
        "--registry",
        str(reg),
        expect=1,
        AIRFLOW_INFRA_HOME=str(home),
    )
    [line] = refused.stderr.strip().splitlines()
    assert (
        f"connection id '{victim.dir.name}_postgres' is claimed by projects {victim.dir.name} and {thief.dir.name}"
    ) in line and f"{thief.dir.name} was not added" in line
    assert reg.read_text() == before

    register(reg, victim, thief)  # written by hand: the fleet refuses the later row, plans the first
    results = {
        r["project"]: r
        for r in json.loads(
            run("plan", "--all", "--json", "--registry", str(reg), expect=1, AIRFLOW_INFRA_HOME=str(home)).stdout
        )
    }
    assert results[victim.dir.name]["result"] == "ok"
    assert results[thief.dir.name]["result"] == "error" and "is claimed by projects" in results[thief.dir.name]["error"]


def test_the_backend_serves_a_name_claimed_twice_to_nobody_and_says_why_once(pair, tmp_path, caplog):
    victim, thief = pair
    reg = tmp_path / "projects.csv"
    register(reg, victim, thief)
    catalog = Catalog(reg, say=lambda m: logging.getLogger("airflow_infra.test").warning(m))
    v, t = victim.dir.name, thief.dir.name
    assert catalog.connection(f"{v}_postgres")[1]["login"] == f"{v}_etl"
    assert catalog.connection(f"{t}_postgres")[1]["login"] == f"{t}_etl"
    assert catalog.variable(f"{v}_workfiles_url")[0] == v

    with_conn_id(thief, f"{v}_postgres")
    with caplog.at_level(logging.WARNING):
        assert catalog.connection(f"{v}_postgres") is None  # neither the victim's nor the thief's database
    assert f"connection id '{v}_postgres' is claimed by projects {v} and {t}" in caplog.text
    assert catalog.variable(f"{v}_workfiles_url")[0] == v  # the victim's other names are still served


def test_one_bad_row_or_project_costs_its_own_names_only(pair, tmp_path, caplog):
    victim, thief = pair
    reg = tmp_path / "projects.csv"
    register(reg, victim, thief)
    v, t = victim.dir.name, thief.dir.name
    reg.write_text(reg.read_text() + "Bad Name,x,/nowhere,\nonly,two\n")
    (thief.dir / "airflow-infra.toml").write_text("[project\nname = broken\n")
    said: list[str] = []
    catalog = Catalog(reg, say=said.append)
    assert catalog.connection(f"{v}_postgres")[1]["login"] == f"{v}_etl"
    assert catalog.connection(f"{t}_postgres") is None
    assert any("line 4" in s and "Bad Name" in s for s in said) and any("line 5" in s for s in said)
    assert any(f"project {t}" in s and "its names are not served" in s for s in said)


def test_a_name_ending_in_a_newline_is_refused_and_the_registry_stays_readable(tmp_path):
    reg = tmp_path / "projects.csv"
    run("projects", "add", "alpha", str(tmp_path), "--registry", str(reg))
    refused = run("projects", "add", "beta\n", str(tmp_path / "b"), "--registry", str(reg), expect=1)
    assert "is not a valid project name" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert [e["project"] for e in json.loads(run("projects", "list", "--json", "--registry", str(reg)).stdout)] == [
        "alpha"
    ]


def test_a_secret_of_another_project_is_never_overwritten_or_deleted(make_cli, moto_endpoint):
    import boto3

    victim, thief = make_cli(), make_cli()
    for c in (victim, thief):
        c("up")
    v = victim.dir.name
    victim("connections", "push", "--to", "aws-secrets-manager")
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    name = f"airflow/connections/{v}_postgres"
    original = sm.get_secret_value(SecretId=name)["SecretString"]

    with_conn_id(thief, f"{v}_postgres")
    refused = thief("connections", "push", "--to", "aws-secrets-manager", expect=1)
    [line] = refused.stderr.strip().splitlines()
    assert f"Secrets Manager secret {name} belongs to project {v} (dev)" in line and "nothing was pushed" in line
    assert sm.get_secret_value(SecretId=name)["SecretString"] == original
    assert not sm.list_secrets(Filters=[{"Key": "name", "Values": [f"airflow/variables/{thief.dir.name}"]}])[
        "SecretList"
    ]

    # a secret the thief pushed as its own, whose tags now name the victim: its destroy leaves it
    own = make_cli()
    own("up")
    own("connections", "push", "--to", "aws-secrets-manager")
    mine = f"airflow/connections/{own.dir.name}_postgres"
    sm.tag_resource(SecretId=mine, Tags=[{"Key": "Project", "Value": v}])
    gone = own("destroy", "--auto-approve")
    assert f"Secrets Manager secret {mine} belongs to project {v}" in gone.stderr and "not deleted" in gone.stderr
    assert not sm.describe_secret(SecretId=mine).get("DeletedDate")


def test_the_connection_a_urls_credentials_make_is_its_rows_own(make_cli, tmp_path):
    """A row whose URL holds credentials claims `<project>_git` by itself (no Config needed); another
    project's config naming it makes it no one's."""
    other = make_cli()
    other("up")
    reg = tmp_path / "projects.csv"
    reg.write_text("Project,Repo,URL,Config\naa,aa,https://aauser:AATOKEN@github.com/org/aa.git,\n")
    catalog = Catalog(reg, say=lambda m: None)
    assert catalog.connection("aa_git") == (
        "aa",
        {"conn_type": "git", "host": "https://github.com/org/aa.git", "login": "aauser", "password": "AATOKEN"},
    )
    with_conn_id(other, "aa_git")
    reg.write_text(reg.read_text() + f"{other.dir.name},x,{other.dir},{other.dir}/airflow-infra.toml\n")
    assert catalog.connection("aa_git") is None
    assert Catalog(reg, say=lambda m: None).owner("connection id", "aa_git") is None


def test_a_dag_file_is_its_projects_by_the_innermost_folder_that_holds_it(tmp_path, airflow_python):
    """A working tree holding `.airflow-infra/revisions/<other>/` is still its own project's, and so is a
    bundle's clone of it; only Airflow's own DAG folder's revisions are `dags sync`'s."""
    script = f"""
import json
from pathlib import Path
from airflow_infra.airflow.secrets import _project_of
root = Path({str(tmp_path)!r})
roots = sorted([(root / "evil", "evil"), (root / "aa", "aa"), (root / "storage" / "evil", "evil"),
                (root / "storage" / "aa", "aa"), (root / "dags" / ".airflow-infra" / "revisions" / "aa", "aa")],
               key=lambda r: len(r[0].parts), reverse=True)
print(json.dumps([_project_of(str(root / p), roots) for p in (
    "evil/.airflow-infra/revisions/aa/dag.py", "storage/evil/tracking_repo/.airflow-infra/revisions/aa/dag.py",
    "dags/.airflow-infra/revisions/aa/abc/dag.py", "aa/dags/x.py", "elsewhere/x.py")]))
"""
    out = subprocess.run([str(airflow_python), "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["evil", "evil", "aa", "aa", None]


def test_a_database_a_name_spelled_otherwise_or_another_projects_config_is_a_second_claim(pair, tmp_path, home):
    victim, thief = pair
    v, t = victim.dir.name, thief.dir.name
    reg = tmp_path / "projects.csv"
    env = {"AIRFLOW_INFRA_HOME": str(home)}
    run(
        "projects",
        "add",
        v,
        str(victim.dir),
        "--config",
        f"{victim.dir}/airflow-infra.toml",
        "--registry",
        str(reg),
        **env,
    )
    toml = thief.dir / "airflow-infra.toml"
    original = toml.read_text()

    def refused(extra: str, config: Path = toml) -> str:
        toml.write_text(original + extra)
        proc = run(
            "projects", "add", t, str(thief.dir), "--config", str(config), "--registry", str(reg), expect=1, **env
        )
        [line] = proc.stderr.strip().splitlines()
        return line

    toml.write_text(original.replace("[database]\n", f'[database]\nname = "{v}"\n'))
    original = toml.read_text()
    assert f"database '{v}' is claimed by projects {v} and {t}" in refused("")
    toml.write_text(original.replace(f'name = "{v}"\n', "", 1) if "[database]" in original else original)
    original = toml.read_text()
    upper = f"{v.upper()}_POSTGRES"  # one name for Airflow's environment backend: AIRFLOW_CONN_<ID>
    assert f"is claimed by projects {v} and {t}" in refused(f'\n[airflow]\nbucket_conn_id = "{upper}"\n')
    line = refused("", config=victim.dir / "airflow-infra.toml")  # the victim's own config under the thief's row
    assert f"is claimed by projects {v} and {t}" in line
    assert [e["project"] for e in json.loads(run("projects", "list", "--json", "--registry", str(reg)).stdout)] == [v]
