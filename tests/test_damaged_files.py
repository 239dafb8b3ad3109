"""Every file airflow-infra keeps, damaged every way a disk, a crash or a hand can damage it: no input
ends in "unexpected ..." (an exception the CLI did not expect is a bug), every failure is one line,
and nothing is changed behind the damage (invariant 4)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import Cli

DAMAGES = ["missing", "empty", "folder", "dangling link", "fifo", "wrong shape", "wrong types", "truncated"]


def damage(path: Path, how: str) -> None:
    original = path.read_bytes() if path.is_file() else b"{}"
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if how == "empty":
        path.write_bytes(b"")
    elif how == "folder":
        path.mkdir()
    elif how == "dangling link":
        path.symlink_to("/nonexistent/airflow-infra")
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "wrong shape":
        path.write_text('["a", "list", "not", "an", "object"]')
    elif how == "wrong types":  # lists, nulls, numbers too big for any integer
        doc = json.loads(original) if original.strip().startswith(b"{") else {"pid": 1, "port": 2}
        path.write_text(
            "{" + ", ".join(f'"{k}": {["[null]", "1e999", str(10**20)][i % 3]}' for i, k in enumerate(doc)) + "}"
        )
    elif how == "truncated":  # cut short, and bytes that are not UTF-8 in front
        path.write_bytes(b"\xff\xfe" + original[: max(1, len(original) // 2)])


def restore(path: Path, saved: tuple[bytes, os.stat_result] | None) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if saved is not None:
        path.write_bytes(saved[0])
        os.chown(path, saved[1].st_uid, saved[1].st_gid)  # postmaster.pid is the server account's
        os.chmod(path, saved[1].st_mode & 0o777)


def assert_no_surprise(proc) -> None:
    out = proc.stdout + proc.stderr
    assert "unexpected" not in out and "Traceback" not in out, out
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
        assert len(errors) == 1 and proc.returncode in (1, 2), proc.stderr


@pytest.fixture(scope="module")
def damaged_project(tmp_path_factory):
    """A project up on a server of its own (postmaster.pid is damaged too: never the session's)."""
    import tempfile

    from airflow_infra.localserver.server import LocalServer

    home = Path(tempfile.mkdtemp(prefix="airflow-infra-damaged-"))  # a home the server's account can reach
    cli = Cli(tmp_path_factory.mktemp("damaged") / "damaged_files", home)
    cli.dir.mkdir()
    cli("up")
    (cli.dir / ".airflow-infra" / "state.lock").write_text("")  # a lock file to damage: removed below
    (cli.dir / ".airflow-infra" / "state.lock").unlink()
    yield cli
    server = LocalServer(home)
    if server.running_pid() is not None:
        server.stop()
    shutil.rmtree(home, ignore_errors=True)


FILES = {
    "state": lambda cli: cli.dir / ".airflow-infra" / "state.json",
    "lock": lambda cli: cli.dir / ".airflow-infra" / "state.lock",
    "guard": lambda cli: cli.dir / ".airflow-infra" / "state.guard",
    "state backup": lambda cli: cli.dir / ".airflow-infra" / "state.json.backup",
    "server.json": lambda cli: cli.home / "postgres" / "server.json",
    "secrets.json": lambda cli: cli.home / "secrets.json",
    "postmaster.pid": lambda cli: cli.home / "postgres" / "data" / "postmaster.pid",
}


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("which", list(FILES))
def test_no_damaged_file_ends_in_an_unexpected_error(damaged_project, which, how):
    cli = damaged_project
    path = FILES[which](cli)
    saved = (path.read_bytes(), path.stat()) if path.is_file() else None
    state_before = (cli.dir / ".airflow-infra" / "state.json").read_bytes()
    damage(path, how)
    try:
        assert_no_surprise(cli("plan", expect=None))
        if which in ("lock", "guard", "state backup"):  # what takes the lock and writes the state
            assert_no_surprise(cli("apply", "--auto-approve", expect=None))
            assert_no_surprise(cli("state", "restore", str(json.loads(state_before)["serial"] - 1), expect=None))
        lock = cli("state", "lock", "--json", expect=None)
        if (
            which == "lock"
            and how not in ("missing",)
            and lock.returncode == 0
            and lock.stdout.strip() not in ("", "null")
        ):
            lock_id = json.loads(lock.stdout)["ID"]  # whatever is there, force-unlock takes its ID
            assert_no_surprise(cli("force-unlock", lock_id, expect=0))
    finally:
        if which != "lock":
            restore(path, saved)
        else:
            restore(path, None)
    if which not in (
        "state",
        "lock",
        "guard",
        "state backup",
        "secrets.json",
    ):  # a lost secret store is drift the next apply repairs
        assert (cli.dir / ".airflow-infra" / "state.json").read_bytes() == state_before


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_manifest_is_refused_in_one_line(cli, tmp_path, how):
    path = tmp_path / "b-20260101T000000Z.manifest.json"
    path.write_text(json.dumps({"bucket": "b", "prefix": "", "versions": [{"Key": "a", "VersionId": "null"}]}))
    damage(path, how)
    cli("up")
    proc = cli("restore", str(path), expect=None)
    assert proc.returncode == 1
    assert_no_surprise(proc)
