"""Only ours (the invariants of docs/architecture.md): what another project, environment or state made is never taken over,
and plan lists every such conflict at once, with the import line that takes one on purpose."""

from __future__ import annotations

import json
import shutil

from conftest import Cli


def test_another_projects_bucket_path_is_never_adopted_nor_deleted(make_cli):
    a, b = make_cli(), make_cli()
    a("up")
    bucket = a.outputs()["bucket_path"]
    with open(f"{bucket}/data.csv", "w") as f:
        f.write("a's data\n")
    (b.dir / "airflow-infra.toml").write_text(f'[project]\nname = "{b.dir.name}"\n[bucket]\npath = "{bucket}"\n')
    refused = b("plan", expect=1)
    assert f"local_bucket.workfiles: '{bucket}' exists, made by project {a.dir.name}, environment dev" in refused.stderr
    assert f"airflow-infra import local_bucket.workfiles {bucket}" in refused.stderr
    b("apply", "--auto-approve", "--force-delete-data", expect=1)
    b("destroy", "--auto-approve", "--force-delete-data")
    with open(f"{bucket}/data.csv") as f:
        assert f.read() == "a's data\n"
    a("plan", "--detailed-exitcode")  # still a's, untouched


def test_a_copied_project_folder_is_refused(make_cli, tmp_path):
    a = make_cli()
    a("up")
    copy = tmp_path / "copy_of_a"
    shutil.copytree(a.dir, copy)
    config = copy / "airflow-infra.toml"
    config.write_text(config.read_text().replace(a.dir.name, "copy_of_a"))
    b = Cli(copy, a.home)
    before = (copy / ".airflow-infra" / "state.json").read_text()
    for args in (
        ("plan",),
        ("apply", "--auto-approve"),
        ("destroy", "--auto-approve", "--force-delete-data"),
        ("output",),
    ):
        proc = b(*args, expect=1)
        assert f"the state belongs to project {a.dir.name}, environment dev, not to project copy_of_a" in proc.stderr
        assert proc.stderr.count("\n") == 1
    assert (copy / ".airflow-infra" / "state.json").read_text() == before
    a("plan", "--detailed-exitcode")


def test_the_same_project_with_a_new_state_lists_every_conflict_and_adopts_nothing(make_cli, tmp_path):
    """A copy with the same name and environment (or a lost state): every resource is another
    state's; plan names them all at once, each with its import line, and apply changes nothing."""
    a = make_cli()
    a("up")
    copy = tmp_path / "same_name"
    shutil.copytree(a.dir, copy, ignore=shutil.ignore_patterns(".airflow-infra"))
    b = Cli(copy, a.home)
    proc = b("plan", expect=1)
    addresses = a("state", "list").stdout.split()
    assert len(addresses) == 8
    for address in addresses:
        assert f"Conflict: {address}: " in proc.stdout and f"airflow-infra import {address} " in proc.stderr
    assert "state lineage" in proc.stderr and proc.stderr.count("\n") == 1
    b("apply", "--auto-approve", expect=1)
    assert not (copy / ".airflow-infra" / "state.json").exists()
    a("plan", "--detailed-exitcode")


def test_an_older_releases_marker_is_rewritten_for_a_recorded_resource(cli, superuser, name):
    """Markers from before lineages (`project P (E)`) are ours only where the state records the
    resource; plan shows them as unmarked and apply writes the full marker."""
    cli("up")
    with superuser() as conn:
        conn.execute(f"COMMENT ON ROLE {name}_reader IS 'managed by airflow-infra: project {name} (dev)'")
    plan = cli("plan", "--detailed-exitcode", expect=2).stdout
    assert "~ postgres_role.reader" in plan and "marked: false -> true" in plan
    cli("apply", "--auto-approve")
    with superuser() as conn:
        comment = conn.execute(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", (f"{name}_reader",)
        ).fetchone()[0]
    assert comment == (
        f"managed by airflow-infra: project {name}, environment dev, state lineage {cli.state()['lineage']}"
    )
    cli("plan", "--detailed-exitcode")


def test_a_pending_create_adopts_only_what_it_names(make_cli, superuser):
    """Found by a hostile review: a `pending` entry in a state (made by hand, or of an older config)
    must not turn someone else's unmarked role into ours unless it names that very role."""
    b = make_cli()
    b("init")
    name = b.dir.name
    with superuser() as conn:
        conn.execute(f"CREATE ROLE {name}_etl LOGIN PASSWORD 'theirs'")
    try:
        (b.dir / ".airflow-infra").mkdir()
        (b.dir / ".airflow-infra" / "state.json").write_text(
            json.dumps(
                {
                    "version": 1,
                    "serial": 1,
                    "lineage": "11111111-2222-3333-4444-555555555555",
                    "resources": [],
                    "project": name,
                    "environment": "dev",
                    "pending": {"postgres_role.etl": "someone_else"},
                }
            )
        )
        refused = b("plan", expect=1)
        assert f"Conflict: postgres_role.etl: '{name}_etl' exists, not made by airflow-infra" in refused.stdout
        assert "Nothing else to change" not in refused.stdout and "+ postgres_role.owner" in refused.stdout
    finally:
        with superuser() as conn:
            conn.execute(f"DROP ROLE {name}_etl")


def test_a_bucket_inside_another_projects_bucket_is_a_conflict(make_cli):
    a, b = make_cli(), make_cli()
    a("up")
    bucket = a.outputs()["bucket_path"]
    (b.dir / "airflow-infra.toml").write_text(f'[project]\nname = "{b.dir.name}"\n[bucket]\npath = "{bucket}/nested"\n')
    refused = b("plan", expect=1)
    assert f"inside the bucket {bucket} (made by project {a.dir.name}" in refused.stdout
    b("apply", "--auto-approve", expect=1)
    assert not (shutil.os.path.exists(f"{bucket}/nested"))


def test_a_replacement_onto_another_directory_is_refused_before_anything_goes(cli, tmp_path):
    """A new [bucket] path that is someone's directory: plan shows the conflict; apply deletes nothing."""
    cli("up")
    old = cli.outputs()["bucket_path"]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "keep.csv").write_text("1\n")
    (cli.dir / "airflow-infra.toml").write_text(f'[project]\nname = "{cli.dir.name}"\n[bucket]\npath = "{theirs}"\n')
    refused = cli("plan", expect=1)
    assert f"Conflict: local_bucket.workfiles: '{theirs}' exists, not made by airflow-infra" in refused.stdout
    cli("apply", "--auto-approve", expect=1)
    assert shutil.os.path.isdir(old) and (theirs / "keep.csv").read_text() == "1\n"


def test_a_create_refused_as_foreign_leaves_no_pending_create(cli):
    """Found in review: a saved plan applied after someone else made the bucket's directory: the
    create is refused, and its pending entry goes with it, so the next plan does not adopt theirs."""
    cli("init")
    saved = str(cli.dir / "saved.plan")
    cli("plan", "--out", saved)
    theirs = cli.home / "buckets" / cli.dir.name
    theirs.mkdir(parents=True)
    (theirs / "theirs.csv").write_text("1\n")
    failed = cli("apply", saved, expect=1)
    assert "local_bucket.workfiles" in failed.stderr and "not made by airflow-infra" in failed.stderr
    assert "local_bucket.workfiles" not in cli.state().get("pending", {})
    refused = cli("plan", expect=1)
    assert f"Conflict: local_bucket.workfiles: '{theirs}' exists, not made by airflow-infra" in refused.stdout
    assert (theirs / "theirs.csv").read_text() == "1\n"


def test_another_environment_of_the_project_on_the_same_server_is_refused_and_never_told_to_import(make_cli, tmp_path):
    """dev and prod of one project on one PostgreSQL: the names carry no environment, so prod would be dev's
    roles and database. Refused at plan, saying why, without the import advice (taking them over merges the two)."""
    dev = make_cli()
    dev("up")
    prod_dir = tmp_path / "prod"
    shutil.copytree(dev.dir, prod_dir, ignore=shutil.ignore_patterns(".airflow-infra"))
    config = prod_dir / "airflow-infra.toml"
    config.write_text(config.read_text().replace('environment = "dev"', 'environment = "prod"'))
    prod = Cli(prod_dir, dev.home)
    for args in (("plan",), ("apply", "--auto-approve")):
        err = prod(*args, expect=1).stderr
        assert "made by this project's environment 'dev'" in err and "airflow-infra import" not in err
        assert "two environments of one project cannot share a server or bucket" in err
        assert "give environment 'prod' a server of its own" in err and err.count("\n") == 1
    assert not (prod_dir / ".airflow-infra" / "state.json").exists()
    dev("plan", "--detailed-exitcode")
