"""The managed local PostgreSQL server: initdb, start/stop, port, connect (its programs are found by
binaries.py, the account it runs as is account.py's). Above 450 lines: one server's lifecycle, whose
steps share its data directory's lock and the info file they keep true.

One server per AIRFLOW_INFRA_HOME (home/postgres/), holding one database per project. It
listens on 127.0.0.1 only, on a free port chosen at initdb (never 5432 unless asked: Airflow's
own metadata database often sits there), with scram-sha-256 password authentication and no
Unix socket. PostgreSQL refuses to run as root, so under root the server runs as an
unprivileged account (AIRFLOW_INFRA_PG_USER, else "postgres" when it exists, else "nobody").
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path

from .. import children, scram
from ..children import minimal_env
from ..errors import BinariesNotFound, LocalServerError, PortInUse
from ..files import read_text
from ..flock import exclusive
from ..home import ensure_dir
from ..pgerrors import connected, password_refused, refusal, translated
from ..pids import pid_alive
from ..secretstores.file import FileSecretStore
from .account import _Account, _blocked, _make_traversable, _service_account
from .binaries import _candidates, _has_binaries, _major, find_bindir, free_port, port_in_use, server_version

SUPERUSER = "airflow_infra"
SUPERUSER_REF = "local/superuser"

_RECOVERY = threading.Lock()
_SETTINGS_MARK = "# written by airflow-infra"


def _settings(port: int) -> str:
    """What makes the server ours: loopback only, no Unix socket, SCRAM passwords."""
    return (
        f"\n{_SETTINGS_MARK}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
        f"port = {port}\npassword_encryption = 'scram-sha-256'\n"
    )


def _postmaster_without_pidfile(data: Path) -> int | None:
    """A live process working in data whose parent does not (the postmaster, not a backend)."""
    if not Path("/proc/self/cwd").exists() or (data / "postmaster.pid").exists():
        return None
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _is_postmaster_of(int(entry), data):
            pids.add(int(entry))
    for pid in sorted(pids):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent not in pids:
            return pid
    return None


def _is_postmaster_of(pid: int, data: Path) -> bool:
    """Whether pid is a live process working in data (a postmaster chdirs into its data directory).
    Without /proc (macOS) the best left is whether the pid is alive."""
    if not Path("/proc/self/cwd").exists():
        return pid_alive(pid)
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":  # a shell cd'd there is not a server
            return False
        return Path(os.readlink(f"/proc/{pid}/cwd")) == data.resolve()
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        # gone, a zombie, or another user's process: our server runs as us, or (under root) we see all
        return False


class LocalServer:
    """The server's data directory is the truth: server.json (port, binaries, account) is a cache
    of it that can be rebuilt. A data directory holding a cluster (PG_VERSION) is never removed or
    re-initialised here; initdb runs only where no data directory exists (or an empty one)."""

    def __init__(self, home: Path, *, pg_bindir: str | None = None):
        self.home = home
        self.dir = home / "postgres"
        self.data = self.dir / "data"
        self.info_path = self.dir / "server.json"
        self.log_path = self.dir / "server.log"
        self._pg_bindir = pg_bindir
        self.secrets = FileSecretStore(home)
        self._checked = False  # server.json compared with the cluster once per instance

    # -- facts ---------------------------------------------------------------------------
    def has_cluster(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def info(self) -> dict | None:
        """server.json; rebuilt from the cluster when it is missing or unreadable; None when
        there is no cluster (nothing initialised yet)."""
        doc = self._read_info()
        if not self.has_cluster():
            return doc
        if doc is not None and (self._checked or self._agrees(doc)):
            self._checked = True
            return doc
        with _RECOVERY:  # once per process, whatever the number of threads asking
            doc = self._read_info()
            if doc is None or not self._agrees(doc):
                doc = self._recover_info()
            self._checked = True
            return doc

    def _read_info(self) -> dict | None:
        try:
            doc = json.loads(read_text(self.info_path))
        except (OSError, ValueError):
            return None
        port = doc.get("port") if isinstance(doc, dict) else None
        if (
            isinstance(port, int)
            and not isinstance(port, bool)
            and 0 < port < 65536
            and isinstance(doc.get("bindir"), str)
            and isinstance(doc.get("account"), (str, type(None)))
        ):
            return doc
        return None

    def _agrees(self, doc: dict) -> bool:
        """Whether server.json says what the cluster says: its port (the running server's, else the
        configured one), binaries that exist, the account that owns the data directory."""
        if doc["port"] != self._cluster_port():
            return False
        if not _has_binaries(Path(doc["bindir"])):
            return False
        if os.geteuid() != 0:
            return doc.get("account") is None
        try:
            return doc.get("account") is not None and pwd.getpwnam(doc["account"]).pw_uid == self.data.stat().st_uid
        except KeyError:
            return False

    def _recover_info(self) -> dict:
        """server.json from the data directory: the port the server runs on (or is configured
        for), the binaries of its major version, the account that owns it."""
        major = (self.data / "PG_VERSION").read_text().strip()
        bindir = self._bindir_for(major)
        port = self._cluster_port()
        conf = (self.data / "postgresql.conf").read_text()
        if _SETTINGS_MARK not in conf:  # an initdb stopped before our settings were written
            port = port or free_port()
            with open(self.data / "postgresql.conf", "a") as f:
                f.write(_settings(port))
        elif port is None:
            port = free_port()
            with open(self.data / "postgresql.conf", "a") as f:
                f.write(f"\nport = {port}\n")
        account = None
        if os.geteuid() == 0:
            account = pwd.getpwuid(self.data.stat().st_uid).pw_name
        info = {"port": int(port), "bindir": str(bindir), "version": server_version(bindir), "account": account}
        self._write_info(info)
        logging.getLogger(__name__).warning(
            "%s was missing, unreadable or disagreed with the cluster: rebuilt from the data directory "
            "(PostgreSQL %s, port %s)",
            self.info_path,
            major,
            port,
        )
        return info

    def _bindir_for(self, major: str) -> Path:
        """Binaries that can run a cluster of this major version: those that last ran it
        (postmaster.opts names the executable), else the first installation of that version."""
        found: list[Path] = []
        if os.geteuid() != 0:  # under root the file is the service account's to write: never run what it names
            try:
                exe = shlex.split((self.data / "postmaster.opts").read_text())[0]
                found.append(Path(exe).parent)
            except (OSError, ValueError, IndexError):
                pass
        if self._pg_bindir:
            found.append(Path(self._pg_bindir).expanduser())
        found += _candidates()
        for c in found:
            if _has_binaries(c) and _major(server_version(c)) == major:
                return c.resolve()
        raise BinariesNotFound(
            f"{self.data} holds a PostgreSQL {major} cluster and no PostgreSQL {major} binaries were found "
            "(looked at postmaster.opts, [target] pg_bindir, PATH, /usr/lib/postgresql/*/bin and pgserver): "
            f"install PostgreSQL {major}, or set [target] pg_bindir; the data directory was left as it is"
        )

    def _cluster_port(self) -> int | None:
        """The port the running server listens on (postmaster.pid), else the one it is configured for."""
        running = self._pidfile_field(3) if self.running_pid() is not None else None
        return running or self._configured_port()

    def _configured_port(self) -> int | None:
        """The last `port = N` of postgresql.conf and postgresql.auto.conf (the later file wins)."""
        port = None
        for name in ("postgresql.conf", "postgresql.auto.conf"):
            try:
                text = read_text(self.data / name)
            except OSError:
                continue
            for m in re.finditer(r"^\s*port\s*=\s*'?(\d+)'?", text, re.M):
                port = int(m.group(1))
        return port

    def _info(self) -> dict:
        """info(), where a cluster must exist."""
        info = self.info()
        if info is None:
            raise LocalServerError("the local PostgreSQL server is not initialised: run `airflow-infra local start`")
        return info

    @property
    def port(self) -> int:
        return int(self._info()["port"])

    @property
    def bindir(self) -> Path:
        info = self.info()
        return Path(info["bindir"]) if info else find_bindir(self._pg_bindir)

    def _pidfile_field(self, n: int) -> int | None:
        try:
            return int(read_text(self.data / "postmaster.pid").split("\n")[n])
        except (OSError, ValueError, IndexError):
            return None

    def running_pid(self) -> int | None:
        """The postmaster of this data directory, by identity: the pid postmaster.pid names is a
        live process whose working directory is this data directory (a postmaster chdirs there).
        After a reboot that pid may be any other process: then the server is not running."""
        pid = self._pidfile_field(0)
        if pid is None or pid <= 0:
            return None
        return pid if _is_postmaster_of(pid, self.data) else None

    def status(self) -> dict:
        info = self.info() or {}
        pid = self.running_pid()
        return {
            "initialised": bool(info),
            "running": pid is not None,
            "pid": pid,
            "host": "127.0.0.1",
            "port": info.get("port"),
            "version": info.get("version"),
            "bindir": info.get("bindir"),
            "data_dir": str(self.data),
            "log": str(self.log_path),
        }

    # -- lifecycle -----------------------------------------------------------------------
    @contextmanager
    def _locked(self):
        ensure_dir(self.home)
        # held for a start (initdb included) or a stop: three minutes' wait means its holder is stopped
        with exclusive(self.home / ".postgres.lock", timeout=180, what="the local server's lock"):
            yield

    def _run(
        self, args: list[str], account: _Account | None, *, quiet_output: bool = False
    ) -> subprocess.CompletedProcess:
        kwargs: dict = {"cwd": self.dir}
        if account is not None:
            kwargs.update(user=account.uid, group=account.gid, extra_groups=[])
        # pg_ctl start leaves the postmaster holding inherited pipes: never capture its output.
        if quiet_output:
            kwargs.update(stdout=subprocess.DEVNULL)
        return children.run(args, what=Path(args[0]).name, timeout=120, check=False, error=LocalServerError, **kwargs)

    def _initdb(self, port: int | None) -> None:
        """A new cluster, made beside the data directory and renamed into place when complete, so
        that an interrupted initdb leaves nothing that looks like a cluster; or made in the empty
        data directory the user made (not atomic then: see the note in the session's issue)."""
        if self.data.exists() and any(self.data.iterdir()):
            raise LocalServerError(
                f"{self.data} is not empty but holds no PostgreSQL cluster (no PG_VERSION): move it away "
                "to start a new server; nothing was changed"
            )
        bindir = find_bindir(self._pg_bindir)
        account = _service_account()
        ensure_dir(self.dir)
        # An empty data directory the user made (a link to a bigger disk, say) is used as it is;
        # otherwise initdb runs beside it and is renamed into place when complete.
        direct = self.data.exists()
        into = self.data.resolve() if direct else self.dir / "data.initdb"
        if not direct and into.exists():
            shutil.rmtree(into)  # an interrupted initdb's: never renamed to data/, never started
        if account is not None:
            os.chown(self.dir, account.uid, account.gid)
            if direct:
                os.chown(into, account.uid, account.gid)
                os.chmod(into, 0o700)
                _make_traversable(into, account, self.home)
            _make_traversable(self.dir, account, self.home)
            if any(_blocked(d, account) for d in [*bindir.parents, bindir]):
                # e.g. the pgserver wheel inside a virtualenv under /root: copy the installation
                # (about 35 MB, once) where the service account can reach it.
                bindir = self._private_copy(bindir)
            _make_traversable(bindir, account, self.home)
        password = self.secrets.get_or_create(SUPERUSER_REF)
        pwfile = self.dir / ".pwfile"
        pwfile.unlink(missing_ok=True)  # an interrupted initdb's
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if account is not None:
            os.chown(pwfile, account.uid, account.gid)
        try:
            # --no-sync: the files are flushed by _sync_in_background() while the server starts.
            proc = self._run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(into),
                    "-U",
                    SUPERUSER,
                    "--no-sync",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ],
                account,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise LocalServerError(f"initdb failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        port = port or free_port()
        with open(into / "postgresql.conf", "a") as f:
            f.write(_settings(port))
        if not direct:
            os.rename(into, self.data)
        self._write_info(
            {
                "port": port,
                "bindir": str(bindir),
                "version": server_version(bindir),
                "account": account.name if account else None,
            }
        )

    def _private_copy(self, bindir: Path) -> Path:
        """Copy a PostgreSQL installation under home; the pgserver wheel's binaries find their
        libraries at $ORIGIN/../../../pgserver.libs, so that layout is kept."""
        install = bindir.parent
        libs = install.parent.parent / "pgserver.libs"
        root = self.home / "pg-install"
        dest = root / install.parent.name / install.name if libs.is_dir() else root / install.name
        shutil.copytree(install, dest, symlinks=True, dirs_exist_ok=True)
        if libs.is_dir():
            shutil.copytree(libs, root / libs.name, symlinks=True, dirs_exist_ok=True)
        return dest / bindir.name

    @staticmethod
    def _account(info: dict) -> _Account | None:
        """The account recorded at initdb: the data directory belongs to it."""
        if os.geteuid() != 0:
            return None
        if info.get("account"):
            pw = pwd.getpwnam(info["account"])
            return _Account(pw.pw_uid, pw.pw_gid, pw.pw_name)
        return _service_account()

    def _write_info(self, info: dict) -> None:
        if self.info_path.is_dir() and not self.info_path.is_symlink():
            raise LocalServerError(
                f"{self.info_path} is a directory, not the server's cache file: move it aside "
                "(the next command writes the file again from the cluster); nothing was changed"
            )
        tmp = self.info_path.with_name(f".{self.info_path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(info, sort_keys=True, indent=2) + "\n")
        os.replace(tmp, self.info_path)  # replaces a link itself, never writes through it

    def set_port(self, port: int) -> None:
        info = self.info()
        if info is None or info["port"] == port:
            return
        if self.running_pid() is not None:
            raise LocalServerError(
                f"the local server is running on port {info['port']}: `airflow-infra local stop` first"
            )
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"port = {port}\n")
        self._write_info({**info, "port": port})

    def start(self, *, port: int | None = None) -> dict:
        """Initialise (only when there is no cluster) and start the server; a no-op when it runs."""
        # pg_ctl starts the server through /bin/sh with the data directory and log file in double quotes,
        # where these characters are not themselves: such a path is refused before anything is made
        unsafe = sorted({ch for ch in f"{self.data}{self.log_path}" if ch in '"$`\\\n'})
        if unsafe:
            raise LocalServerError(
                f"AIRFLOW_INFRA_HOME {self.home}: the local PostgreSQL cannot live under a path holding "
                f"{' '.join(repr(c) for c in unsafe)} (pg_ctl hands it to a shell): choose a home without them; "
                "no server was made or started"
            )
        with self._locked():
            fresh = not self.has_cluster()
            if fresh:
                if port is not None and port_in_use(port):
                    raise PortInUse(
                        f"--port {port}: 127.0.0.1:{port} is in use by another program; choose another port"
                    )
                self._initdb(port)
            elif port is not None:
                self.set_port(port)
            if self.running_pid() is None:
                info = self._info()
                self._remove_stale_pidfile()
                orphan = _postmaster_without_pidfile(self.data)
                if orphan is not None:
                    raise LocalServerError(
                        f"a PostgreSQL of {self.data} runs as pid {orphan} but its postmaster.pid is gone (removed by "
                        f"hand?): stop it with `kill -INT {orphan}`, then run `airflow-infra local start`; "
                        "nothing was started"
                    )
                if port_in_use(info["port"]):
                    raise PortInUse(
                        f"127.0.0.1:{info['port']} is in use by another program, so the local PostgreSQL cannot "
                        "start there: stop that program, or move ours with `airflow-infra local start --port N`"
                    )
                account = self._account(info)
                # No -w: pg_ctl polls at 100 ms; _wait_ready polls postmaster.pid at 10 ms.
                proc = self._run(
                    [
                        str(Path(info["bindir"]) / "pg_ctl"),
                        "-D",
                        str(self.data),
                        "-l",
                        str(self.log_path),
                        "-s",
                        "start",
                    ],
                    account,
                    quiet_output=True,
                )
                if proc.returncode != 0:
                    self._fail_start()
                if fresh:
                    self._sync_in_background()
            self._wait_ready()
        return self.status()

    def _remove_stale_pidfile(self) -> None:
        """A postmaster.pid whose process is not a postmaster of this data directory (a reboot, a
        kill -9) stops PostgreSQL from starting when that pid is alive as something else."""
        pidfile = self.data / "postmaster.pid"
        if pidfile.exists() and self.running_pid() is None:
            pidfile.unlink(missing_ok=True)

    def _sync_in_background(self) -> threading.Thread:
        """fsync what initdb wrote (as initdb would have), alongside the server's start."""
        info = self._info()
        args = [str(Path(info["bindir"]) / "initdb"), "--sync-only", "-D", str(self.data)]
        t = threading.Thread(target=self._run, args=(args, self._account(info)), name="airflow-infra-initdb-sync")
        t.start()
        return t

    def _fail_start(self):
        tail = ""
        try:
            lines = self.log_path.read_text().strip().splitlines()
            tail = next((ln for ln in reversed(lines) if "FATAL" in ln or "PANIC" in ln), lines[-1])
        except (OSError, IndexError):
            pass
        raise LocalServerError(f"the local PostgreSQL did not start (see {self.log_path}): {tail}")

    def _wait_ready(self, timeout: float = 60.0) -> None:
        """Until postmaster.pid says "ready" (PostgreSQL >= 10 writes its status on line 8)."""
        deadline = time.monotonic() + timeout
        gone_since = None
        while time.monotonic() < deadline:
            try:
                lines = read_text(self.data / "postmaster.pid").split("\n")
                if len(lines) > 7 and lines[7].strip() == "ready":
                    return
            except FileNotFoundError:
                pass
            # No live postmaster for a while (not merely "not yet written its pid file"): it failed.
            if self.running_pid() is None:
                gone_since = gone_since or time.monotonic()
                if time.monotonic() - gone_since > 3.0:
                    self._fail_start()
            else:
                gone_since = None
            time.sleep(0.01)
        raise LocalServerError(f"the local PostgreSQL did not become ready within {timeout:.0f}s (see {self.log_path})")

    def start_in_background(self) -> threading.Thread:
        """Start the server on a thread while the caller goes on (a first `up` spends most of its
        time in initdb); errors are left for the caller's own start(), which reports them."""

        def run():
            with suppress(Exception):
                self.start()

        t = threading.Thread(target=run, name="airflow-infra-local-start", daemon=True)
        t.start()
        return t

    def _reset_superuser(self, works: Callable[[], bool]) -> None:
        """The superuser's password is missing from the secret store (secrets.json deleted or
        moved) or is not the server's (mangled), and without it nothing can connect. The server is
        ours: set a new password in single-user mode, PostgreSQL's own way back in, and start the
        server again; said, never silent. works() says whether the stored one logs in (another
        process may have set a new one meanwhile)."""
        from ..secretstores import new_password

        with self._locked():
            if self.secrets.get(SUPERUSER_REF) is not None and works():
                return
            info = self._info()
            account = self._account(info)
            bindir = Path(info["bindir"])
            if self.running_pid() is not None:
                proc = self._run(
                    [str(bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-s", "stop"], account
                )
                if proc.returncode != 0:
                    raise LocalServerError(
                        f"the superuser's password is missing from {self.secrets.path}, and the "
                        f"server could not be stopped to set a new one: {proc.stderr.strip()}"
                    )
            password = new_password()
            statement = f"ALTER ROLE {SUPERUSER} PASSWORD '{scram.verifier(password)}'\n"
            kwargs: dict = {"user": account.uid, "group": account.gid, "extra_groups": []} if account else {}
            proc = children.run(
                [bindir / "postgres", "--single", "-D", self.data, "postgres"],
                what="postgres --single",
                input=statement,
                cwd=self.dir,
                timeout=120,
                check=False,
                error=LocalServerError,
                **kwargs,
            )
            if proc.returncode != 0 or "ERROR" in proc.stderr:
                # the server's own words, never the STATEMENT line (it holds the new verifier)
                said = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln or "FATAL" in ln][-1:]
                raise LocalServerError(
                    f"the superuser's password is missing from {self.secrets.path}, and setting a "
                    f"new one failed: {' '.join(said) or 'postgres --single exited with an error'}"
                )
            self.secrets.put(SUPERUSER_REF, password)
        logging.getLogger(__name__).warning(
            f"the local PostgreSQL's superuser password was missing from {self.secrets.path}, or not the server's: "
            "a new one was set (the server was restarted for it); run `airflow-infra apply`, which sets the project "
            "roles' passwords where they are missing too"
        )
        self.start()

    def stop(self) -> dict:
        with self._locked():
            if self.running_pid() is not None:
                info = self._info()
                proc = self._run(
                    [str(Path(info["bindir"]) / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-s", "stop"],
                    self._account(info),
                )
                if proc.returncode != 0:
                    raise LocalServerError(f"pg_ctl stop failed: {proc.stderr.strip()}")
        return self.status()

    # -- clients -------------------------------------------------------------------------
    def connect(self, dbname: str = "postgres"):
        """A superuser connection (autocommit); starts the server on demand."""
        import psycopg

        def attempt():
            return psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                user=SUPERUSER,
                dbname=dbname,
                password=self.secrets.get(SUPERUSER_REF),
                connect_timeout=10,
                autocommit=True,
            )

        def works() -> bool:
            return refusal(attempt) is None

        if self.has_cluster() and self.secrets.get(SUPERUSER_REF) is None:
            self._reset_superuser(works)
        if self.info() is not None and self.running_pid() is not None:
            conn, why = connected(attempt)
            if conn is not None:
                return conn
            # Any other refusal: shutting down, or just started: start() below waits for it.
            if password_refused(why):
                self._reset_superuser(works)
        self.start()
        with translated(
            f"cannot connect to the local PostgreSQL on 127.0.0.1:{self.port} (`airflow-infra local status` says more)",
            error=LocalServerError,
            connecting=True,
        ):
            return attempt()

    def client_env(self) -> dict[str, str]:
        """Environment for pg_dump and friends: the password travels here, never in argv."""
        return minimal_env(
            PGHOST="127.0.0.1",
            PGPORT=str(self.port),
            PGUSER=SUPERUSER,
            PGPASSWORD=self.secrets.get(SUPERUSER_REF) or "",
        )
