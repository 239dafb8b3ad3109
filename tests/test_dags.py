"""The projects registry and `dags sync`, with real git repositories (bare remotes, file:// URLs)
and a real Airflow 3 DagBag."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitrepos import Repo, dag_source, git

SEED_CSV = "Project,Repo,URL\nredb,REDB-Workflows,https://github.com/stlrda/REDB-Workflows\n"


def cli(*args: str, expect: int | None = 0, python: str = sys.executable, cwd: Path | None = None):
    proc = subprocess.run([python, "-m", "airflow_infra", *args], capture_output=True, text=True, timeout=600, cwd=cwd)
    if expect is not None:
        assert proc.returncode == expect, f"exit {proc.returncode} for {args}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture
def repos(tmp_path):
    made = {}

    def make(name: str, dag_id: str | None = None) -> Repo:
        r = Repo(tmp_path, name)
        r.commit({f"dags/{name}_dag.py": dag_source(dag_id or f"{name}_hello"), "README.md": f"# {name}\n"}, "first")
        made[name] = r
        return r

    return make


def register(registry: Path, *repos: Repo, **extra) -> None:
    lines = ["Project,Repo,URL,Branch,Path"]
    lines += [f"{r.name},{r.name}-Workflows,{r.url},{extra.get('branch', '')},{extra.get('path', '')}" for r in repos]
    registry.write_text("\n".join(lines) + "\n")


def published(dags: Path, project: str) -> str:
    return Path(os.readlink(dags / project)).name


def test_seed_registry_parses_as_is_and_names_are_checked(tmp_path):
    reg = tmp_path / "projects.csv"
    reg.write_text(SEED_CSV)
    listed = json.loads(cli("projects", "list", "--registry", str(reg), "--json").stdout)
    assert listed == [{"project": "redb", "repo": "REDB-Workflows", "url": "https://github.com/stlrda/REDB-Workflows",
                       "branch": "", "path": "", "config": ""}]
    bad = cli("projects", "add", "211dashboard", "https://example.invalid/x.git", "--registry", str(reg), expect=1)
    assert "'211dashboard' is not a valid project name" in bad.stderr
    dup = cli("projects", "add", "other", "https://github.com/stlrda/REDB-Workflows", "--registry", str(reg), expect=1)
    assert "listed twice" in dup.stderr
    cli("projects", "add", "dashboard_211", "https://example.invalid/d.git", "--branch", "prod", "--registry", str(reg))
    assert reg.read_text().splitlines()[0] == "Project,Repo,URL,Branch"
    cli("projects", "remove", "redb", "--registry", str(reg))
    assert [e["project"] for e in json.loads(cli("projects", "list", "--registry", str(reg), "--json").stdout)] == ["dashboard_211"]
    reg.write_text("Project,Repo,URL\n../x,X,file:///tmp/x.git\n")
    assert "'../x' is not a valid project name" in cli("projects", "list", "--registry", str(reg), expect=1).stderr


def test_sync_publishes_and_picks_up_new_commits(tmp_path, repos):
    a, b, c = repos("alpha"), repos("beta"), repos("gamma")
    reg, dags = tmp_path / "projects.csv", tmp_path / "dags"
    register(reg, a, b, c)
    first = json.loads(cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json").stdout)
    assert [(r["project"], r["result"]) for r in first] == [("alpha", "published"), ("beta", "published"), ("gamma", "published")]
    for r in (a, b, c):
        assert (dags / r.name / "dags" / f"{r.name}_dag.py").read_text() == dag_source(f"{r.name}_hello")
    before = {p: os.lstat(dags / p).st_mtime_ns for p in ("alpha", "gamma")}

    new = b.commit({"dags/extra.py": "X = 1\n"}, "second")
    second = {r["project"]: r for r in json.loads(cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json").stdout)}
    assert second["beta"]["result"] == "published" and second["beta"]["new"] == new
    assert second["alpha"]["result"] == second["gamma"]["result"] == "unchanged"
    assert (dags / "beta" / "dags" / "extra.py").exists() and published(dags, "beta") == new
    assert {p: os.lstat(dags / p).st_mtime_ns for p in ("alpha", "gamma")} == before
    table = cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags)).stdout
    assert "unchanged" in table and "beta" in table


def test_a_failing_project_keeps_its_last_good_revision(tmp_path, repos):
    a, b = repos("alpha"), repos("beta")
    reg, dags = tmp_path / "projects.csv", tmp_path / "dags"
    register(reg, a, b)
    cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags))
    good = published(dags, "alpha")

    a.commit({"dags/broken.py": "def broken(:\n"}, "broken")
    b.commit({"dags/more.py": "Y = 2\n"}, "fine")
    proc = cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--check", "--json", expect=1)
    results = {r["project"]: r for r in json.loads(proc.stdout)}
    assert results["alpha"]["result"] == "failed" and "broken.py does not compile" in results["alpha"]["error"]
    assert results["beta"]["result"] == "published"
    assert published(dags, "alpha") == good and not (dags / "alpha" / "dags" / "broken.py").exists()

    # history rewritten: refused, last good kept
    git("reset", "--hard", "HEAD~1", cwd=a.work)
    a.commit({"dags/other.py": "Z = 3\n"}, "rewritten")
    proc = cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json", expect=1)
    assert {r["project"]: r["result"] for r in json.loads(proc.stdout)}["alpha"] == "failed"
    assert published(dags, "alpha") == good

    # a bad URL fails alone
    reg.write_text(reg.read_text() + f"gone,Gone,{(tmp_path / 'nowhere.git').as_uri()},,\n")
    proc = cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json", expect=1)
    assert {r["project"]: r["result"] for r in json.loads(proc.stdout)} == {"alpha": "failed", "beta": "unchanged", "gone": "failed"}


def test_nothing_is_written_outside_the_dags_folder(tmp_path, repos):
    evil = repos("evil")
    evil.commit({}, "link out", symlinks={"dags/etc": "/etc", "dags/up": "../../../../outside"})
    reg, dags = tmp_path / "projects.csv", tmp_path / "dags"
    register(reg, evil)
    proc = cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json", expect=1)
    [r] = json.loads(proc.stdout)
    assert r["result"] == "failed" and "refused" in r["error"]
    assert not (dags / "evil").exists()
    before = sorted(p.name for p in tmp_path.iterdir())
    reg.write_text(f"Project,Repo,URL\n../x,X,{evil.url}\n")
    cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), expect=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not (tmp_path / "x").exists()


def test_removed_project_is_unpublished(tmp_path, repos):
    a, b = repos("alpha"), repos("beta")
    reg, dags = tmp_path / "projects.csv", tmp_path / "dags"
    register(reg, a, b)
    cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags))
    cli("projects", "remove", "beta", "--registry", str(reg))
    results = json.loads(cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json").stdout)
    assert {r["project"]: r["result"] for r in results} == {"alpha": "unchanged", "beta": "unpublished"}
    assert not os.path.lexists(dags / "beta") and not (dags / ".airflow-infra" / "revisions" / "beta").exists()


def test_sync_killed_midway_leaves_whole_revisions(tmp_path, repos):
    projects = [repos(f"p{i}") for i in range(12)]
    for p in projects:  # make each export take a moment
        p.commit({f"data/file{j}.sql": f"select {j};\n" * 200 for j in range(150)}, "bulk")
    reg, dags = tmp_path / "projects.csv", tmp_path / "dags"
    register(reg, *projects)
    cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags))
    for p in projects:
        p.commit({f"data/file{j}.sql": f"select {j} + 1;\n" * 200 for j in range(150)}, "update")
    proc = subprocess.Popen([sys.executable, "-m", "airflow_infra", "dags", "sync", "--registry", str(reg),
                             "--dags-folder", str(dags), "--jobs", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    revisions = dags / ".airflow-infra" / "revisions"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.name.endswith(".tmp") for d in revisions.iterdir() for p in d.iterdir()):
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    states = set()
    for p in projects:
        sha = published(dags, p.name)
        tree = git("ls-tree", "-r", "--name-only", sha, cwd=p.work).splitlines()
        assert sorted(str(f.relative_to(dags / p.name)) for f in (dags / p.name).rglob("*") if f.is_file()) == sorted(tree)
        expected = git("show", f"{sha}:data/file7.sql", cwd=p.work)
        assert (dags / p.name / "data" / "file7.sql").read_text().strip() == expected
        states.add("new" if "+ 1" in expected else "old")
    assert "old" in states  # it was killed before finishing
    results = json.loads(cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json").stdout)
    assert all(r["result"] in ("published", "unchanged") for r in results)
    assert not any(p.name.endswith(".tmp") for d in revisions.iterdir() for p in d.iterdir())
