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


def register(registry: Path, *repos: Repo, remote: bool = False, **extra) -> None:
    lines = ["Project,Repo,URL,Branch,Path"]
    lines += [
        f"{r.name},{r.name}-Workflows,{r.transport_url if remote else r.url},{extra.get('branch', '')},"
        f"{extra.get('path', '')}"
        for r in repos
    ]
    registry.write_text("\n".join(lines) + "\n")


@pytest.fixture(params=["local", "remote"])
def source(request) -> bool:
    """True for a remote repository (git://, mirrored by a bare clone), False for a local one (read in place)."""
    if request.param == "remote":
        request.getfixturevalue("git_daemon")
    return request.param == "remote"


def published(dags: Path, project: str) -> str:
    return Path(os.readlink(dags / project)).name


def test_seed_registry_parses_as_is_and_names_are_checked(tmp_path):
    reg = tmp_path / "projects.csv"
    reg.write_text(SEED_CSV)
    listed = json.loads(cli("projects", "list", "--registry", str(reg), "--json").stdout)
    assert listed == [
        {
            "project": "redb",
            "repo": "REDB-Workflows",
            "url": "https://github.com/stlrda/REDB-Workflows",
            "branch": "",
            "path": "",
            "config": "",
            "clone_url": "https://github.com/stlrda/REDB-Workflows",
        }
    ]
    bad = cli("projects", "add", "211dashboard", "https://example.invalid/x.git", "--registry", str(reg), expect=1)
    assert "'211dashboard' is not a valid project name" in bad.stderr
    dup = cli("projects", "add", "other", "https://github.com/stlrda/REDB-Workflows", "--registry", str(reg), expect=1)
    assert "listed twice" in dup.stderr
    cli("projects", "add", "dashboard_211", "https://example.invalid/d.git", "--branch", "prod", "--registry", str(reg))
    assert reg.read_text().splitlines()[0] == "Project,Repo,URL,Branch"
    cli("projects", "remove", "redb", "--registry", str(reg))
    assert [e["project"] for e in json.loads(cli("projects", "list", "--registry", str(reg), "--json").stdout)] == [
        "dashboard_211"
    ]
    reg.write_text("Project,Repo,URL\n../x,X,file:///tmp/x.git\n")
    assert "'../x' is not a valid project name" in cli("projects", "list", "--registry", str(reg), expect=1).stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("Project,Repo,URL,URL\nx_a,X,file:///a.git,file:///b.git\n", "line 1: column(s) URL named twice"),
        ('Project,Repo,URL\n"x_\nb",X,file:///a.git\n', "line 2: a field holds a line break"),
        ("Project,Repo,URL\nx_a,X,file:///a.git,extra\n", "line 2: 4 fields, the header names 3"),
        ("Project,Repo,URL\nx_a,X,file:///" + "a" * 200_000 + ".git\n", "line 2: a field longer than 4096 characters"),
        ("Project,Repo,URL\n\n\nx_a,X,\n", "line 4: URL is empty"),  # blank lines counted: the line in the file
        ("Project,Repo,URL\nx_a,X,file:///a.git\n\nx_a,Y,file:///b.git\n", "line 4: project 'x_a' is listed twice"),
    ],
)
def test_a_registry_is_read_strictly_and_errors_name_the_line(tmp_path, text, message):
    reg = tmp_path / "projects.csv"
    reg.write_text(text)
    for args in (("projects", "list"), ("dags", "bundles"), ("projects", "add", "x_c", "file:///c.git")):
        proc = cli(*args, "--registry", str(reg), expect=1)
        err = proc.stderr.strip()
        assert err == f"Error: {reg}: {message}" or err.startswith(f"Error: {reg}: {message}"), err
    assert reg.read_text() == text  # never rewritten


def test_sync_publishes_and_picks_up_new_commits(tmp_path, repos, source):
    a, b, c = repos("alpha"), repos("beta"), repos("gamma")
    reg, dags = tmp_path / "projects.csv", tmp_path / "dags"
    register(reg, a, b, c, remote=source)
    first = json.loads(cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json").stdout)
    assert [(r["project"], r["result"]) for r in first] == [
        ("alpha", "published"),
        ("beta", "published"),
        ("gamma", "published"),
    ]
    # a remote repository is mirrored; a local one is read in place, with no copy
    assert (dags / ".airflow-infra" / "repos" / "alpha.git").is_dir() == source
    for r in (a, b, c):
        assert (dags / r.name / "dags" / f"{r.name}_dag.py").read_text() == dag_source(f"{r.name}_hello")
    before = {p: os.lstat(dags / p).st_mtime_ns for p in ("alpha", "gamma")}

    new = b.commit({"dags/extra.py": "X = 1\n"}, "second")
    second = {
        r["project"]: r
        for r in json.loads(cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json").stdout)
    }
    assert second["beta"]["result"] == "published" and second["beta"]["new"] == new
    assert second["alpha"]["result"] == second["gamma"]["result"] == "unchanged"
    assert (dags / "beta" / "dags" / "extra.py").exists() and published(dags, "beta") == new
    assert {p: os.lstat(dags / p).st_mtime_ns for p in ("alpha", "gamma")} == before
    table = cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags)).stdout
    assert "unchanged" in table and "beta" in table


def test_a_failing_project_keeps_its_last_good_revision(tmp_path, repos, source):
    a, b = repos("alpha"), repos("beta")
    reg, dags = tmp_path / "projects.csv", tmp_path / "dags"
    register(reg, a, b, remote=source)
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
    assert {r["project"]: r["result"] for r in json.loads(proc.stdout)} == {
        "alpha": "failed",
        "beta": "unchanged",
        "gone": "failed",
    }


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
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_infra",
            "dags",
            "sync",
            "--registry",
            str(reg),
            "--dags-folder",
            str(dags),
            "--jobs",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    revisions = dags / ".airflow-infra" / "revisions"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        p.name.endswith(".tmp") for d in revisions.iterdir() for p in d.iterdir()
    ):
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    states = set()
    for p in projects:
        sha = published(dags, p.name)
        tree = git("ls-tree", "-r", "--name-only", sha, cwd=p.work).splitlines()
        assert sorted(str(f.relative_to(dags / p.name)) for f in (dags / p.name).rglob("*") if f.is_file()) == sorted(
            tree
        )
        expected = git("show", f"{sha}:data/file7.sql", cwd=p.work)
        assert (dags / p.name / "data" / "file7.sql").read_text().strip() == expected
        states.add("new" if "+ 1" in expected else "old")
    assert "old" in states  # it was killed before finishing
    results = json.loads(cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json").stdout)
    assert all(r["result"] in ("published", "unchanged") for r in results)
    assert not any(p.name.endswith(".tmp") for d in revisions.iterdir() for p in d.iterdir())


DAGBAG = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": {k: v for k, v in bag.import_errors.items()}}))
"""


def dagbag(airflow_python: Path, folder: Path) -> dict:
    proc = subprocess.run([str(airflow_python), "-c", DAGBAG, str(folder)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_airflow_dagbag_holds_the_synced_dags_and_check_uses_it(tmp_path, repos, airflow_python):
    a, b = repos("alpha"), repos("beta")
    reg, dags = tmp_path / "projects.csv", tmp_path / "dags"
    register(reg, a, b, path="dags")
    cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--check", python=str(airflow_python))
    bag = dagbag(airflow_python, dags)
    assert bag == {"dags": ["alpha_hello", "beta_hello"], "errors": {}}
    good = published(dags, "alpha")

    # compiles, but fails to import in Airflow: only a DagBag finds it
    a.commit({"dags/alpha_dag.py": "import no_such_module_anywhere\n" + dag_source("alpha_hello")}, "bad import")
    proc = cli(
        "dags",
        "sync",
        "--registry",
        str(reg),
        "--dags-folder",
        str(dags),
        "--check",
        "--json",
        python=str(airflow_python),
        expect=1,
    )
    [alpha] = [r for r in json.loads(proc.stdout) if r["project"] == "alpha"]
    assert (
        alpha["result"] == "failed"
        and "DagBag import errors" in alpha["error"]
        and "no_such_module_anywhere" in alpha["error"]
    )
    assert published(dags, "alpha") == good
    assert dagbag(airflow_python, dags)["errors"] == {}


def test_a_published_revision_is_checked_again_when_airflow_changed_or_when_asked(tmp_path, repos, airflow_python):
    """`dags sync --check` used to skip a revision already published: checked with no Airflow (compiling only),
    a broken import stayed "unchanged" for ever. Now a new Airflow, or --recheck, checks it again."""
    a = repos("alpha")
    a.commit({"dags/alpha_dag.py": "import no_such_module_anywhere\n" + dag_source("alpha_hello")}, "bad import")
    reg, dags = tmp_path / "projects.csv", tmp_path / "dags"
    register(reg, a, path="dags")
    cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--check")  # no Airflow here: compiles
    first = published(dags, "alpha")
    proc = cli(
        "dags",
        "sync",
        "--registry",
        str(reg),
        "--dags-folder",
        str(dags),
        "--check",
        "--json",
        python=str(airflow_python),
        expect=1,
    )  # with Airflow: checked again, and found broken
    [alpha] = json.loads(proc.stdout)
    assert alpha["result"] == "failed" and f"the published revision {first[:12]} fails the check now" in alpha["error"]
    assert "no_such_module_anywhere" in alpha["error"]
    a.commit({"dags/alpha_dag.py": dag_source("alpha_hello")}, "fixed")
    cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--check", python=str(airflow_python))
    again = cli(
        "dags",
        "sync",
        "--registry",
        str(reg),
        "--dags-folder",
        str(dags),
        "--recheck",
        "--json",
        python=str(airflow_python),
    )
    assert [r["result"] for r in json.loads(again.stdout)] == ["unchanged"]
    assert published(dags, "alpha") != first


def test_shipped_import_dag_parses_and_its_task_runs_the_sync(tmp_path, repos, airflow_python):
    a = repos("alpha")
    reg, dags = tmp_path / "projects.csv", tmp_path / "dags"
    register(reg, a)
    cli("dags", "install-importer", "--registry", str(reg), "--dags-folder", str(dags), "--schedule", "*/5 * * * *")
    run = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = bag.dags["import_dags"]
task = dag.get_task("sync")
print(json.dumps({"ids": sorted(bag.dag_ids), "tasks": [t.task_id for t in dag.tasks], "catchup": dag.catchup,
                  "max_active_runs": dag.max_active_runs, "schedule": str(dag.schedule),
                  "result": task.python_callable()}))
"""
    proc = subprocess.run([str(airflow_python), "-c", run, str(dags)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["tasks"] == ["sync"] and doc["catchup"] is False and doc["max_active_runs"] == 1
    assert doc["schedule"] == "*/5 * * * *"
    assert [(r["project"], r["result"]) for r in doc["result"]] == [("alpha", "published")]
    assert (dags / "alpha" / "dags" / "alpha_dag.py").exists()
    assert sorted(dagbag(airflow_python, dags)["dags"]) == ["alpha_hello", "import_dags"]


def test_plan_all_reports_a_broken_project_and_plans_the_others(tmp_path, home):
    reg = tmp_path / "projects.csv"
    rows = ["Project,Repo,URL,Config"]
    for name in ("fleet_a", "fleet_b", "fleet_c"):
        d = tmp_path / name
        d.mkdir()
        text = f'[project]\nname = "{name}"\n'
        if name == "fleet_b":
            text += "[database]\nschemass = []\n"
        (d / "airflow-infra.toml").write_text(text)
        rows.append(f"{name},{name},file:///{name}.git,{name}/airflow-infra.toml")
    reg.write_text("\n".join(rows) + "\n")
    env = {**os.environ, "AIRFLOW_INFRA_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-m", "airflow_infra", "plan", "--all", "--registry", str(reg), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    results = {r["project"]: r for r in json.loads(proc.stdout)}
    assert results["fleet_a"]["summary"]["add"] == results["fleet_c"]["summary"]["add"] == 8
    assert results["fleet_b"]["result"] == "error" and "database.schemass" in results["fleet_b"]["error"]
    table = subprocess.run(
        [sys.executable, "-m", "airflow_infra", "plan", "--all", "--registry", str(reg)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert table.returncode == 1 and "fleet_b" in table.stdout and "unknown key" in table.stdout
    missing = rows + ["fleet_d,fleet_d,file:///fleet_d.git,fleet_d/airflow-infra.toml"]  # a Config not there
    reg.write_text("\n".join(missing) + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "airflow_infra", "plan", "--all", "--registry", str(reg), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    error = {r["project"]: r for r in json.loads(proc.stdout)}["fleet_d"]["error"]
    assert error == (
        f"{reg}: Config 'fleet_d/airflow-infra.toml' of fleet_d: no {tmp_path}/fleet_d/airflow-infra.toml "
        f"(fix the row, or `airflow-infra init` in {tmp_path}/fleet_d)"
    )  # not "-C …: not a directory"

    reg.write_text("\n".join(r for r in rows if not r.startswith("fleet_b")) + "\n")
    applied = subprocess.run(
        [sys.executable, "-m", "airflow_infra", "apply", "--all", "--auto-approve", "--registry", str(reg)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = subprocess.run(
        [sys.executable, "-m", "airflow_infra", "plan", "--all", "--detailed-exitcode", "--registry", str(reg)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert again.returncode == 0, again.stdout
    outs = json.loads(
        subprocess.run(
            [sys.executable, "-m", "airflow_infra", "output", "--all", "--json", "--registry", str(reg)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=True,
        ).stdout
    )
    assert [o["outputs"]["postgres_database"]["value"] for o in outs] == ["fleet_a", "fleet_c"]
    assert all(o["outputs"]["etl_password"] == {"sensitive": True} for o in outs)  # no value, not even a null


def test_fleet_apply_applies_only_reviewed_plans(tmp_path, home, monkeypatch):
    import airflow_infra as ai

    reg = tmp_path / "projects.csv"
    rows = ["Project,Repo,URL,Config"]
    for name in ("reviewed_a", "unreviewed_b"):
        d = tmp_path / name
        d.mkdir()
        (d / "airflow-infra.toml").write_text(f'[project]\nname = "{name}"\n')
        rows.append(f"{name},{name},file:///{name}.git,{name}/airflow-infra.toml")
    reg.write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("AIRFLOW_INFRA_HOME", str(home))
    planned = {r.project: r.plan for r in ai.fleet_plan(reg) if r.project == "reviewed_a"}
    results = {r.project: r for r in ai.fleet_apply(reg, plans=planned)}
    assert results["reviewed_a"].applied and not results["reviewed_a"].error
    assert "no reviewed plan" in results["unreviewed_b"].error
    assert not (tmp_path / "unreviewed_b" / ".airflow-infra" / "state.json").exists()


@pytest.mark.parametrize("answer", ["no", "yes"])
def test_apply_all_shows_every_plan_and_asks_once(tmp_path, home, answer):
    """apply --all on a terminal: every project is planned and shown, one question is asked (the
    confirm callback of a single apply), and only a "yes" applies the reviewed plans."""
    from conftest import Cli, on_terminal

    reg = tmp_path / "projects.csv"
    rows = ["Project,Repo,URL,Config"]
    for name in ("fleet_a", "fleet_b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "airflow-infra.toml").write_text(f'[project]\nname = "{name}_{tmp_path.name[-6:]}"\n')
        rows.append(f"{name},{name},file:///{name}.git,{name}/airflow-infra.toml")
    reg.write_text("\n".join(rows) + "\n")
    seen, status = on_terminal(["apply", "--all", "--registry", str(reg)], Cli(tmp_path, home).env(), answer)
    assert status == (0 if answer == "yes" else 1), seen
    assert "fleet_a" in seen and "fleet_b" in seen and seen.count("Only 'yes' will be accepted") == 1
    states = [(tmp_path / n / ".airflow-infra" / "state.json").exists() for n in ("fleet_a", "fleet_b")]
    assert states == [answer == "yes"] * 2
    assert ("Apply cancelled." in seen) is (answer == "no")
    if answer == "yes":
        # nothing left to change: no approval needed, even without a terminal to ask on
        again = Cli(tmp_path, home)("apply", "--all", "--registry", str(reg))
        assert "needs confirmation" not in again.stderr
        for n in ("fleet_a", "fleet_b"):
            Cli(tmp_path / n, home)("destroy", "--auto-approve", "--force-delete-data")
    else:  # changes and no terminal: refused, as a single apply is
        refused = Cli(tmp_path, home)("apply", "--all", "--registry", str(reg), expect=1)
        assert "needs confirmation and there is no terminal to ask on: pass --auto-approve" in refused.stderr


SEED_ROW = "redb,REDB-Workflows,https://github.com/stlrda/REDB-Workflows/tree/theo/development"


def test_the_seeds_own_row_names_its_branch_in_a_page_url(tmp_path, monkeypatch):
    """The seed's projects.csv as it is: a GitHub page URL naming a branch with a slash. GitHub is
    played by a local repository that git's url.<base>.insteadOf puts in its place."""
    remote = Repo(tmp_path, "REDB-Workflows")
    remote.commit({"dags/redb_dag.py": dag_source("redb_main")}, "on main")
    wanted = remote.commit({"dags/redb_dag.py": dag_source("redb_theo")}, "on theo/development")
    git("push", "--quiet", "origin", "HEAD:refs/heads/theo/development", cwd=remote.work)
    remote.commit({"dags/redb_dag.py": dag_source("redb_later")}, "main moves on")
    for k, v in {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{remote.remote.parent.as_uri()}/.insteadOf",
        "GIT_CONFIG_VALUE_0": "https://github.com/stlrda/",
    }.items():
        monkeypatch.setenv(k, v)
    reg, dags = tmp_path / "projects.csv", tmp_path / "dags"
    reg.write_text(f"Project,Repo,URL\n{SEED_ROW}\n")
    shown = json.loads(cli("projects", "show", "redb", "--registry", str(reg)).stdout)
    assert (shown["branch"], shown["clone_url"]) == ("theo/development", "https://github.com/stlrda/REDB-Workflows")
    [done] = json.loads(cli("dags", "sync", "--registry", str(reg), "--dags-folder", str(dags), "--json").stdout)
    assert done["result"] == "published" and done["new"] == wanted
    assert (dags / "redb" / "dags" / "redb_dag.py").read_text() == dag_source("redb_theo")
    assert reg.read_text() == f"Project,Repo,URL\n{SEED_ROW}\n"  # read as it is, never rewritten
    reg.write_text("Project,Repo,URL\nredb,REDB-Workflows,https://github.com/stlrda/REDB-Workflows/blob/main/x.py\n")
    refused = cli("projects", "list", "--registry", str(reg), expect=1)
    assert "line 2: URL" in refused.stderr and "web page git cannot clone" in refused.stderr
