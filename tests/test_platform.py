"""`airflow-infra platform`: a real Apache Airflow 3 (api-server, scheduler, dag-processor, triggerer) started
for two registered projects, driven through its REST API v2. One platform for the module: it takes
about ten seconds to start on two cores, the DAG runs about ten each.

Project A is a working tree on this machine (a LocalDagBundle); project B is pushed to a bare repository
and registered by its file:// URL (a GitDagBundle Airflow clones). Their connections come from the
secrets backend at lookup time: nothing is imported into Airflow."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Cli, connect_as, readable_by_others
from gitrepos import git

from airflow_infra.localserver.binaries import free_port
from airflow_infra.secretstores.file import FileSecretStore


class Api:
    """Airflow's REST API v2 as the admin user (a JWT from /auth/token)."""

    def __init__(self, port: int, password: str):
        self.base = f"http://127.0.0.1:{port}"
        self.token: str | None = None
        self.token = self.call("POST", "/auth/token", {"username": "admin", "password": password})["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
            },
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def xcom(self, dag_id: str, task_id: str) -> object:
        """What the task of the last run returned."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{self.last_run}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.call("GET", path)["value"]

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.call("GET", "/api/v2/dags")["dags"]}

    def run(self, dag_id: str, timeout: float = 240) -> tuple[str, list[tuple[str, str]]]:
        """Unpause, trigger, wait: (the run's state, [(task, state)])."""
        self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self.last_run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})["dag_run_id"]
        deadline = time.monotonic() + timeout
        while (state := self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run}")["state"]) not in ("success", "failed"):
            assert time.monotonic() < deadline, f"{dag_id} still {state} after {timeout} s"
            time.sleep(1)
        tasks = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run}/taskInstances")["task_instances"]
        return state, sorted((t["task_id"], t["state"]) for t in tasks)


@dataclass
class Platform:
    cli: Cli
    home: Path
    registry: Path
    port: int
    projects: dict[str, Cli]
    first_passwords: list[str]

    def status(self, expect: int | None = 0) -> dict:
        return json.loads(
            self.cli("platform", "status", "--json", "--registry", str(self.registry), expect=expect).stdout
        )

    def status_with_password(self) -> str:
        found = json.loads(
            self.cli("platform", "status", "--json", "--show-secrets", "--registry", str(self.registry)).stdout
        )
        return str(found["password"])

    def api(self) -> Api:
        return Api(self.port, self.status_with_password())


def passwords(project: Cli) -> list[str]:
    out = json.loads(project("output", "--json", "--show-secrets").stdout)
    return [out[k]["value"] for k in ("etl_password", "reader_password")]


PROBE = """import os

import pendulum
from airflow.sdk import DAG, BaseHook, Variable, task

with DAG("{A}_probe", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False):

    @task
    def probe() -> dict:
        def attempt(look):
            try:
                look()
                return "served"
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"

        return {"env": dict(os.environ), "own": BaseHook.get_connection("{A}_postgres").login,
                "other_conn": attempt(lambda: BaseHook.get_connection("{B}_postgres")),
                "other_var": attempt(lambda: Variable.get("{B}_workfiles_url"))}

    probe()
"""


@pytest.fixture(scope="module")
def platform(home, airflow_python, tmp_path_factory):
    root = tmp_path_factory.mktemp("platform")
    cli = Cli(root, home)
    a, b = ("pa" + uuid.uuid4().hex[:8]), ("pb" + uuid.uuid4().hex[:8])
    projects = {}
    for n in (a, b):
        cli("new", n, str(root / n))
        projects[n] = Cli(root / n, home)
        projects[n]("up")
    (root / a / "dags" / f"{a}_probe.py").write_text(PROBE.replace("{A}", a).replace("{B}", b))
    git("init", "--quiet", "--initial-branch=main", str(root / b), cwd=root)  # B lives in a repository Airflow clones
    git("add", "-A", cwd=root / b)
    git("commit", "--quiet", "-m", "first", cwd=root / b)
    git("clone", "--quiet", "--bare", str(root / b), str(root / f"{b}.git"), cwd=root)
    registry = root / "projects.csv"
    cli(
        "projects",
        "add",
        a,
        str(root / a),
        "--path",
        "dags",
        "--config",
        f"{a}/airflow-infra.toml",
        "--registry",
        str(registry),
    )
    cli(
        "projects",
        "add",
        b,
        f"file://{root}/{b}.git",
        "--branch",
        "main",
        "--path",
        "dags",
        "--config",
        f"{b}/airflow-infra.toml",
        "--registry",
        str(registry),
    )
    port = free_port()
    (root / "airflow-infra.toml").write_text(
        f'[platform]\nport = {port}\nairflow_bin = "{airflow_python.parent / "airflow"}"\n'
    )
    up = cli("platform", "up", "--registry", str(registry))
    assert "Started: api-server, scheduler, dag-processor, triggerer" in up.stdout
    try:
        yield Platform(cli, home, registry, port, projects, [p for c in projects.values() for p in passwords(c)])
    finally:
        cli("platform", "down", expect=None)


def test_both_projects_run_with_connections_from_the_secrets_backend(platform, superuser):
    api = platform.api()
    want = {f"{n}_example_elt" for n in platform.projects}
    deadline = time.monotonic() + 120
    while not want <= api.dag_ids():  # parsed: from a working tree and from a clone
        assert time.monotonic() < deadline, f"DAGs listed: {api.dag_ids()}"
        time.sleep(1)
    for n, project in platform.projects.items():
        assert api.run(f"{n}_example_elt") == (
            "success",
            [
                ("create_table", "success"),
                ("extract", "success"),
                ("files", "success"),
                ("load", "success"),  # one mapped task per file
                ("transform", "success"),
            ],
        )
        with connect_as(project.outputs(), "etl") as conn:  # the rows are in this project's own database
            assert conn.execute("SELECT sum(cities) FROM analytics.cities_by_state").fetchone()[0] > 0
            # loaded by the LoadOperator in the platform's worker, once, as the etl role
            loaded = conn.execute("SELECT rows FROM airflow_infra.loads WHERE table_name = 'raw.cities'").fetchall()
            assert loaded == [(5,)]
    with superuser("airflow_platform") as conn:  # nothing was copied into Airflow
        assert conn.execute("SELECT count(*) FROM connection").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM variable").fetchone()[0] == 0

    a, project = next(iter(platform.projects.items()))
    project("rotate", "etl")  # the next task looks the new password up
    assert api.run(f"{a}_example_elt")[0] == "success"


def test_no_password_in_airflows_database_logs_or_files(platform, superuser, home):
    secrets = platform.first_passwords + [p for c in platform.projects.values() for p in passwords(c)]
    with superuser("airflow_platform") as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT quote_ident(table_name) FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        dump = "\n".join(
            conn.execute(f"SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM {t} t").fetchone()[0] for t in tables
        )
    assert len(tables) > 20 and "_example_elt" in dump  # the whole metadata database, with the runs in it
    files = [p for p in (home / "platform").rglob("*") if p.is_file() and "envs" not in p.parts]
    assert any(p.name == "airflow.cfg" for p in files) and any(p.suffix == ".log" for p in files)
    texts = [dump] + [p.read_bytes().decode(errors="replace") for p in files]
    for secret in secrets:
        assert not [t[:80] for t in texts if secret in t]


def test_up_again_changes_nothing_and_a_killed_scheduler_comes_back(platform):
    before = {c["name"]: c["pid"] for c in platform.status()["components"]}
    again = platform.cli("platform", "up", "--registry", str(platform.registry))
    assert "Everything was running: no change." in again.stdout
    assert {c["name"]: c["pid"] for c in platform.status()["components"]} == before

    logs = platform.cli("platform", "logs", "scheduler").stdout
    assert "--- airflow-infra platform: starting scheduler at " in logs  # its own log, from its first start
    assert (
        "COMPONENT 'webserver': one of api-server, scheduler, dag-processor, triggerer"
        in platform.cli("platform", "logs", "webserver", expect=1).stderr
    )

    os.kill(before["scheduler"], signal.SIGKILL)  # killed by hand: its main process only, its children live on
    time.sleep(0.5)
    down = platform.status(expect=1)
    assert [c["name"] for c in down["components"] if not c["running"]] == ["scheduler"] and not down["healthy"]
    assert groups_alive({before["scheduler"]})  # what it left: its LocalExecutor's workers
    back = platform.cli("platform", "up", "--registry", str(platform.registry))
    assert "Started: scheduler" in back.stdout and "scheduler: stopping what is left of it" in back.stderr
    assert not groups_alive({before["scheduler"]})

    (platform.home / "platform" / "run" / "triggerer.pid").write_text("abc 123 x\n")  # mangled: stale, not a crash
    assert not [c for c in platform.status(expect=1)["components"] if c["name"] == "triggerer"][0]["running"]
    os.kill(before["dag-processor"], signal.SIGSTOP)  # hung: answers nothing, so it is not running
    fixed = platform.cli("platform", "up", "--registry", str(platform.registry))
    assert "Started: dag-processor, triggerer" in fixed.stdout
    assert not groups_alive({before["triggerer"], before["dag-processor"]})  # the old ones, found and stopped
    now = platform.status()
    assert now["healthy"] and [c["pid"] for c in now["components"] if c["name"] == "api-server"] == [
        before["api-server"]
    ]


PLATFORM_KEYS = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
)


def test_a_task_holds_no_platform_key_and_no_other_projects_secret(platform):
    api = platform.api()
    a, b = list(platform.projects)
    deadline = time.monotonic() + 120
    while f"{a}_probe" not in api.dag_ids():
        assert time.monotonic() < deadline, f"DAGs listed: {api.dag_ids()}"
        time.sleep(1)
    assert api.run(f"{a}_probe") == ("success", [("probe", "success")])
    found = api.xcom(f"{a}_probe", "probe")
    assert isinstance(found, dict) and found["own"] == f"{a}_etl"  # its own project's connection: served
    assert f"belongs to project {b}: project {a} may not read it" in found["other_conn"]
    assert f"belongs to project {b}: project {a} may not read it" in found["other_var"]
    keys = [platform.home / "platform" / "airflow" / "passwords.json"]
    store = FileSecretStore(platform.home)
    secrets = [store.get(k) for k in ("platform/fernet", "platform/jwt", "platform/session", "platform/metadata")]
    assert all(secrets) and keys[0].is_file()
    env = found["env"]
    blocked = "airflow-db-not-allowed:///"  # what Airflow's task runner puts there itself
    assert not [k for k in PLATFORM_KEYS if env.get(k, blocked) != blocked]
    assert not [k for k, v in env.items() if any(s in v for s in secrets if s)]
    other = passwords(platform.projects[b])
    assert not [k for k, v in env.items() if any(p in v for p in other)]


def test_every_file_of_the_platform_is_its_accounts_only(platform):
    found = readable_by_others(platform.home / "platform")
    assert found == [], found[:20]
    logs = list((platform.home / "platform" / "airflow" / "logs").rglob("*.log"))
    assert logs  # task logs are there, and private too


def test_a_component_whose_pid_file_was_lost_is_found_and_stopped(platform):
    before = {c["name"]: c["pid"] for c in platform.status()["components"]}
    (platform.home / "platform" / "run" / "api-server.pid").unlink()  # the api-server rewrites its title and environ
    assert [c["name"] for c in platform.status(expect=1)["components"] if not c["running"]] == ["api-server"]
    back = platform.cli("platform", "up", "--registry", str(platform.registry))
    assert "api-server: stopping what is left of it" in back.stderr and "Started: api-server" in back.stdout
    assert not groups_alive({before["api-server"]})
    (platform.home / "platform" / "run" / "scheduler.pid").unlink()
    down = platform.cli("platform", "down")
    assert "scheduler" in down.stdout and not groups_alive(set(before.values()))
    platform.cli("platform", "up", "--registry", str(platform.registry))
    assert platform.status()["healthy"]


def test_ctrl_c_during_up_says_what_state_the_platform_is_in(platform):
    before = {c["name"]: c["pid"] for c in platform.status()["components"]}
    os.killpg(before["triggerer"], signal.SIGKILL)
    up = platform.cli.popen("platform", "up", "--registry", str(platform.registry))
    assert up.stderr is not None
    lines = []
    for line in up.stderr:
        lines.append(line)
        if line.startswith("triggerer: started"):
            break
    up.send_signal(signal.SIGINT)
    out, err = up.communicate(timeout=120)
    assert up.returncode == 130, lines + [err]
    assert err.strip().splitlines()[-1] == (
        "Interrupted: the platform is partly up (api-server, scheduler, dag-processor running; triggerer stopped): "
        "`airflow-infra platform up` starts the rest, `airflow-infra platform down` stops it all"
    )
    assert "apply" not in err
    assert [c["name"] for c in platform.status(expect=1)["components"] if not c["running"]] == ["triggerer"]
    assert "Started: triggerer" in platform.cli("platform", "up", "--registry", str(platform.registry)).stdout


def groups_alive(pgids: set[int]) -> set[int]:
    """Those of the process groups that still hold a live process."""
    alive = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X") and int(fields[2]) in pgids:
            alive.add(int(fields[2]))
    return alive


def png_colours(path: Path) -> int:
    """How many different byte values the image's pixel rows hold (a blank page: two or three)."""
    import struct
    import zlib

    data, pos, idat = path.read_bytes(), 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat)))


def test_a_browser_logs_in_with_the_generated_password_and_sees_both_projects(platform, tmp_path):
    """Headless Chromium from Debian, driven by Selenium through the system's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    password = platform.status_with_password()
    browser = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        wait = WebDriverWait(browser, 60)

        def sign_in(secret: str) -> None:
            browser.get(f"http://127.0.0.1:{platform.port}/")
            wait.until(lambda b: b.find_elements(By.NAME, "password"))
            browser.find_element(By.NAME, "username").send_keys("admin")
            browser.find_element(By.NAME, "password").send_keys(secret)
            browser.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()

        sign_in(password + "x")  # a wrong password stays at the login page
        time.sleep(2)
        assert "/auth/login" in browser.current_url
        sign_in(password)
        wait.until(lambda b: "/auth/login" not in b.current_url)
        browser.get(f"http://127.0.0.1:{platform.port}/dags")
        want = [f"{n}_example_elt" for n in platform.projects]
        wait.until(lambda b: all(d in b.find_element(By.TAG_NAME, "body").text for d in want))
        shot = tmp_path / "dags.png"
        browser.save_screenshot(str(shot))
    finally:
        browser.quit()
    assert shot.stat().st_size > 10_000 and png_colours(shot) > 50


def test_dags_bundles_are_read_by_another_airflows_dag_processor(platform, airflow_python, tmp_path):
    """`dags bundles --format env` for an Airflow 3 the tool does not run: its dag-processor finds both DAGs."""
    line = platform.cli("dags", "bundles", "--format", "env", "--registry", str(platform.registry)).stdout
    bundles = json.loads(platform.cli("dags", "bundles", "--registry", str(platform.registry)).stdout)
    assert [b["classpath"].rsplit(".", 1)[1] for b in bundles] == ["LocalDagBundle", "GitDagBundle"]
    airflow = airflow_python.parent / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
    script = f"export {line.strip()}\n{airflow} dag-processor --num-runs 2\n{airflow} dags list -o json"
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    listed = {d["dag_id"] for d in json.loads(proc.stdout.strip().splitlines()[-1])}
    a = next(iter(platform.projects))
    assert listed == {f"{n}_example_elt" for n in platform.projects} | {f"{a}_probe"}, proc.stderr[-2000:]


def test_down_leaves_no_process_and_no_port(platform):
    pids = [c["pid"] for c in platform.status()["components"]]
    done = platform.cli("platform", "down")
    assert done.stdout.strip() == "Stopped: triggerer, dag-processor, scheduler, api-server"
    assert not groups_alive(set(pids))
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", platform.port)) != 0
    stopped = platform.status(expect=1)
    assert not any(c["running"] for c in stopped["components"])
    assert platform.cli("platform", "down").stdout.strip() == "Nothing was running."


def one_line(proc) -> str:
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


def test_refusals_start_nothing(tmp_path, fresh_home, airflow_python):
    """Bad settings, no local server, a port taken, a failed install: one line each, nothing started."""
    cli = Cli(tmp_path, fresh_home)
    registry = tmp_path / "projects.csv"
    registry.write_text("Project,Repo,URL\n")
    settings = tmp_path / "airflow-infra.toml"
    port = free_port()
    airflow = airflow_python.parent / "airflow"

    def up(text: str) -> str:
        settings.write_text("[platform]\n" + text)
        return one_line(cli("platform", "up", "--registry", str(registry), expect=None))

    assert "[platform] prot: Extra inputs are not permitted" in up("prot = 1\n")
    assert "[platform] port: Input should be a valid integer" in up("port = true\n")
    assert "[platform] airflow_bin: /nonexistent/airflow is not an executable file" in up(
        'airflow_bin = "/nonexistent/airflow"\n'
    )
    err = up(f'port = {port}\nairflow_bin = "{airflow}"\n')
    assert f"no local PostgreSQL in {fresh_home}: run `airflow-infra up`" in err
    cli("local", "start")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        err = up(f'port = {port}\nairflow_bin = "{airflow}"\n')
    assert f"127.0.0.1:{port} is in use by another program" in err and "nothing was started or stopped" in err
    assert "[platform] airflow_bin" in up('airflow_bin = ""\n')  # not "unset": that would install Airflow
    # an "Airflow" whose migration fails saying the database's URL: the error keeps its words, not the password
    loud = tmp_path / "loud-airflow"
    loud.write_text('#!/bin/sh\necho "cannot reach $AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"\nexit 1\n')
    loud.chmod(0o755)
    settings.write_text(f'[platform]\nport = {port}\nairflow_bin = "{loud}"\n')
    proc = cli("platform", "up", "--registry", str(registry), expect=1)  # progress, then the error
    password = FileSecretStore(fresh_home).get("platform/metadata")
    assert (
        proc.stderr.strip().splitlines()[-1].startswith("Error: `airflow db migrate` failed: cannot reach *** (log: ")
    )
    assert password and password not in proc.stdout + proc.stderr
    settings.write_text('[platform]\nairflow_version = "3.0.99"\n')  # pip cannot find it
    proc = cli("platform", "up", "--registry", str(registry), expect=1)
    assert "installing Apache Airflow into" in proc.stderr.splitlines()[0]  # progress, then the one error line
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith(
        "Error: installing Airflow failed: ERROR: Could not find a version that satisfies the "
        "requirement apache-airflow==3.0.99 (full log: "
    ) and err.endswith("nothing was started")
    platform_dir = fresh_home / "platform"
    assert not (platform_dir / "env").exists() and not list((platform_dir / "envs").glob("airflow-*/bin"))
    assert not list(platform_dir.glob("run/*.pid"))


def test_a_percent_in_a_path_reaches_airflow_as_it_is(tmp_path):
    """Airflow reads airflow.cfg with % interpolation: a path holding % (a directory, a %20 in a URL) used
    to break every process. As Airflow's parser reads them, the values come back as they were."""
    import configparser
    import tomllib

    from airflow_infra.airflow.bundles import render
    from airflow_infra.platform.airflowcfg import airflow_cfg
    from airflow_infra.platform.settings import PlatformSettings

    home = tmp_path / "100%pure"
    bundles = [{"name": "a", "classpath": "x", "kwargs": {"path": str(home / "a%20b")}}]
    cfg = configparser.ConfigParser()  # BasicInterpolation, as Airflow's
    cfg.read_string(airflow_cfg(PlatformSettings(), home, home / "projects.csv", bundles))
    assert json.loads(cfg["dag_processor"]["dag_bundle_config_list"]) == bundles
    assert json.loads(cfg["secrets"]["backend_kwargs"]) == {"registry": str(home / "projects.csv")}
    lines = configparser.ConfigParser()
    lines.read_string(render(bundles, "cfg"))
    assert json.loads(lines["dag_processor"]["dag_bundle_config_list"]) == bundles
    assert json.loads(tomllib.loads(render(bundles, "toml"))["dag_processor"]["dag_bundle_config_list"]) == bundles


def test_up_and_down_take_turns(tmp_path, fresh_home):
    """One `up` or `down` at a time (two `up` at once started a second triggerer no pid file named): while
    the platform's lock is held, `down` waits; it goes on when the lock is let go."""
    import subprocess
    import sys

    from airflow_infra.platform.processes import Supervisor

    cli = Cli(tmp_path, fresh_home)
    with Supervisor(fresh_home / "platform").locked():
        waiting = subprocess.Popen(
            [sys.executable, "-m", "airflow_infra", "platform", "down"],
            env=cli.env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(timeout=3)
    assert waiting.communicate(timeout=60)[0].strip() == "Nothing was running." and waiting.returncode == 0
