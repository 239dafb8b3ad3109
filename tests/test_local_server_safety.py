"""The local server's data directory is never removed or re-initialised (invariant 1).

Each test has a home and a server of its own: it damages the server's bookkeeping (server.json,
postmaster.pid) and checks that every row written before is still there, that no second server
runs, and that the data directory is the same one (inode and PG_VERSION unchanged).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Cli, connect_as

from airflow_infra.localserver.server import LocalServer


def _postmasters(data) -> list[int]:
    """Live postgres processes whose working directory is this data directory and whose parent is not one
    of them."""
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if (
                    os.readlink(f"/proc/{p}/cwd") == str(data.resolve())
                    and Path(f"/proc/{p}/comm").read_text().strip() == "postgres"
                ):
                    pids.append(int(p))
            except OSError:
                pass
    parents = {}
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                parents[p] = int(f.read().rsplit(")", 1)[1].split()[1])
        except FileNotFoundError:  # ended since it was listed
            continue
    return [p for p in parents if parents[p] not in parents]


@pytest.fixture
def project(fresh_home, tmp_path):
    """A project brought up in a home of its own, holding 100 rows."""
    d = tmp_path / "keepme"
    d.mkdir()
    cli = Cli(d, fresh_home)
    cli("up")
    out = cli.outputs()
    with connect_as(out, "etl") as etl:
        etl.execute("CREATE TABLE raw.rows AS SELECT g AS id FROM generate_series(1, 100) g")
    server = LocalServer(fresh_home)
    fingerprint = (os.stat(server.data).st_ino, (server.data / "PG_VERSION").read_text())
    return cli, server, fingerprint


def _intact(cli: Cli, server: LocalServer, fingerprint) -> None:
    assert (os.stat(server.data).st_ino, (server.data / "PG_VERSION").read_text()) == fingerprint
    assert len(_postmasters(server.data)) == 1
    with connect_as(cli.outputs(), "reader") as reader:
        assert reader.execute("SELECT count(*) FROM raw.rows").fetchone()[0] == 100


DAMAGE = {
    "removed": lambda p: p.unlink(),
    "emptied": lambda p: p.write_text(""),
    "corrupt": lambda p: p.write_text('{"port": "not a port", '),
    # valid, but not what the cluster says: trusted, it would point every client at the wrong port
    "wrong": lambda p: p.write_text(
        json.dumps(
            {**json.loads(p.read_text() or "{}"), "port": 54999, "bindir": "/nonexistent", "account": "nosuchuser"}
        )
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
def test_damaged_server_json_keeps_the_cluster(project, damage, running):
    cli, server, fingerprint = project
    port = server.port
    if not running:
        cli("local", "stop")
    for command in (
        ("plan", "--detailed-exitcode"),
        ("apply", "--auto-approve"),
        ("local", "status"),
        ("local", "start"),
    ):
        DAMAGE[damage](server.info_path)
        proc = cli(*command)
        assert "deleted" not in proc.stdout, proc.stdout
        assert json.loads(server.info_path.read_text())["port"] == port
        _intact(cli, server, fingerprint)
    assert "No changes." in cli("plan", "--detailed-exitcode").stdout


def test_stale_postmaster_pid_of_an_unrelated_process(project):
    """After a reboot postmaster.pid may name a pid that is now some other program."""
    cli, server, fingerprint = project
    cli("local", "stop")
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        lines = ["0"] * 8
        lines[0], lines[1], lines[3], lines[7] = str(sleeper.pid), str(server.data), str(server.port), "ready"
        (server.data / "postmaster.pid").write_text("\n".join(lines) + "\n")
        assert server.running_pid() is None
        assert "No changes." in cli("plan", "--detailed-exitcode").stdout
        assert server.running_pid() not in (None, sleeper.pid)
        assert sleeper.poll() is None  # left alone
        _intact(cli, server, fingerprint)
    finally:
        sleeper.kill()


def test_a_running_server_whose_postmaster_pid_was_removed_is_named(project):
    cli, server, fingerprint = project
    pid = server.running_pid()
    (server.data / "postmaster.pid").unlink()
    proc = cli("local", "start", expect=1)
    assert f"runs as pid {pid} but its postmaster.pid is gone" in proc.stderr and f"kill -INT {pid}" in proc.stderr
    os.kill(pid, signal.SIGINT)
    for _ in range(500):
        if not _postmasters(server.data):
            break
        subprocess.run(["sleep", "0.01"])
    cli("local", "start")
    _intact(cli, server, fingerprint)


def test_an_empty_data_directory_the_user_made_is_used_as_it_is(fresh_home, tmp_path):
    """e.g. a link to a bigger disk"""
    disk = fresh_home / "bigdisk"
    disk.mkdir()
    (fresh_home / "postgres").mkdir()
    os.symlink(disk, fresh_home / "postgres" / "data")
    d = tmp_path / "ondisk"
    d.mkdir()
    Cli(d, fresh_home)("up")
    assert (disk / "PG_VERSION").is_file() and (fresh_home / "postgres" / "data").is_symlink()


def test_a_process_that_only_works_in_the_data_directory_is_not_the_server(project):
    """A shell cd'd into the data directory, its pid left in postmaster.pid by a reboot: not the
    server (pg_ctl stop would signal it), and not an orphan postmaster that blocks the start."""
    cli, server, fingerprint = project
    cli("local", "stop")
    sleeper = subprocess.Popen(["sleep", "300"], cwd=server.data)
    try:
        lines = ["0"] * 8
        lines[0], lines[1], lines[3], lines[7] = str(sleeper.pid), str(server.data), str(server.port), "ready"
        (server.data / "postmaster.pid").write_text("\n".join(lines) + "\n")
        assert server.running_pid() is None
        cli("local", "start")
        assert server.running_pid() not in (None, sleeper.pid) and sleeper.poll() is None
        _intact(cli, server, fingerprint)
    finally:
        sleeper.kill()


def test_a_non_empty_data_directory_without_a_cluster_is_refused(fresh_home, tmp_path):
    data = fresh_home / "postgres" / "data"
    data.mkdir(parents=True)
    (data / "precious.txt").write_text("not a cluster, but not ours to remove")
    d = tmp_path / "proj"
    d.mkdir()
    proc = Cli(d, fresh_home)("up", expect=1)
    assert "holds no PostgreSQL cluster" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert (data / "precious.txt").read_text() == "not a cluster, but not ours to remove"


def test_an_interrupted_initdb_leaves_nothing_that_looks_like_a_cluster(fresh_home, tmp_path):
    """initdb writes into data.initdb and renames it when complete: kill it and start again."""
    server = LocalServer(fresh_home)
    code = (
        "import sys; from pathlib import Path; from airflow_infra.localserver.server import LocalServer; "
        "LocalServer(Path(sys.argv[1])).start()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(fresh_home)], start_new_session=True)
    staging = server.dir / "data.initdb"
    for _ in range(2000):
        if (staging / "base").exists() or server.has_cluster():
            break
        subprocess.run(["sleep", "0.005"])
    os.killpg(proc.pid, signal.SIGKILL)  # initdb with it
    proc.wait()
    if not server.has_cluster():
        assert not server.data.exists() and server.info() is None
    server.start()
    assert server.has_cluster() and server.running_pid() is not None
    assert not staging.exists()


def test_server_environment_holds_none_of_the_callers_secrets(fresh_home, tmp_path):
    d = tmp_path / "envcheck"
    d.mkdir()
    cli = Cli(d, fresh_home)
    cli(
        "local",
        "start",
        AWS_SECRET_ACCESS_KEY="caller-aws-secret-123",
        AIRFLOW_INFRA_ADMIN_DSN="postgresql://admin:caller-dsn-secret-456@db/postgres",
        PGPASSWORD="caller-pg-secret-789",
    )
    pid = LocalServer(fresh_home).running_pid()
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    for secret in (b"caller-aws-secret-123", b"caller-dsn-secret-456", b"caller-pg-secret-789"):
        assert secret not in environ
    assert b"AWS_" not in environ and b"AIRFLOW_INFRA" not in environ


def test_only_the_user_reads_buckets_backups_and_secrets(cli, home):
    """As another OS user (nobody), a bucket file, a backup and the secrets file cannot be read."""
    cli("up")
    bucket = Path(cli.outputs()["bucket_path"])
    (bucket / "data.csv").write_text("private rows\n")
    os.chmod(bucket, 0o755)  # as an earlier release made it: plan shows it, apply repairs it
    assert "private" in cli("plan").stdout
    cli("apply", "--auto-approve")
    done = cli("destroy", "--auto-approve", "--force-delete-data")
    backups = [line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("Backup written: ")]
    cli("up")
    (bucket / "data.csv").write_text("private rows\n")
    secrets = home / "secrets.json"
    for path in (bucket / "data.csv", *map(Path, backups), secrets):
        assert path.exists()
        if os.geteuid() == 0:
            proc = subprocess.run(["cat", str(path)], user="nobody", capture_output=True, text=True)
            assert proc.returncode != 0 and "Permission denied" in proc.stderr, path
        else:
            assert all(os.stat(p).st_mode & 0o077 == 0 for p in (path, path.parent) if p != home), path


def test_the_service_unit_starts_and_stops_the_server_as_systemd_would(fresh_home, tmp_path):
    """`local install-service --print`: the unit's ExecStart and ExecStop lines, run as systemd runs them
    (its Environment, no shell), start and stop the server; installing where systemd does not run is
    refused in one line with nothing written."""
    import shlex

    fresh_home.chmod(0o711)
    cli = Cli(tmp_path, fresh_home)
    text = cli("local", "install-service", "--print", "--scope", "system").stdout
    lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert lines["Type"] == "oneshot" and lines["RemainAfterExit"] == "yes" and lines["WantedBy"] == "multi-user.target"
    env = dict([shlex.split(lines["Environment"])[0].split("=", 1)])
    assert env == {"AIRFLOW_INFRA_HOME": str(fresh_home)}
    server = LocalServer(fresh_home)
    for step, running in (("ExecStart", True), ("ExecStop", False)):
        subprocess.run(
            shlex.split(lines[step]),
            env={"PATH": os.environ["PATH"], **env},
            check=True,
            capture_output=True,
            timeout=300,
        )
        assert (server.running_pid() is not None) is running
    if not Path("/run/systemd/system").is_dir():  # this machine: no systemd running
        proc = cli("local", "install-service", "--scope", "user", expect=1, XDG_CONFIG_HOME=str(tmp_path / "config"))
        assert proc.stderr.startswith("Error: systemd does not run on this machine") and proc.stderr.count("\n") == 1
        assert not (tmp_path / "config").exists()
