"""Fault-injection harness (the invariants of docs/architecture.md): a Hypothesis state machine drives three projects through the CLI
(up, plan, apply, destroy, rotate, restore, state restore, force-unlock), kills and pauses runs, and changes
things by hand the way users do; after every step it checks, from outside, that nothing the user wrote
vanished without a complete backup, that no other project was touched, that serials only grow, that no
password leaked and that every failure said one line. Configurations come from a small pool so that bucket
paths, backup locations and prefixes collide often. A failing sequence is shrunk and printed by Hypothesis,
with the shell transcript of its last run in the assertion.

Budget: AIRFLOW_INFRA_SOAK_EXAMPLES / _STEPS / _SEED; bench/soak.py runs it longer with many seeds.
The local projects live in a home of the harness's own (its own managed server: it deletes secrets.json,
fills and empties `backups/`, none of which the session's home may suffer); the server-target project uses
the session's PostgreSQL (as it_admin) and moto.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from airflow_infra.localserver.server import LocalServer

# Violations whose cause is a known product defect are counted (STATS["known:<name>"]) instead of failing.
# Empty this set as fixes land: every check is then strict.
KNOWN_DEFECTS: set[str] = set(os.environ.get("AIRFLOW_INFRA_SOAK_KNOWN", "").split())
# Names used so far, each fixed (its shrunk sequence kept as a regression test elsewhere):
# backup-inside-bucket, overlapping-buckets, stale-holder-writes, step-failure-lines, local-ignores-backup,
# libpq-unexpectedly
LIBPQ_CLOSED = "server closed the connection unexpectedly"
STEP_FAILED = re.compile(r"^\S+: \w+ failed after \d+\.\ds$")

EXAMPLES = int(os.environ.get("AIRFLOW_INFRA_SOAK_EXAMPLES", "8"))
STEPS = int(os.environ.get("AIRFLOW_INFRA_SOAK_STEPS", "18"))
SEED = int(os.environ.get("AIRFLOW_INFRA_SOAK_SEED", "20261207"))
REPORT = os.environ.get("AIRFLOW_INFRA_SOAK_REPORT")  # a JSON file the soak reads the counts from
TRACE = os.environ.get("AIRFLOW_INFRA_SOAK_TRACE")  # a directory: each sequence's transcript goes there
STATS: Counter = Counter()

PROJECTS = ("a", "b", "s")  # two on the local target, one on the server target (S3 on moto)
HOME_BACKUPS = "HOME/backups"
# symbolic places, resolved per example under its root: nested ones and the home's backups collide on purpose
LOCAL_PATHS = [None, "d1", "d1/d2", "d3", HOME_BACKUPS]
BACKUPS = [None, "bk", "d1", "d3/bk", HOME_BACKUPS, "s3://fh-shared/bk", "s3://fh-shared/fhs/bk"]
# ("fh-shared", "") is someone else's bucket, refused whole: drawn less often, it would leave s stuck
S3_PLACES = [(None, ""), ("fh-shared", "fhs/"), (None, ""), ("fh-shared", "fhs/in/"), ("fh-shared", "")]
FOREIGN = ["d3", "d1/d2", "bk", HOME_BACKUPS, "d1", "s3://fh-shared/others", "s3://fh-shared/fhs"]
SHARED = "fh-shared"  # a bucket "someone else" keeps, with objects of theirs in it
STATE = ".airflow-infra/state.json"


@dataclass
class Item:
    """Something a user wrote: a file, a row or an S3 object, and where."""

    kind: str  # file | row | s3
    where: str  # directory | "<server>/<database>" | "bucket/key"
    content: str
    owner: str  # the project whose bucket/database it went into, or "other"
    seen: list[str] = field(default_factory=list)  # where it was found at the last check


@dataclass
class World:
    home: Path
    local: LocalServer  # the harness home's server (projects a, b)
    session: LocalServer  # the session's server (project s, through it_admin)
    root: Path
    endpoint: str


WORLD: World | None = None


def overlap(x: str, y: str) -> bool:
    """Equal, or one inside the other (paths or s3:// prefixes)."""
    x, y = x.rstrip("/") + "/", y.rstrip("/") + "/"
    return x.startswith(y) or y.startswith(x)


def one_line_failure(proc: subprocess.CompletedProcess, ok: tuple[int, ...] = (0,)) -> str | None:
    """(e): a failure says one line (warnings aside); no traceback or 'unexpected' ever."""
    err = proc.stderr or ""
    if "libpq-unexpectedly" in KNOWN_DEFECTS and LIBPQ_CLOSED in err:
        STATS["known:libpq-unexpectedly"] += 1
        err = err.replace(LIBPQ_CLOSED, "server closed the connection")
    if "Traceback" in err or "unexpected" in err.lower():
        return f"traceback/unexpected on stderr: {err!r}"
    if proc.returncode in ok:
        return None
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.lower().startswith("warning")]
    if "step-failure-lines" in KNOWN_DEFECTS and any(STEP_FAILED.match(ln) for ln in lines):
        STATS["known:step-failure-lines"] += 1
        lines = [ln for ln in lines if not STEP_FAILED.match(ln)]
    return None if len(lines) == 1 else f"exit {proc.returncode} with {len(lines)} error lines: {err!r}"


class FaultHarness(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        assert WORLD is not None, "run through test_fault_harness (it sets up the servers)"
        self.w = WORLD
        STATS["sequences"] += 1
        self.n = STATS["sequences"]
        self.root = self.w.root / f"ex{self.n}"
        self.reset_world()
        self.root.mkdir(parents=True)
        self.items: list[Item] = []
        self.transcript: list[str] = []
        self.backups: list[str] = []  # every "Backup written:" path
        self.serials: dict[str, dict[str, int]] = {p: {} for p in PROJECTS}
        self.passwords: set[str] = set()
        self.places_used: dict[str, set[str]] = {p: set() for p in PROJECTS}  # every bucket place per project
        self.cfg: dict[str, dict] = {}
        self._archives: dict[tuple, set[str]] = {}  # cache: backup file -> contents / row values it holds
        self._located: dict[str, set[str]] = {}
        self.gone: set[str] = set()  # backups that vanished (counted once)
        self.gone_in_bucket = False  # one of them lay inside a bucket (the known defect)

    # -- the world -------------------------------------------------------------------------------------------
    def reset_world(self) -> None:
        """Leave nothing of the previous example: databases, roles, buckets, backups, secrets."""
        for server, keep in ((self.w.local, None), (self.w.session, "fhs")):
            with server.connect() as c:
                dbs = [
                    r[0]
                    for r in c.execute(
                        "SELECT datname FROM pg_database WHERE datname NOT IN ('postgres','template0','template1')"
                    )
                ]
                roles = [
                    r[0]
                    for r in c.execute(
                        "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND "
                        "rolname NOT IN ('airflow_infra','it_admin','it_state')"
                    )
                ]
                # IF EXISTS: a killed run's last statement (a DROP DATABASE) may still finish on the server
                for db in dbs if keep is None else [d for d in dbs if d.startswith(keep)]:
                    c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                for role in roles if keep is None else [r for r in roles if r.startswith(keep + "_")]:
                    with contextlib.suppress(psycopg.errors.UndefinedObject):
                        c.execute(f'DROP OWNED BY "{role}" CASCADE')
                    c.execute(f'DROP ROLE IF EXISTS "{role}"')
        store = self.w.home / "secrets.json"
        superuser = json.loads(store.read_text()).get("local/superuser") if store.exists() else None
        if superuser is None:
            self.w.local.connect().close()  # resets the superuser (secrets.json deleted by hand)
        else:
            store.write_text(json.dumps({"local/superuser": superuser}))
        for d in ("backups", "buckets"):
            shutil.rmtree(self.w.home / d, ignore_errors=True)
        s3 = self.s3()
        for b in (SHARED, "fhs-dev-workfiles"):
            with contextlib.suppress(s3.exceptions.NoSuchBucket):
                for page in s3.get_paginator("list_object_versions").paginate(Bucket=b):
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                        s3.delete_object(Bucket=b, Key=v["Key"], VersionId=v["VersionId"])
                s3.delete_bucket(Bucket=b)
        s3.create_bucket(Bucket=SHARED)
        s3.put_bucket_versioning(Bucket=SHARED, VersioningConfiguration={"Status": "Enabled"})

    def teardown(self) -> None:
        STATS["items"] += len(self.items)
        STATS["backups"] += len(self.backups)
        if TRACE:  # every sequence's transcript, for reading what the machine did
            Path(TRACE).mkdir(parents=True, exist_ok=True)
            (Path(TRACE) / f"ex{self.n}.sh").write_text(self.shell() + "\n")
        shutil.rmtree(self.root, ignore_errors=True)

    def s3(self):
        import boto3

        return boto3.client("s3", region_name="us-east-1", endpoint_url=self.w.endpoint)

    def place(self, sym: str | None, project: str) -> str:
        if sym is None:
            return str(self.w.home / "buckets" / f"fh{project}")
        if sym.startswith("s3://"):
            return sym
        return str(self.w.home / "backups") if sym == HOME_BACKUPS else str(self.root / sym)

    def dir(self, p: str) -> Path:
        return self.root / f"proj_{p}"

    def bucket_place(self, p: str) -> str:
        c = self.cfg[p]
        if p != "s":
            return self.place(c["path"], p)
        return f"s3://{c['name'] or 'fhs-dev-workfiles'}/{c['prefix']}"

    def write_config(self, p: str) -> None:
        c, lines = self.cfg[p], [f'[project]\nname = "fh{p}"\nenvironment = "dev"']
        if p == "s":
            lines.append('[target]\nkind = "server"\n[bucket]\ntls_only = false\nnoncurrent_days = 1')
            lines.append(f'endpoint_url = "{self.w.endpoint}"\naddressing_style = "path"')
            if c["name"]:
                lines.append(f'name = "{c["name"]}"')
            if c["prefix"]:
                lines.append(f'prefix = "{c["prefix"]}"')
        else:
            lines.append('[target]\nkind = "local"\n[bucket]')
            if c["path"]:
                lines.append(f'path = "{self.place(c["path"], p)}"')
        if c["backup"]:
            lines.append(f'backup = "{self.place(c["backup"], p)}"')
        lines.append('[database]\nschemas = ["raw"]')
        if p == "s":
            lines.append('admin_dsn_env = "AIRFLOW_INFRA_ADMIN_DSN"')
        self.dir(p).mkdir(parents=True, exist_ok=True)
        text = "\n".join(lines) + "\n"
        (self.dir(p) / "airflow-infra.toml").write_text(text)
        self.places_used[p].add(self.bucket_place(p))
        self.transcript.append(f"cat > proj_{p}/airflow-infra.toml <<'EOF'\n{text}EOF")

    # -- running the CLI -------------------------------------------------------------------------------------
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not (k.startswith("AIRFLOW_INFRA_") and "__" in k)}
        env["AIRFLOW_INFRA_HOME"] = str(self.w.home)
        return env

    def argv(self, p: str, *args: str) -> list[str]:
        self.transcript.append(f"airflow-infra -C proj_{p} {' '.join(args)}")
        return [sys.executable, "-m", "airflow_infra", "-C", str(self.dir(p)), *args]

    def popen(self, p: str, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            self.argv(p, *args),
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def run(self, p: str, *args: str, ok: tuple[int, ...] = (0,), timeout: float = 60) -> subprocess.CompletedProcess:
        before = self.others(p)
        try:
            proc = subprocess.run(
                self.argv(p, *args),
                env=self.env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:  # §5.3: every wait is bounded by --lock-timeout
            self.fail(f"{args} still ran after {timeout} s")
        written = len(self.backups)
        self.seen(proc, ok)
        self.check_others(p, before)
        if "--into" not in args:  # restore --into: the other project's settings apply
            self.backups_where_configured(p, self.backups[written:])
        STATS["commands"] += 1
        STATS["failed commands"] += proc.returncode not in ok
        return proc

    def seen(self, proc: subprocess.CompletedProcess, ok: tuple[int, ...] = (0,)) -> None:
        """(d) and (e) on one finished command; its backups noted."""
        self.transcript.append(f"  # exit {proc.returncode}; stderr: {proc.stderr.strip()[:300]!r}")
        problem = one_line_failure(proc, ok)
        if problem:
            self.fail(f"(e) {problem}")
        self.refresh_passwords()
        for pw in self.passwords:
            if pw in proc.stdout or pw in proc.stderr:
                self.fail("(d) a generated password was printed")
        self.backups += [ln.split(": ", 1)[1] for ln in proc.stdout.splitlines() if ln.startswith("Backup written: ")]

    def backups_where_configured(self, p: str, new: list[str]) -> None:
        """§5.4: a setting is honoured or refused in one line, never ignored: [bucket] backup names where
        the backups of p's data go."""
        want = self.cfg[p]["backup"]
        # a database dump is a file pg_restore reads: with an s3:// backup location it stays in HOME/backups
        if want and any(
            not overlap(b, self.place(want, p)) and not (b.endswith(".dump") and want.startswith("s3://")) for b in new
        ):
            why = f"(§5.4) proj_{p}'s backups {new} are not under [bucket] backup = {self.place(want, p)}"
            self.fail(why) if p == "s" else self.known_or_fail("local-ignores-backup", why)

    def fail(self, why: str) -> None:
        STATS["violations"] += 1
        raise AssertionError(why + "\n\nTranscript of this sequence (AIRFLOW_INFRA_HOME=HOME):\n" + self.shell())

    def shell(self) -> str:
        return "\n".join(self.transcript).replace(str(self.root), ".").replace(str(self.w.home), "HOME")

    # -- rules ------------------------------------------------------------------------------------------------
    @initialize(
        paths=st.tuples(*[st.sampled_from(LOCAL_PATHS)] * 2),
        backup=st.sampled_from(BACKUPS),
        s3place=st.sampled_from(S3_PLACES),
        order=st.permutations(PROJECTS),
        foreign=st.sampled_from(FOREIGN),
        local_backup=st.sampled_from([None, "bk", "d3/bk"]),
    )
    def configure(self, paths, backup, s3place, order, foreign, local_backup):
        """Three projects configured from the pool and brought up in some order: where users start."""
        for p, path in zip("ab", paths, strict=True):
            self.cfg[p] = {"path": path, "backup": local_backup}
        self.cfg["s"] = {"name": s3place[0], "prefix": s3place[1], "backup": backup}
        for p in PROJECTS:
            self.write_config(p)
        for p in order:
            self.run(p, "up")
        for p in order:  # users have data from the start: that is what every later step puts at risk
            self.write_data(p, 2, True)
        self.foreign_object(foreign)

    @rule(p=st.sampled_from(PROJECTS))
    def up(self, p):
        self.run(p, "up")

    @rule(p=st.sampled_from(PROJECTS))
    def plan(self, p):
        self.run(p, "plan", "--detailed-exitcode", ok=(0, 2))

    @rule(p=st.sampled_from(PROJECTS), force=st.booleans())
    def apply(self, p, force):
        self.run(p, "apply", "--auto-approve", *(["--force-delete-data"] if force else []))

    @rule(p=st.sampled_from(PROJECTS), force=st.booleans())
    def destroy(self, p, force):
        self.run(p, "destroy", "--auto-approve", *(["--force-delete-data"] if force else []))

    @rule(p=st.sampled_from(PROJECTS))
    def rotate(self, p):
        self.run(p, "rotate")

    @rule(
        p=st.sampled_from(PROJECTS), i=st.integers(0, 7), force=st.booleans(), into=st.sampled_from([None, *PROJECTS])
    )
    def restore(self, p, i, force, into):
        if self.backups:
            extra = (["--force-delete-data"] if force else []) + (["--into", str(self.dir(into))] if into else [])
            self.run(p, "restore", self.backups[i % len(self.backups)], *extra)

    @rule(p=st.sampled_from(PROJECTS), i=st.integers(0, 3))
    def state_restore(self, p, i):
        proc = self.run(p, "state", "versions", "--json")
        if proc.returncode == 0:
            serials = sorted(v["serial"] for v in json.loads(proc.stdout))
            if serials:
                self.run(p, "state", "restore", str(serials[i % len(serials)]))

    @rule(p=st.sampled_from(PROJECTS))
    def force_unlock(self, p):
        lock = self.lock_id(p)
        if lock:
            self.run(p, "force-unlock", lock)

    def lock_id(self, p: str) -> str | None:
        """The lock's ID as the CLI names it (for an unreadable lock file: from the error message)."""
        proc = self.run(p, "state", "lock", "--json", ok=(0, 1))
        found = re.search(r"force-unlock (\S+?)`", proc.stderr) or re.search(r'"ID": "([^"]+)"', proc.stdout)
        return found.group(1) if found else None

    @rule(
        p=st.sampled_from(PROJECTS),
        cmd=st.sampled_from(["apply", "destroy", "up"]),
        delay=st.sampled_from([0.3, 0.4, 0.45, 0.5, 0.6, 0.8]),
    )
    def kill(self, p, cmd, delay):
        """SIGKILL a run at a random moment: what it leaves must be completed or refused, never lost."""
        args = {
            "apply": ["apply", "--auto-approve"],
            "destroy": ["destroy", "--auto-approve", "--force-delete-data"],
            "up": ["up"],
        }[cmd]
        proc = self.popen(p, *args)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        self.transcript.append(f"  # SIGKILL after {delay} s (exit {proc.returncode})")
        self.backups += [ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("Backup written: ")]
        STATS["kills"] += 1

    @rule(
        p=st.sampled_from(PROJECTS),
        delay=st.sampled_from([0.35, 0.45, 0.55, 0.7]),
        second=st.sampled_from(["apply", "destroy", "rotate"]),
    )
    def pause(self, p, delay, second):
        """SIGSTOP an apply, force-unlock its lock, run another command, SIGCONT: the stale holder must not
        write (§5.3: a take-over fences)."""
        proc = self.popen(p, "apply", "--auto-approve")
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGSTOP)
        self.transcript.append(f"  # SIGSTOP after {delay} s")
        STATS["pauses"] += 1
        state = self.dir(p) / STATE
        try:
            holder = json.loads((self.dir(p) / ".airflow-infra/state.lock").read_text())
        except (OSError, ValueError):
            holder = {}
        taken = holder.get("pid") == proc.pid
        args = {
            "apply": ["apply", "--auto-approve"],
            "destroy": ["destroy", "--auto-approve", "--force-delete-data"],
            "rotate": ["rotate"],
        }[second]
        try:
            if taken:  # refused (exit 1) when the stopped run holds the state's guard mid-write: then it keeps the lock
                taken = self.run(p, "force-unlock", holder["ID"], ok=(0, 1)).returncode == 0
            self.run(p, "--lock-timeout", "3s", *args, ok=(0, 1), timeout=40)
            after_second = state.read_bytes() if state.exists() else None
        finally:  # whatever happened meanwhile, the stopped run goes on: it must never block the next example
            os.killpg(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=60)
        self.transcript.append(f"  # SIGCONT: the paused apply ended with exit {proc.returncode}")
        self.seen(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        now = state.read_bytes() if state.exists() else None
        if taken and now != after_second:
            self.known_or_fail("stale-holder-writes", "(§5.3) a force-unlocked run wrote the state after SIGCONT")
            self.serials[p] = {}  # re-baseline: the stale write is counted, not failed on again

    @rule(p=st.sampled_from(PROJECTS), n=st.integers(1, 3), sub=st.booleans())
    def write_data(self, p, n, sub):
        """The user loads rows and drops a file into the bucket: the data every check is about."""
        self.write_rows(p, n)
        self.write_object(p, sub)

    def write_rows(self, p, n):
        """The user loads rows as the project's etl role."""
        import psycopg

        pw = self.secret(f"fh{p}/dev/fh{p}_etl")
        server = self.w.session if p == "s" else self.w.local
        if pw is None:
            return
        values = [f"row-{self.n}-{secrets.token_hex(4)}" for _ in range(n)]
        try:
            with psycopg.connect(
                host="127.0.0.1",
                port=server.port,
                user=f"fh{p}_etl",
                password=pw,
                dbname=f"fh{p}",
                connect_timeout=5,
                autocommit=True,
            ) as c:
                c.execute("CREATE TABLE IF NOT EXISTS raw.user_rows (v text)")
                for v in values:
                    c.execute("INSERT INTO raw.user_rows VALUES (%s)", (v,))
        except psycopg.Error:
            return
        self.transcript.append(f'psql -U fh{p}_etl fh{p} -c "INSERT INTO raw.user_rows ..."  # {n} rows')
        self.items += [Item("row", f"{'session' if p == 's' else 'local'}/fh{p}", v, p) for v in values]

    def write_object(self, p, sub):
        """The user writes a file/object into the project's bucket (only where it exists)."""
        content = f"obj-{self.n}-{secrets.token_hex(6)}"
        key = ("in/" if sub else "") + content + ".txt"
        where = self.bucket_place(p)
        if where.startswith("s3://"):
            bucket, prefix = where[5:].split("/", 1)
            try:
                self.s3().put_object(Bucket=bucket, Key=prefix + key, Body=content.encode())
            except self.s3().exceptions.ClientError:
                return
            self.items.append(Item("s3", f"{bucket}/{prefix}{key}", content, p))
        else:
            if not Path(where).is_dir():
                return
            (Path(where) / key).parent.mkdir(exist_ok=True)
            (Path(where) / key).write_text(content)
            self.items.append(Item("file", str(Path(where) / key), content, p))
        self.transcript.append(f"echo {content} > {where.rstrip('/')}/{key}")

    @rule(place=st.sampled_from(FOREIGN))
    def foreign_object(self, place):
        """Someone else's data in a place of the pool: no project may take it without a backup."""
        content = f"other-{self.n}-{secrets.token_hex(6)}"
        if place.startswith("s3://"):
            key = place[len("s3://fh-shared/") :] + "/" + content
            self.s3().put_object(Bucket=SHARED, Key=key, Body=content.encode())
            self.items.append(Item("s3", f"{SHARED}/{key}", content, "other"))
        else:
            d = Path(self.place(place, "other"))
            d.mkdir(parents=True, exist_ok=True)
            (d / content).write_text(content)
            self.items.append(Item("file", str(d / content), content, "other"))
        self.transcript.append(f"echo {content} > {place}/{content}")

    @rule(
        p=st.sampled_from(PROJECTS),
        what=st.sampled_from(
            ["state-garbage", "state-delete", "lock-empty", "secret-mangle", "secret-delete", "secrets-file-delete"]
        ),
    )
    def break_by_hand(self, p, what):
        state, store = self.dir(p) / STATE, self.w.home / "secrets.json"
        self.transcript.append(f"# by hand: {what} of proj_{p}")
        if what == "state-garbage" and state.exists():
            state.write_text('{"serial": ')
        elif what == "state-delete":
            state.unlink(missing_ok=True)
            self.serials[p] = {}  # a new lineage starts from 0: not a serial going back
        elif what == "lock-empty":
            state.parent.mkdir(parents=True, exist_ok=True)
            (state.parent / "state.lock").write_text("")
        elif what.startswith("secret-") and store.exists():
            doc = json.loads(store.read_text())
            ref = f"fh{p}/dev/fh{p}_etl"
            if ref in doc and what == "secret-mangle":
                doc[ref] = ""
            doc.pop(ref, None) if what == "secret-delete" else None
            store.write_text(json.dumps(doc))
        elif what == "secrets-file-delete":
            store.unlink(missing_ok=True)

    @rule(
        p=st.sampled_from(PROJECTS),
        path=st.sampled_from(LOCAL_PATHS),
        s3place=st.sampled_from(S3_PLACES),
        backup=st.sampled_from(BACKUPS),
    )
    def reconfigure(self, p, path, s3place, backup):
        """The user edits [bucket]: a new place replaces the bucket (data only with the flag and a backup)."""
        if p == "s":
            self.cfg[p].update(name=s3place[0], prefix=s3place[1], backup=backup)
        else:
            self.cfg[p].update(path=path, backup=backup if backup is None or not backup.startswith("s3:") else None)
        self.write_config(p)

    # -- invariants -------------------------------------------------------------------------------------------
    @invariant()
    def nothing_vanished(self):
        """(a) every item is where it was written, or in a complete backup; (c) serials; (d) files."""
        if not self.cfg:
            return
        STATS["steps"] += 1
        self.backups_kept()
        live = self.live()
        index: set[str] | None = None
        for item in self.items:
            if item.content in live:
                item.seen = ["live"]
                continue
            index = self.backup_index() if index is None else index
            if item.content in index:
                item.seen = [b for b, found in self._located.items() if item.content in found]
                continue
            self.lost(item)
        for p in PROJECTS:
            self.check_state(p)

    def backups_kept(self) -> None:
        """(a) a backup, once written, stays: the only copy of what was deleted."""
        for b in [b for b in self.backups if b not in self.gone]:
            if b.startswith("s3://"):
                bucket, key = b[5:].split("/", 1)
                try:
                    self.s3().head_object(Bucket=bucket, Key=key)
                    continue
                except Exception:  # noqa: BLE001 - gone or unreadable: either way not a backup any more
                    pass
            elif Path(b).exists():
                continue
            self.gone.add(b)
            if any(overlap(b, pl) for used in self.places_used.values() for pl in used):
                self.gone_in_bucket = True
                self.known_or_fail("backup-inside-bucket", f"(a) backup {b} vanished: it lay inside a bucket")
            else:
                self.fail(f"(a) backup {b} vanished")

    def lost(self, item: Item) -> None:
        where = item.where if item.kind != "s3" else "s3://" + item.where
        others = {pl for q, used in self.places_used.items() if q != item.owner for pl in used}
        if self.gone_in_bucket or (
            item.seen
            and item.seen != ["live"]
            and all(any(overlap(b, pl) for q in PROJECTS for pl in self.places_used[q]) for b in item.seen)
        ):
            self.known_or_fail("backup-inside-bucket", f"(a) {item} vanished: its only backups lay in a bucket")
        elif any(overlap(where.rsplit("/", 1)[0], pl) for pl in others):
            self.known_or_fail("overlapping-buckets", f"(a) {item} vanished: its place overlaps another project's")
        else:
            self.fail(f"(a) {item} vanished without a backup")
        self.items.remove(item)

    def known_or_fail(self, defect: str, why: str) -> None:
        if defect not in KNOWN_DEFECTS:
            self.fail(why)
        STATS[f"known:{defect}"] += 1
        self.transcript.append(f"  # known defect {defect}: {why}")

    def live(self) -> set[str]:
        found: set[str] = set()
        for item in self.items:
            if item.kind == "file":
                with contextlib.suppress(OSError):
                    found.add(Path(item.where).read_text())
            elif item.kind == "s3":
                bucket, key = item.where.split("/", 1)
                with contextlib.suppress(Exception):
                    found.add(self.s3().get_object(Bucket=bucket, Key=key)["Body"].read().decode())
        for where in {i.where for i in self.items if i.kind == "row"}:
            server = self.w.session if where.startswith("session/") else self.w.local
            with contextlib.suppress(Exception), server.connect(where.split("/")[1]) as c:
                found |= {r[0] for r in c.execute("SELECT v FROM raw.user_rows")}
        return found

    def backup_index(self) -> set[str]:
        """What every complete backup holds: archive members, dump rows, manifest objects (cached per file)."""
        self._located: dict[str, set[str]] = {}
        for base in (self.root, self.w.home / "backups", self.w.home / "buckets"):
            for f in base.rglob("*") if base.exists() else []:
                if f.name.endswith((".tar.gz", ".dump", ".manifest.json")) and f.is_file():
                    self._located[str(f)] = self.cached(f)
        s3 = self.s3()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=SHARED):
            for o in page.get("Contents", []):
                if o["Key"].endswith(".manifest.json"):
                    self._located[f"s3://{SHARED}/{o['Key']}"] = self.s3_manifest(o["Key"])
        return set().union(*self._located.values()) if self._located else set()

    def cached(self, f: Path) -> set[str]:
        st_ = f.stat()
        key = (str(f), st_.st_mtime_ns, st_.st_size)
        if key not in self._archives:
            self._archives[key] = self.read_backup(f)
        return self._archives[key]

    def read_backup(self, f: Path) -> set[str]:
        out: set[str] = set()
        try:
            if f.name.endswith(".dump"):
                text = subprocess.run(
                    [str(self.w.local.bindir / "pg_restore"), "-f", "-", str(f)],
                    capture_output=True,
                    text=True,
                    timeout=60,
                ).stdout
                return set(re.findall(r"row-\d+-[0-9a-f]{8}", text))
            if f.name.endswith(".manifest.json"):
                for v in json.loads(f.read_text()).get("versions", []):
                    with contextlib.suppress(OSError, KeyError):
                        out.add((f.parent / v["Object"]).read_text())
                return out
            with tarfile.open(f, "r:gz") as tar:
                for m in tar.getmembers():
                    data = tar.extractfile(m).read() if m.isfile() else b""
                    out.add(data.decode(errors="replace"))
                    if m.name.endswith((".tar.gz", ".dump")):  # a backup that was backed up with its bucket
                        tmp = Path(tempfile.mkdtemp()) / Path(m.name).name
                        tmp.write_bytes(data)
                        out |= self.read_backup(tmp)
                        shutil.rmtree(tmp.parent)
        except (OSError, tarfile.TarError, ValueError, EOFError):
            pass
        return out

    def s3_manifest(self, key: str) -> set[str]:
        s3, out = self.s3(), set()
        with contextlib.suppress(Exception):
            doc = json.loads(s3.get_object(Bucket=SHARED, Key=key)["Body"].read())
            base = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
            for v in doc.get("versions", []):
                with contextlib.suppress(Exception):
                    out.add(s3.get_object(Bucket=SHARED, Key=base + v["Object"])["Body"].read().decode())
        return out

    def check_state(self, p: str) -> None:
        """(c) serial never goes back within a lineage; (d) no password in the state's files."""
        folder = self.dir(p) / ".airflow-infra"
        for f in folder.iterdir() if folder.exists() else []:
            text = f.read_text(errors="replace")
            if any(pw in text for pw in self.passwords):
                self.fail(f"(d) a generated password is in {f}")
        try:
            doc = json.loads((self.dir(p) / STATE).read_text())
            lineage, serial = doc["lineage"], int(doc["serial"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if serial < self.serials[p].get(lineage, -1):
            self.fail(f"(c) proj_{p}'s serial went back from {self.serials[p][lineage]} to {serial}")
        self.serials[p][lineage] = serial

    def secret(self, ref: str) -> str | None:
        try:
            return json.loads((self.w.home / "secrets.json").read_text()).get(ref) or None
        except (OSError, ValueError):
            return None

    def refresh_passwords(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.passwords |= {
                v
                for v in json.loads((self.w.home / "secrets.json").read_text()).values()
                if isinstance(v, str) and len(v) >= 16
            }

    def others(self, p: str) -> dict:
        """(b) what a command on p must leave alone: the other projects' state folders, markers, secrets, roles."""
        snap: dict = {}
        for q in PROJECTS:
            if q == p:
                continue
            folder = self.dir(q) / ".airflow-infra"
            for f in folder.iterdir() if folder.exists() else []:
                if f.name.startswith("state"):
                    snap[str(f)] = f.read_bytes()
            if q != "s":  # q's marker, where q's bucket is (only when it names q: p may share the place)
                with contextlib.suppress(OSError):
                    marker = (Path(self.bucket_place(q)) / ".airflow-infra-bucket").read_text()
                    if f"project fh{q}," in marker:
                        snap[f"marker of {q}"] = marker
            for role in ("etl", "reader"):
                snap[f"secret {q} {role}"] = self.secret(f"fh{q}/dev/fh{q}_{role}")
            server = self.w.session if q == "s" else self.w.local
            with server.connect() as c:
                snap[f"roles {q}"] = c.execute(
                    "SELECT rolname, rolpassword FROM pg_authid WHERE rolname LIKE %s ORDER BY 1", (f"fh{q}\\_%",)
                ).fetchall()
        return snap

    def check_others(self, p: str, before: dict) -> None:
        after = self.others(p)
        changed = sorted(k for k in before if before[k] != after.get(k))
        if changed:
            self.fail(f"(b) a command on proj_{p} changed what another project owns: {changed}")


@pytest.fixture(scope="module")
def harness_home(server, moto_endpoint, admin_dsn):
    path = Path(tempfile.mkdtemp(prefix="airflow-infra-harness-"))
    local = LocalServer(path)
    local.start()
    try:
        yield World(path, local, server, path / "examples", moto_endpoint)
    finally:
        local.stop()
        shutil.rmtree(path, ignore_errors=True)


def test_fault_harness(harness_home, capsys):
    global WORLD
    WORLD = harness_home
    started = time.monotonic()
    try:
        run_state_machine_as_test(
            seed(SEED)(FaultHarness),
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                derandomize=False,
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
            ),
        )
    finally:
        STATS["seconds"] = round(time.monotonic() - started)
        with capsys.disabled():  # the figures of this run in the CI log, past pytest's capture
            print(f"\nfault harness (seed {SEED}): " + ", ".join(f"{k} {v}" for k, v in sorted(STATS.items())))
        if REPORT:
            Path(REPORT).write_text(json.dumps(dict(STATS), sort_keys=True))
