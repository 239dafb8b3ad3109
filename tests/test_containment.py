"""The containment rule (invariant 6): every place that holds data or state is a location; no location
lies inside or around another that it must not, and a prefix follows the rules of a bucket."""

from __future__ import annotations

import uuid

import pytest
from conftest import SERVER, Cli

LOCAL = '[project]\nname = "{name}"\n[bucket]\n{extra}\n'


def _local(cli: Cli, extra: str) -> Cli:
    (cli.dir / "airflow-infra.toml").write_text(LOCAL.format(name=cli.dir.name, extra=extra))
    return cli


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "unexpected" not in stderr and "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    "extra, names",
    [
        ('path = "{home}/backups"', ["the backup location", "the bucket"]),
        ('path = "{home}"', ["the bucket {home}"]),
        ('path = "b"\nbackup = "b/kept"', ["[bucket] backup", "the bucket"]),
        ('backup = "{home}/buckets/{name}"', ["[bucket] backup", "the bucket"]),
        ('path = "."', ["the state", "the bucket"]),
        ('path = "{home}/postgres/x"', ["the local server's data directory"]),
    ],
)
def test_overlapping_locations_are_refused_before_anything_is_made(cli, extra, names):
    home, name = cli.home, cli.dir.name
    _local(cli, extra.format(home=home, name=name))
    for command in (("plan",), ("up",), ("destroy", "--auto-approve", "--force-delete-data")):
        line = _one_line(cli(*command, expect=1).stderr)
        for word in names:
            assert word.format(home=home) in line, line
        assert "nothing was changed" in line
    assert not (cli.dir / ".airflow-infra").exists()


def test_a_link_to_the_backups_is_the_backups(cli, tmp_path):
    link = tmp_path / f"link-{uuid.uuid4().hex[:6]}"
    link.symlink_to(cli.home / "backups")
    _local(cli, f'path = "{link}"')
    assert "the backup location" in _one_line(cli("plan", expect=1).stderr)


def test_the_local_target_honours_its_backup_location(cli, tmp_path):
    kept = tmp_path / "kept-here"
    _local(cli, f'backup = "{kept}"')
    cli("up")
    bucket = cli.outputs()["bucket_path"]
    with open(f"{bucket}/f.csv", "w") as f:
        f.write("a,b\n")
    done = cli("destroy", "--auto-approve", "--force-delete-data")
    written = [ln.split(": ", 1)[1] for ln in done.stdout.splitlines() if ln.startswith("Backup written: ")]
    assert written and all(w.startswith(str(kept)) for w in written)


@pytest.mark.parametrize(
    "extra, key", [('prefix = "x"', "prefix"), ('sse = "AES256"', "sse"), ('endpoint_url = "http://x"', "endpoint_url")]
)
def test_settings_the_local_target_never_reads_are_refused(cli, extra, key):
    _local(cli, extra)
    line = _one_line(cli("plan", expect=1).stderr)
    assert f"[bucket] {key} is not used by the local target" in line
    (cli.dir / "airflow-infra.toml").write_text(
        LOCAL.format(name=cli.dir.name, extra="") + '[database]\nadmin_dsn_env = "X"\n[aws.rds]\nport = 6543\n'
    )
    assert "[database] admin_dsn_env is not used by the local target" in _one_line(cli("plan", expect=1).stderr)


def test_an_empty_folder_or_a_link_is_content_planned_and_backed_up(cli, tmp_path):
    cli("up")
    bucket = cli.outputs()["bucket_path"]
    import os

    os.mkdir(f"{bucket}/empty")
    os.symlink(tmp_path, f"{bucket}/link")
    refused = cli("destroy", "--auto-approve", expect=1)
    assert "holds 2 entries" in refused.stderr
    assert os.path.isdir(bucket)  # nothing was destroyed half-way
    cli("destroy", "--auto-approve", "--force-delete-data")
    assert not os.path.exists(bucket) and tmp_path.exists()


def test_a_bucket_inside_another_projects_bucket_is_never_emptied_with_it(make_cli):
    a, b = make_cli(), make_cli()
    _local(a, "")
    a("up")
    a_bucket = a.outputs()["bucket_path"]
    import os
    import shutil

    # B's bucket inside A's, made while A's marker was away (as a hand could)
    marker = f"{a_bucket}/.airflow-infra-bucket"
    shutil.move(marker, marker + ".away")
    _local(b, f'path = "{a_bucket}/b"')
    b("up")
    shutil.move(marker + ".away", marker)
    with open(f"{a_bucket}/b/data.csv", "w") as f:
        f.write("b's\n")
    line = _one_line(a("destroy", "--auto-approve", "--force-delete-data", expect=1).stderr)
    assert f"{a_bucket}/b is the bucket of project {b.dir.name}" in line and "nothing was deleted" in line
    assert os.path.exists(f"{a_bucket}/b/data.csv")


# -- S3: a prefix follows a bucket's rules -------------------------------------------------------------


def _server(cli: Cli, bucket_extra: str) -> Cli:
    (cli.dir / "airflow-infra.toml").write_text(SERVER.format(name=cli.dir.name, bucket_extra=bucket_extra))
    return cli


@pytest.fixture
def shared(s3):
    name = "shared-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name)
    return name


def test_an_unmarked_prefix_holding_objects_is_foreign(make_cli, moto_endpoint, admin_dsn, s3, shared):
    s3.put_object(Bucket=shared, Key="team/theirs.csv", Body=b"someone's")
    cli = _server(make_cli(), f'name = "{shared}"\nprefix = "team"\ntls_only = false')
    plan = cli("plan", expect=None)
    assert "not made by airflow-infra, and it holds objects" in plan.stdout + plan.stderr
    refused = cli("apply", "--auto-approve", expect=1)
    assert "s3_prefix.workfiles" in refused.stderr
    assert s3.get_object(Bucket=shared, Key="team/theirs.csv")["Body"].read() == b"someone's"
    assert "Contents" not in s3.list_objects_v2(Bucket=shared, Prefix="team/.airflow-infra")


def test_a_prefix_inside_another_projects_prefix_or_bucket_is_refused(make_cli, moto_endpoint, admin_dsn, s3, shared):
    a = _server(make_cli(), f'name = "{shared}"\nprefix = "team"\ntls_only = false')
    a("apply", "--auto-approve")
    b = _server(make_cli(), f'name = "{shared}"\nprefix = "team/b"\ntls_only = false')
    plan = b("apply", "--auto-approve", expect=1)
    assert f"inside s3://{shared}/team/, made by project {a.dir.name}" in plan.stdout + plan.stderr
    assert "Contents" not in s3.list_objects_v2(Bucket=shared, Prefix="team/b/")

    owner = _server(make_cli(), "tls_only = false")
    owner("apply", "--auto-approve")
    own_bucket = f"{owner.dir.name}-dev-workfiles"
    c = _server(make_cli(), f'name = "{own_bucket}"\nprefix = "c"\ntls_only = false')
    refused = c("apply", "--auto-approve", expect=1)
    assert f"the bucket {own_bucket!r}, made by project {owner.dir.name}" in refused.stdout + refused.stderr


def test_destroy_never_empties_a_prefix_another_project_marked_inside(make_cli, moto_endpoint, admin_dsn, s3, shared):
    b = _server(make_cli(), f'name = "{shared}"\nprefix = "team/b"\ntls_only = false')
    b("apply", "--auto-approve")
    s3.put_object(Bucket=shared, Key="team/b/rows.csv", Body=b"b's rows")
    a = _server(make_cli(), f'name = "{shared}"\nprefix = "team"\ntls_only = false')
    # A adopts the enclosing prefix on purpose; its destroy must still leave B's alone
    a("import", "s3_prefix.workfiles", shared)
    a("apply", "--auto-approve", expect=None)
    line = a("destroy", "--auto-approve", "--force-delete-data", expect=1).stderr
    assert (
        f"team/b/.airflow-infra marks a prefix made by project {b.dir.name}" in line and "nothing was deleted" in line
    )
    assert s3.get_object(Bucket=shared, Key="team/b/rows.csv")["Body"].read() == b"b's rows"


def test_a_state_key_under_the_projects_own_prefix_is_refused(make_cli, moto_endpoint, admin_dsn, s3, shared):
    cli = _server(make_cli(), f'name = "{shared}"\nprefix = "team"\ntls_only = false')
    with open(cli.dir / "airflow-infra.toml", "a") as f:
        f.write(f'[state]\nbackend = "s3"\nbucket = "{shared}"\nkey = "team/state.json"\n')
    line = _one_line(cli("plan", expect=1).stderr)
    assert "the state ([state] key)" in line and f"s3://{shared}/team/" in line


def test_a_postgres_state_inside_the_projects_own_database_is_refused(cli):
    import json

    _local(cli, "")
    cli("up")
    port = json.loads((cli.home / "postgres" / "server.json").read_text())["port"]
    with open(cli.dir / "airflow-infra.toml", "a") as f:
        f.write('[state]\nbackend = "postgres"\n')
    import socket

    for host in ("localhost", "LOCALHOST", "127.1", "0.0.0.0", "[::ffff:127.0.0.1]", socket.gethostname()):
        dsn = f"postgresql://someone:s3cr3tPw@{host}:{port}/{cli.dir.name}"
        line = _one_line(cli("plan", expect=1, AIRFLOW_INFRA_STATE_DSN=dsn).stderr)
        assert "the state ([state] dsn_env)" in line and "the project's database" in line and "s3cr3tPw" not in line
    # nor moved there: state migrate follows the same rule
    (cli.dir / "airflow-infra.toml").write_text(LOCAL.format(name=cli.dir.name, extra=""))
    moved = cli("state", "migrate", "--to", "postgres", expect=1, AIRFLOW_INFRA_STATE_DSN=dsn)
    assert "the project's database" in _one_line(moved.stderr)
    other = f"postgresql://someone:s3cr3tPw@localhost:{port}/postgres"
    assert "the project's database" not in cli("plan", expect=None, AIRFLOW_INFRA_STATE_DSN=other).stderr


def test_a_backup_into_another_projects_prefix_is_refused(make_cli, moto_endpoint, admin_dsn, s3, shared):
    b = _server(make_cli(), f'name = "{shared}"\nprefix = "team/b"\ntls_only = false')
    b("apply", "--auto-approve")
    a = _server(
        make_cli(), f'name = "{shared}"\nprefix = "team/a"\ntls_only = false\nbackup = "s3://{shared}/team/b/backups"'
    )
    a("apply", "--auto-approve")
    s3.put_object(Bucket=shared, Key="team/a/rows.csv", Body=b"a's rows")
    line = _one_line(a("destroy", "--auto-approve", "--force-delete-data", expect=1).stderr)
    assert f"lies inside s3://{shared}/team/b/, made by project {b.dir.name}" in line and "nothing was deleted" in line
    assert s3.get_object(Bucket=shared, Key="team/a/rows.csv")["Body"].read() == b"a's rows"
    assert "Contents" not in s3.list_objects_v2(Bucket=shared, Prefix="team/b/backups")


def test_import_follows_the_containment_rule(cli):
    """Adopting a place is making it ours: `import` of the home as a bucket is refused like a plan."""
    _local(cli, f'path = "{cli.home}"')
    line = _one_line(cli("import", "local_bucket.workfiles", str(cli.home), expect=1).stderr)
    assert "the bucket" in line and "nothing was changed" in line
    assert not (cli.home / ".airflow-infra-bucket").exists()


def test_a_prefix_destroyed_and_made_again_is_ours_again(make_cli, moto_endpoint, admin_dsn, s3, shared):
    """What a plain destroy leaves of a prefix on a versioned bucket (its marker's old version and a delete
    marker) is not someone's objects: `up` makes it again."""
    s3.put_bucket_versioning(Bucket=shared, VersioningConfiguration={"Status": "Enabled"})
    cli = _server(make_cli(), f'name = "{shared}"\nprefix = "team"\ntls_only = false')
    cli("apply", "--auto-approve")
    cli("destroy", "--auto-approve")  # leaves the marker's old version under a delete marker
    cli("apply", "--auto-approve")
    assert s3.get_object(Bucket=shared, Key="team/.airflow-infra")["Body"].read()
