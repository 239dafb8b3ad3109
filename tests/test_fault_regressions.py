"""The sequences the fault-injection harness (test_fault_harness.py) found, shrunk, kept as regression
tests: each failed on the main of 2026-12-07 and passes now."""

from __future__ import annotations

import json
import signal
import time

import pytest


def test_a_bucket_at_the_homes_backups_never_takes_its_backups_along(cli):
    """configure(paths=('HOME/backups', None)); destroy(force=True): the backups went with the bucket."""
    (cli.dir / "airflow-infra.toml").write_text(
        f'[project]\nname = "{cli.dir.name}"\n[bucket]\npath = "{cli.home}/backups"\n'
    )
    refused = cli("up", expect=1)
    assert "the backup location" in refused.stderr and refused.stderr.count("\n") == 1
    assert not (cli.dir / ".airflow-infra" / "state.json").exists()


def test_a_run_stopped_and_force_unlocked_writes_nothing_when_it_goes_on(cli):
    """pause(delay, second='apply'): the stopped run, resumed after force-unlock and another run, adopted
    what the other made and wrote its state; a failed step printed a line of its own on stderr too."""
    cli("up")
    cli("destroy", "--auto-approve")
    lock = cli.dir / ".airflow-infra" / "state.lock"
    first = cli.popen("apply", "--auto-approve")
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.002)
    first.send_signal(signal.SIGSTOP)
    try:
        cli("force-unlock", json.loads(lock.read_text())["ID"])
        cli("apply", "--auto-approve")
        serial = cli.state()["serial"]
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=120)
    assert cli.state()["serial"] == serial  # whatever the resumed run did, it wrote no state
    if first.returncode != 0:
        assert "the lock was taken from this run" in err and err.count("\n") == 1, err
    cli("plan", "--detailed-exitcode")


def test_a_session_the_server_ended_is_said_without_libpqs_unexpectedly(superuser, server):
    """A paused run resumed after another dropped its database: libpq's "server closed the connection
    unexpectedly" ended in a line that read like our catch-all's."""
    from airflow_infra.errors import ProviderError
    from airflow_infra.pgerrors import translated

    conn = server.connect("postgres")
    pid = conn.info.backend_pid
    with superuser() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(ProviderError) as exc, translated("postgres_database.main: read"):
        conn.execute("SELECT 1")
    assert "unexpected" not in str(exc.value) and "run the command again" in str(exc.value)


def test_a_run_stopped_holding_the_secret_stores_lock_blocks_nobody_for_ever(cli, tmp_path):
    """pause(...) then the next example's `up` hung: a run stopped inside the secret store's read-modify-write
    held its file lock, and every later run waited on it without bound (invariant 3: every wait is bounded)."""
    import subprocess
    import sys

    cli("up")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pathlib import Path; from airflow_infra.flock import exclusive\n"
                f"with exclusive(Path({str(cli.home)!r}) / '.secrets.lock'):\n"
                "    print('held', flush=True); time.sleep(120)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        holder.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        refused = cli("rotate", expect=1)
        assert time.monotonic() - started < 60
        assert "the secret store's lock" in refused.stderr and refused.stderr.count("\n") == 1
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.kill()
        holder.wait()
    cli("rotate")


def test_a_backup_waits_for_a_tables_lock_no_longer_than_the_lock_timeout(cli):
    """pause(p='s', second='destroy'): the destroy's pg_dump waited without bound on a table a stopped run
    held locked (invariant 3: database lock waits included)."""
    from conftest import connect_as

    cli("up")
    out = cli.outputs()
    with connect_as(out, "etl") as etl:
        etl.execute("CREATE TABLE raw.t AS SELECT 1 AS id")
    with connect_as(out, "etl") as holder:
        holder.autocommit = False
        holder.execute("LOCK TABLE raw.t IN ACCESS EXCLUSIVE MODE")  # held, as by a run that is stopped
        started = time.monotonic()
        refused = cli("--lock-timeout", "2s", "destroy", "--auto-approve", "--force-delete-data", expect=1)
        assert time.monotonic() - started < 30
        assert "timeout" in refused.stderr and "nothing was deleted" in refused.stderr
        assert refused.stderr.count("\n") == 1
        holder.rollback()
    with connect_as(out, "etl") as etl:
        assert etl.execute("SELECT count(*) FROM raw.t").fetchone()[0] == 1


def test_a_login_stopped_half_way_keeps_destroy_waiting_no_longer_than_the_lock_timeout(cli):
    """pause(p='s', second='destroy') after force-unlock: the stopped apply's password probes were logging
    in; DROP DATABASE ... WITH (FORCE) waited for them (a ProcSignalBarrier, no lock) until the server's
    authentication_timeout, a minute, past any --lock-timeout."""
    import socket
    import struct

    from conftest import connect_as

    cli("up")
    out = cli.outputs()
    with connect_as(out, "etl") as etl:
        etl.execute("CREATE TABLE raw.t AS SELECT 1 AS id")
    stalled = socket.create_connection(("127.0.0.1", int(out["postgres_port"])))
    try:  # a startup packet, then silence after the server's password challenge: a client stopped there
        body = struct.pack("!i", 196608) + f"user\0{out['etl_user']}\0database\0postgres\0\0".encode()
        stalled.sendall(struct.pack("!i", len(body) + 4) + body)
        stalled.recv(1)
        started = time.monotonic()
        refused = cli("--lock-timeout", "3s", "destroy", "--auto-approve", "--force-delete-data", expect=1)
        assert time.monotonic() - started < 20, "destroy waited for the stopped login"
        assert "a client has been logging in" in refused.stderr and "nothing was dropped" in refused.stderr
        assert refused.stderr.count("\n") == 1, refused.stderr
        with connect_as(out, "etl") as etl:  # the database and its rows are there
            assert etl.execute("SELECT count(*) FROM raw.t").fetchone()[0] == 1
    finally:
        stalled.close()
    cli("destroy", "--auto-approve", "--force-delete-data")  # the login gone, destroy goes through
