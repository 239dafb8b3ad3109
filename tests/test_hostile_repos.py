"""`dags sync` against repositories built to attack it: trees crafted with git plumbing (duplicate entries,
a link and a folder of one name, link chains), transports git must not use, a server that never answers,
rewritten history, credentials in a URL. Each attack fails its own project only; nothing is written outside
the DAG folder, and nothing there is readable by another account."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import readable_by_others
from gitrepos import GIT_ENV, Repo, dag_source, git


def cli(*args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "airflow_infra", *args], capture_output=True, text=True, timeout=300)
    if expect is not None:
        assert proc.returncode == expect, f"exit {proc.returncode} for {args}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def sync(reg: Path, dags: Path, *extra: str, expect: int | None = None) -> dict[str, dict]:
    proc = cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json", *extra, expect=expect)
    return {r["project"]: r for r in json.loads(proc.stdout)}


def blob(repo: Path, data: bytes) -> str:
    return (
        subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input=data, capture_output=True, check=True)
        .stdout.decode()
        .strip()
    )


def tree(repo: Path, entries: list[tuple[str, str, str]]) -> str:
    """A tree object exactly as given, duplicates and order included (git mktree would check it)."""
    raw = b"".join(f"{mode} {name}".encode() + b"\0" + bytes.fromhex(oid) for mode, name, oid in entries)
    return (
        subprocess.run(
            ["git", "hash-object", "-w", "-t", "tree", "--literally", "--stdin"],
            cwd=repo,
            input=raw,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )


def publish_tree(r: Repo, root_tree: str) -> str:
    """Make root_tree the next commit of r's main branch, in its bare remote."""
    env = {**os.environ, **GIT_ENV}
    commit = subprocess.run(
        ["git", "commit-tree", root_tree, "-m", "crafted"],
        cwd=r.remote,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    git("update-ref", "refs/heads/main", commit, cwd=r.remote)
    return commit


def crafted(tmp_path: Path, name: str, build) -> Repo:
    r = Repo(tmp_path, name)
    r.commit({"dags/ok.py": dag_source(f"{name}_ok")}, "first")
    publish_tree(r, build(r.remote))
    return r


def registry(path: Path, rows: list[tuple[str, str]], **columns: str) -> Path:
    extra = ",".join(columns)
    path.write_text(
        f"Project,Repo,URL{',' + extra if extra else ''}\n"
        + "".join(f"{n},{n}-Workflows,{u}{',' + ','.join(columns.values()) if columns else ''}\n" for n, u in rows)
    )
    return path


@pytest.fixture
def good(tmp_path) -> Repo:
    r = Repo(tmp_path, "good")
    r.commit({"dags/good.py": dag_source("good_hello")}, "first")
    return r


def attacks(outside: Path) -> dict:
    """Trees that write outside the folder they are extracted into, with an archive parser."""
    target = os.path.relpath(outside, "/")
    up = "../" * 12 + target  # far enough above any DAG folder of the test

    def duplicate_link_then_folder(repo):  # the tarfile shape: 'esc' a link out, then 'esc/' a folder under it
        link = blob(repo, up.encode())
        inner = tree(repo, [("100644", "evil.py", blob(repo, b"PWNED = 1\n"))])
        return tree(repo, [("120000", "esc", link), ("40000", "esc", inner)])

    def duplicate_file(repo):
        return tree(repo, [("100644", "a.py", blob(repo, b"A = 1\n")), ("100644", "a.py", blob(repo, b"A = 2\n"))])

    def link_chain(repo):  # each link inside on its own, the chain leads out: s -> ., t -> s/.., u -> t/<up>
        return tree(
            repo,
            [
                ("120000", "s", blob(repo, b".")),
                ("120000", "t", blob(repo, b"s/..")),
                ("100644", "x.py", blob(repo, b"X = 1\n")),
            ],
        )

    def long_chain(repo):  # CVE-2025-4517: names twice (a link, then a folder), through links whose real
        # path passes PATH_MAX, so that a parser's realpath gives up before it sees the escape
        comp, steps = "d" * 247, "bcdefghijklmnop"
        level = tree(repo, [("100644", "keep", blob(repo, b""))])
        for step in reversed(steps):  # the real folders, each with a one-letter link to the next
            level = tree(
                repo, sorted([("40000", comp, level), ("120000", step, blob(repo, comp.encode()))], key=lambda e: e[1])
            )
        through = tree(repo, [("120000", "l" * 254, blob(repo, b"../" * (len(steps) + 1)))])
        for step in reversed(steps):  # the same folders named by their links: a/b/c/.../p/lll
            through = tree(repo, [("40000", step, through)])
        escape = "a/" + "/".join(steps) + "/" + "l" * 254 + "/" + up
        payload = tree(repo, [("100644", "evil.py", blob(repo, b"PWNED = 1\n"))])
        return tree(
            repo,
            [
                ("40000", comp, level),
                ("120000", "a", blob(repo, comp.encode())),
                ("40000", "a", through),
                ("120000", "escape", blob(repo, escape.encode())),
                ("40000", "escape", payload),
            ],
        )

    def loop(repo):  # inside the tree, but a walk that follows links never ends (Airflow's does)
        inner = tree(repo, [("120000", "again", blob(repo, b"..")), ("100644", "x.py", blob(repo, b"X = 1\n"))])
        return tree(repo, [("40000", "sub", inner)])

    def folder_link(repo):  # inside, but Airflow refuses a DAG folder in which a folder is reached twice
        inner = tree(repo, [("100644", "x.py", blob(repo, b"X = 1\n"))])
        return tree(repo, [("40000", "sub", inner), ("120000", "alias", blob(repo, b"sub"))])

    def bomb(repo):  # a few kilobytes naming one folder of 1,000 files 200 times: 200,000 files
        files = tree(repo, [("100644", f"f{i:04d}.py", blob(repo, b"")) for i in range(1000)])
        return tree(repo, [("40000", f"d{i:03d}", files) for i in range(200)])

    def dotdot_name(repo):
        return tree(repo, [("100644", "..", blob(repo, b"X = 1\n"))])

    def absolute_link(repo):
        return tree(repo, [("120000", "abs", blob(repo, str(outside).encode()))])

    return {
        "duplicate_link_then_folder": duplicate_link_then_folder,
        "duplicate_file": duplicate_file,
        "link_chain": link_chain,
        "long_chain": long_chain,
        "dotdot_name": dotdot_name,
        "loop": loop,
        "folder_link": folder_link,
        "bomb": bomb,
        "absolute_link": absolute_link,
    }


@pytest.mark.parametrize("attack", sorted(attacks(Path("/x"))))
@pytest.mark.parametrize("source", ["local", "remote"])
def test_a_crafted_tree_is_refused_and_writes_nothing_outside(tmp_path, good, attack, source, git_daemon):
    outside = tmp_path / "outside"
    outside.mkdir()
    evil = crafted(tmp_path, "evil", attacks(outside)[attack])
    reg = registry(
        tmp_path / "projects.csv",
        [("evil", git_daemon.url(evil.remote) if source == "remote" else evil.url), ("good", good.url)],
    )
    dags = tmp_path / "dags"
    results = sync(reg, dags, expect=1)
    assert results["evil"]["result"] == "failed" and "refused" in results["evil"]["error"], results["evil"]
    assert results["good"]["result"] == "published"
    assert list(outside.iterdir()) == []
    assert not os.path.lexists(dags / "evil")
    assert (
        not [p for p in (dags / ".airflow-infra" / "revisions" / "evil").rglob("*")]
        if (dags / ".airflow-infra" / "revisions" / "evil").exists()
        else True
    )


def test_links_inside_the_tree_are_kept(tmp_path, good):
    r = Repo(tmp_path, "linked")
    r.commit(
        {"dags/shared/util.py": "U = 1\n", "dags/x.py": dag_source("linked_x")},
        "first",
        symlinks={"dags/util.py": "shared/util.py", "dags/again.py": "util.py"},
    )
    reg = registry(tmp_path / "projects.csv", [("linked", r.url)])
    dags = tmp_path / "dags"
    assert sync(reg, dags, expect=0)["linked"]["result"] == "published"
    assert (dags / "linked" / "dags" / "util.py").read_text() == "U = 1\n"
    assert os.readlink(dags / "linked" / "dags" / "again.py") == "util.py"


def test_a_missing_path_fails_its_project_only(tmp_path, good):
    other = Repo(tmp_path, "other")
    other.commit({"dags/o.py": dag_source("other_o")}, "first")
    reg = tmp_path / "projects.csv"
    reg.write_text(f"Project,Repo,URL,Branch,Path\nother,O,{other.url},,nowhere\ngood,G,{good.url},,dags\n")
    results = sync(reg, tmp_path / "dags", expect=1)
    assert results["other"]["result"] == "failed"
    assert results["other"]["error"].startswith("Path 'nowhere' is not a folder of the repository at ")
    assert results["good"]["result"] == "published"


@pytest.mark.parametrize(
    "url",
    [
        "fd::3",
        "ext::sh -c touch% /tmp/airflow-infra-ext-pwned",
        "http://127.0.0.1:9/x.git",
        "HTTPS://127.0.0.1:9/x.git",
    ],
)
def test_a_transport_git_must_not_use_fails_its_project_only_and_is_never_added(tmp_path, good, url):
    reg = registry(tmp_path / "projects.csv", [("good", good.url), ("bad", url)])
    start = time.monotonic()
    results = sync(reg, tmp_path / "dags", expect=1)
    assert time.monotonic() - start < 30
    assert results["good"]["result"] == "published"
    assert (
        results["bad"]["result"] == "failed"
        and "is not allowed (allowed: https, ssh, git, file" in results["bad"]["error"]
    )
    assert not Path("/tmp/airflow-infra-ext-pwned").exists()
    refused = cli("projects", "add", "bad2", url, "--registry", str(tmp_path / "other.csv"), expect=1)
    [line] = refused.stderr.strip().splitlines()
    assert "line 2: URL" in line and "is not allowed" in line and not (tmp_path / "other.csv").exists()


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("Branch", "main:refs/heads/evil", "is not a branch name"),
        ("Branch", "--upload-pack=x", "is not a branch name"),
        ("Path", "./dags", "without '.' or '..' parts"),
        ("URL", "~nosuchuser-xyz/repo", "is not a URL git can use"),
        ("URL", "https://u:pw@example.com:99999/o/r.git", "is not a URL git can use"),
        ("Config", "x\u2028aa", "control or line-separating character"),
    ],
)
def test_a_row_git_would_misread_is_refused_in_one_line(tmp_path, good, column, value, said):
    row = {"Project": "odd", "Repo": "odd", "URL": good.url, "Branch": "", "Path": "", "Config": "", column: value}
    reg = tmp_path / "projects.csv"
    reg.write_text("Project,Repo,URL,Branch,Path,Config\n" + ",".join(row.values()) + "\n")
    proc = cli("projects", "list", "--registry", str(reg), expect=1)
    [line] = proc.stderr.strip().splitlines()
    assert "line 2" in line and said in line and "unexpected" not in line and "pw@" not in line


def test_a_blob_git_cannot_hand_out_fails_at_the_deadline(tmp_path, good):
    r = Repo(tmp_path, "stuck")
    r.commit({"dags/s.py": dag_source("stuck_s")}, "first")
    oid = git("rev-parse", "HEAD:dags/s.py", cwd=r.work)
    loose = r.work / ".git" / "objects" / oid[:2] / oid[2:]
    loose.unlink()
    os.mkfifo(loose)  # git opens it to read the blob and waits for ever
    reg = registry(tmp_path / "projects.csv", [("stuck", str(r.work)), ("good", good.url)])
    start = time.monotonic()
    results = sync(reg, tmp_path / "dags", "--timeout", "3", expect=1)
    assert time.monotonic() - start < 60
    assert results["stuck"]["result"] == "failed" and "gave no answer within 3 s" in results["stuck"]["error"]
    assert results["good"]["result"] == "published"


def test_a_tree_of_many_folders_needs_few_descriptors(tmp_path):
    import resource

    r = Repo(tmp_path, "wide")
    r.commit({f"dags/pkg{i:04d}/__init__.py": "" for i in range(600)}, "first")
    reg = registry(tmp_path / "projects.csv", [("wide", r.url)])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_infra",
            "dags",
            "sync",
            "--registry",
            str(reg),
            "--dags-folder",
            str(tmp_path / "dags"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128)),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(list((tmp_path / "dags" / "wide" / "dags").iterdir())) == 600


def test_git_itself_refuses_a_transport_outside_the_allow_list(tmp_path):
    from airflow_infra.dags import gitcmd

    for url in ("fd::3", "ext::sh -c id"):
        with pytest.raises(gitcmd.GitError, match="not allowed"):
            gitcmd.run("clone", "--bare", url, str(tmp_path / "x"), timeout=20)


@pytest.fixture
def silent_server():
    """A TCP server that accepts and never answers (a hung git server)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


def test_a_hung_server_fails_its_project_within_the_bound(tmp_path, good, silent_server):
    reg = registry(tmp_path / "projects.csv", [("hung", f"git://127.0.0.1:{silent_server}/x.git"), ("good", good.url)])
    start = time.monotonic()
    results = sync(reg, tmp_path / "dags", "--timeout", "3", expect=1)
    assert time.monotonic() - start < 60
    assert results["hung"]["result"] == "failed" and "gave no answer within 3 s" in results["hung"]["error"]
    assert results["good"]["result"] == "published"
    dags = tmp_path / "dags"  # the lock is free again: a second sync runs at once
    assert (
        sync(registry(tmp_path / "projects.csv", [("good", good.url)]), dags, expect=0)["good"]["result"] == "unchanged"
    )


def test_rewritten_history_of_a_remote_is_said_as_such(tmp_path, git_daemon):
    r = Repo(tmp_path, "moving")
    r.commit({"dags/m.py": dag_source("moving_m")}, "first")
    reg = registry(tmp_path / "projects.csv", [("moving", git_daemon.url(r.remote))])
    dags = tmp_path / "dags"
    first = sync(reg, dags, expect=0)["moving"]["new"]
    git("reset", "--hard", "HEAD~0", cwd=r.work)
    git("commit", "--quiet", "--amend", "-m", "rewritten", cwd=r.work)
    git("push", "--quiet", "--force", "origin", "main", cwd=r.work)
    result = sync(reg, dags, expect=1)["moving"]
    assert result["result"] == "failed" and "history was rewritten" in result["error"] and first[:12] in result["error"]
    assert Path(os.readlink(dags / "moving")).name == first


def test_credentials_in_a_url_reach_no_file_no_output_and_no_argv(tmp_path, git_daemon, good):
    r = Repo(tmp_path, "private")
    r.commit({"dags/p.py": dag_source("private_p")}, "first")
    token = "tok-" + os.urandom(8).hex()
    url = git_daemon.url(r.remote).replace("git://", f"git://someone:{token}@")
    reg = registry(tmp_path / "projects.csv", [("private", url), ("good", good.url)])
    dags = tmp_path / "dags"
    proc = cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json")
    assert token not in proc.stdout + proc.stderr
    assert {r["project"]: r["result"] for r in json.loads(proc.stdout)} == {"private": "published", "good": "published"}
    texts = [p.read_bytes() for p in dags.rglob("*") if p.is_file() and not p.is_symlink()]
    assert texts and not [t for t in texts if token.encode() in t]
    shown = (
        cli("projects", "list", "--registry", str(reg)).stdout
        + cli("projects", "show", "private", "--registry", str(reg)).stdout
    )
    assert token not in shown and "***" in shown
    bundles = cli("dags", "bundles", "--registry", str(reg), "--format", "cfg").stdout
    assert token not in bundles and "private_git" in bundles


def test_a_credential_helper_hands_git_the_urls_credentials():
    """What git asks for an https remote is answered from the helper's environment, not from a file."""
    from airflow_infra.dags import gitcmd

    remote = gitcmd.Remote.parse("https://someone:p%40ss-w0rd@git.example.invalid/team/repo.git")
    assert remote.url == "https://git.example.invalid/team/repo.git"
    answer = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=https\nhost=git.example.invalid\n\n",
        env=gitcmd.environment(remote),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "username=someone\n" in answer and "password=p@ss-w0rd\n" in answer


def test_everything_sync_writes_is_this_accounts_only(tmp_path, good, git_daemon):
    r = Repo(tmp_path, "remote")
    r.commit({"dags/r.py": dag_source("remote_r"), "scripts/run.sh": "#!/bin/sh\n"}, "first")
    os.chmod(r.work / "scripts/run.sh", 0o755)
    git("add", "-A", cwd=r.work)
    git("commit", "--quiet", "-m", "exec", cwd=r.work)
    git("push", "--quiet", "origin", "main", cwd=r.work)
    reg = registry(tmp_path / "projects.csv", [("remote", git_daemon.url(r.remote)), ("good", good.url)])
    dags = tmp_path / "dags"
    old = os.umask(0o022)
    try:
        sync(reg, dags, "--check", expect=0)
        cli("dags", "install-importer", "--registry", str(reg), "--dags-folder", str(dags))
    finally:
        os.umask(old)
    assert readable_by_others(dags) == []
    assert os.stat(dags / "remote" / "scripts" / "run.sh").st_mode & 0o700 == 0o700


@pytest.mark.parametrize(
    "url",
    [
        "https://user:p%2fSECRETPW@example.invalid/o/r.git",
        "https://user:%53ECRETPW@example.invalid/o/r.git",
        "https://ghp_SECRETPW1234@github.com/o/r.git",
        "ssh://git:SECRETPW@example.invalid/o/r.git",
    ],
)
def test_credentials_are_never_shown_whatever_their_encoding(tmp_path, url):
    reg = tmp_path / "projects.csv"
    cli("projects", "add", "priv", url, "--registry", str(reg))
    said = (
        cli("projects", "list", "--registry", str(reg)).stdout
        + cli("projects", "list", "--json", "--registry", str(reg)).stdout
    )
    said += cli("projects", "show", "priv", "--registry", str(reg)).stdout
    said += cli("projects", "add", "again", url, "--registry", str(reg), expect=1).stderr  # "listed twice" names it
    assert "SECRETPW" not in said and "ECRETPW" not in said and "***" in said
