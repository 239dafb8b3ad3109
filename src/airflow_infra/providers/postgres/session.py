"""The admin's sessions: one pool per process (fleet commands share it), the admin's queries, and
pg_dump/pg_restore run as the admin or a project's role."""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ... import children
from ...backups import backup_dir, stamp, written_whole
from ...children import passfile
from ...errors import ProviderError
from ...pgerrors import password_refused, refusal, translated
from ...secretstores import SecretStore


class _Pool:
    """Idle admin connections per (server, database), shared by every PgAdmin of a process that
    reaches the same server: a fleet plan over 100 projects then opens a few connections to
    `postgres`, not hundreds (each costs a backend and a SCRAM exchange)."""

    MAX_IDLE = 8  # in all: well under a server's max_connections, whatever the number of projects

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str], list[Any]] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple[str, str]) -> Any:
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                c = idle.pop()
                if not c.closed:
                    return c
        return None

    def give(self, key: tuple[str, str], conn: Any) -> None:
        from psycopg.pq import TransactionStatus

        if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
            conn.close()
            return
        with self._lock:
            self._idle.setdefault(key, []).append(conn)
            surplus = sum(map(len, self._idle.values())) - self.MAX_IDLE
            evicted = []
            for k in list(self._idle):  # oldest keys first
                while surplus > 0 and self._idle[k]:
                    evicted.append(self._idle[k].pop(0))
                    surplus -= 1
                if not self._idle[k]:
                    del self._idle[k]
        for c in evicted:
            c.close()

    def close(self, key: tuple[str, str]) -> None:
        with self._lock:
            conns = self._idle.pop(key, [])
        for c in conns:
            c.close()


POOL = _Pool()  # one per process: shared by every PgAdmin, so fleet commands share sessions


IDLE_IN_TRANSACTION = 10  # seconds; see PgAdmin.lock_timeout


class PgAdmin:
    """Admin sessions on one server (pooled), and pg_dump."""

    def __init__(
        self,
        connect: Callable[[str], Any],
        *,
        server: str,
        secrets: SecretStore,
        bindir: Callable[[], Path],
        client_env: Callable[[], dict[str, str]],
        lock_timeout: float = 0.0,
    ) -> None:
        self._connect = connect
        # Every wait on a database lock ends within the command's --lock-timeout (60 s without one:
        # 0 means "do not wait for the state lock", not "fail on a moment's wait for autovacuum"). A
        # session of ours left idle inside a transaction (its process stopped: SIGSTOP, a closed
        # lid) is ended by the server after IDLE_IN_TRANSACTION, so that its uncommitted CREATE ROLE
        # never blocks the next lock holder: our transactions never idle that long.
        self.lock_timeout = lock_timeout if lock_timeout > 0 else 60.0
        self.server = server  # identifies the server and admin role: the pool's key
        self.secrets = secrets
        self._bindir = bindir
        self._client_env = client_env
        self._superuser: bool | None = None
        self._dbs: set[str] = set()

    @contextmanager
    def session(self, dbname: str = "postgres") -> Iterator[Any]:
        """An autocommit admin connection to dbname, for this block only."""
        key = (self.server, dbname)
        self._dbs.add(dbname)
        conn = POOL.take(key)
        if conn is None:
            conn = self._connect(dbname)
            conn.execute(
                "SELECT set_config('lock_timeout', %s, false), "
                "set_config('idle_in_transaction_session_timeout', %s, false)",
                (f"{int(min(self.lock_timeout, 86400) * 1000)}ms", f"{IDLE_IN_TRANSACTION * 1000}ms"),
            )
        try:
            yield conn
        finally:
            POOL.give(key, conn)

    # A session still logging in (its client stopped between the startup packet and the password: a
    # paused run) is not in pg_stat_activity yet but holds a virtual transaction id. DROP DATABASE waits
    # for every backend of the server to answer a ProcSignalBarrier (PostgreSQL 15+), which such a
    # backend does only once logged in, or ended by the server's authentication_timeout (1 min by
    # default): not a lock wait, so lock_timeout does not bound it (invariant 3, docs/architecture.md).
    _LOGGING_IN = """SELECT l.pid FROM pg_locks l WHERE l.locktype = 'virtualxid' AND l.pid IS NOT NULL
                     AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.pid = l.pid)"""
    _STUCK = 1.0  # seconds a login is seen to last before it counts as stopped (one takes milliseconds)

    def wait_for_logins(self, what: str) -> None:
        """Back once no session has been logging in to the server for _STUCK seconds (logins under way
        end in milliseconds); ProviderError when one still is after lock_timeout, nothing done."""
        import time

        started = time.monotonic()
        seen: dict[int, float] = {}
        while True:
            now = time.monotonic()
            with self.session() as conn:
                pids = [pid for (pid,) in conn.execute(self._LOGGING_IN).fetchall()]
            seen = {pid: seen.get(pid, now) for pid in pids}
            stuck = [pid for pid, since in seen.items() if now - since >= self._STUCK]
            if not seen or (now - started >= self._STUCK and not stuck):
                return
            if stuck and now - started >= self.lock_timeout:
                raise ProviderError(
                    f"{what}: a client has been logging in to the server for {now - seen[stuck[0]]:.0f} s (one "
                    "stopped half-way, such as a paused run) and DROP DATABASE would wait for it until the server "
                    "ends it (authentication_timeout); nothing was dropped: run the command again in a minute"
                )
            time.sleep(0.1)

    def check_privileges(self) -> None:
        """ProviderError unless the admin role may make databases and roles."""
        with self.session() as conn:
            row = conn.execute(
                "SELECT rolsuper, rolcreatedb, rolcreaterole, current_user FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
        if not (row[0] or (row[1] and row[2])):
            raise ProviderError(
                f"the admin role {row[3]!r} needs CREATEDB and CREATEROLE (or SUPERUSER) "
                "to make the project's database and roles"
            )
        self._superuser = bool(row[0])

    @property
    def is_superuser(self) -> bool:
        if self._superuser is None:
            self.check_privileges()
        return bool(self._superuser)

    def query(self, sql_text: Any, params: Any = (), *, dbname: str = "postgres") -> Any:
        """One row of one statement."""
        with self.session(dbname) as conn:
            return conn.execute(sql_text, params).fetchone()

    def execute(self, statement: Any, params: Any = (), *, dbname: str = "postgres") -> None:
        with self.session(dbname) as conn:
            conn.execute(statement, params)

    def password_works(self, user: str, password: str) -> bool:
        """Whether user logs in with password, tried the way the admin connects. Only a refused
        password says no: a login refused after authentication (no CONNECT, a connection limit)
        had the right password. For an admin that may not read pg_authid (a CREATEROLE admin, RDS's
        master user), where a superuser compares verifiers instead (RoleProvider._password)."""
        import psycopg

        with self.session() as conn:
            params = conn.info.get_parameters()  # never holds the admin's password
        params.update(user=user, password=password, dbname="postgres", connect_timeout="10")
        return not password_refused(refusal(lambda: psycopg.connect(**params)))

    def database_exists(self, dbname: str) -> bool:
        return self.query("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)) is not None

    def close_db(self, dbname: str) -> None:
        """Close our idle connections to dbname (before it is dropped)."""
        POOL.close((self.server, dbname))

    def close(self) -> None:
        """Close idle sessions to the project's own databases; those to `postgres` serve other projects."""
        for db in self._dbs - {"postgres"}:
            self.close_db(db)

    def pg_dump(self, dbname: str, dest: Path, *, schema: str | None = None) -> Path:
        """pg_dump's custom format, written whole under a temporary name. A schema's dump holds the
        extensions installed in it too (pg_dump --schema alone leaves them out)."""
        out = backup_dir(dest) / f"{dbname}{'-' + schema if schema else ''}-{stamp()}.dump"
        with written_whole(out) as tmp:
            # its wait for each table's lock bounded like our own sessions' (invariant 3, docs/architecture.md): a run stopped
            # holding a table never makes a backup wait for ever (pg_dump sets lock_timeout = 0 itself)
            args = [
                str(self._bindir() / "pg_dump"),
                "--format=custom",
                f"--file={tmp}",
                f"--dbname={dbname}",
                f"--lock-wait-timeout={int(min(self.lock_timeout, 86400) * 1000)}",
            ]
            if schema:
                args.append(f"--schema={schema}")
                with self.session(dbname) as conn:
                    extensions = conn.execute(
                        "SELECT e.extname FROM pg_extension e JOIN pg_namespace n ON "
                        "n.oid = e.extnamespace WHERE n.nspname = %s",
                        (schema,),
                    ).fetchall()
                args += [f"--extension={name}" for (name,) in extensions]
            with passfile(self._client_env()) as (env, fds):
                proc = children.run(args, what=f"pg_dump of {dbname}", env=env, pass_fds=fds, timeout=3600, check=False)
            if proc.returncode != 0:
                raise ProviderError(
                    f"pg_dump of {dbname} failed, nothing was deleted: "
                    + "; ".join(ln.strip() for ln in proc.stderr.splitlines() if ln.strip())
                )
        return out

    def pg_restore(self, dump: str, dbname: str, *, role: str, login: tuple[str, str], clean: bool = False) -> None:
        """Load a dump into dbname, every object made as role (the project's owner) and given our
        grants by its default privileges; schemas that exist already are kept, not made again.

        Least privilege (invariant 7, docs/architecture.md): what the dump holds (functions, triggers, constraints, defaults
        the project's roles wrote) is replayed in a session that logs in as login (the etl role, with
        its own password), never the admin's: SET ROLE, RESET ROLE or SECURITY DEFINER code can then
        reach only roles that session is a member of, which are checked to be role and nothing that
        carries more (no SUPERUSER, CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS, no pg_* role); and a
        session cannot change its authenticated user without being a superuser. Only extensions a
        database owner may not make itself (untrusted ones) are made by the admin, first, each with a
        statement of our own (_create_extension): no text of the dump ever runs in the admin's session."""
        bindir = self._bindir()
        user, password = login
        self._check_least_privilege(user, role)
        listing = children.run([bindir / "pg_restore", "--list", dump], what=dump, timeout=600, check=False)
        if listing.returncode != 0:
            raise ProviderError(f"{dump}: not a dump pg_restore can read: {listing.stderr.strip()}")
        with self.session(dbname) as conn:
            existing = {row[0] for row in conn.execute("SELECT nspname FROM pg_namespace")}
            extensions = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
            trusted = {
                row[0]
                for row in conn.execute("SELECT DISTINCT name FROM pg_available_extension_versions WHERE trusted")
            }
        keep = [
            line
            for line in listing.stdout.splitlines()
            if not (
                (m := re.match(r"^\d+; \d+ \d+ (SCHEMA|COMMENT) - (?:SCHEMA )?(\S+) ", line)) and m.group(2) in existing
            )
        ]

        def extension(line: str) -> str | None:
            m = re.match(r"^\d+; \d+ \d+ (?:EXTENSION - |COMMENT - EXTENSION )(\S+)(?:\s|$)", line)
            return m.group(1) if m else None

        def by_admin(line: str) -> bool:  # an untrusted extension that is not there yet
            name = extension(line)
            return name is not None and name not in trusted and name not in extensions

        for line in keep:  # the admin runs statements of its own, never one taken from the dump
            if by_admin(line) and " EXTENSION - " in line:
                self._create_extension(dump, line, dbname, bindir)
        role_part = [ln for ln in keep if not by_admin(ln) and extension(ln) not in extensions]
        if not any(ln and not ln.startswith(";") for ln in role_part):
            return
        as_login = {**self._client_env(), "PGUSER": user, "PGPASSWORD": password}
        with tempfile.NamedTemporaryFile("w", suffix=".list") as toc:
            toc.write("\n".join(role_part) + "\n")
            toc.flush()
            args = [
                str(bindir / "pg_restore"),
                f"--dbname={dbname}",
                f"--role={role}",
                "--no-owner",
                "--no-acl",
                "--exit-on-error",
                "--single-transaction",
                f"--use-list={toc.name}",
                dump,
            ]
            if clean:  # extensions are left alone: dropping one would take its users' columns along
                args[1:1] = ["--clean", "--if-exists"]
                self._owned_by(role, user, dbname, dump)
            with passfile(as_login) as (child_env, fds):
                proc = children.run(
                    args, what=f"restore of {dump}", env=child_env, pass_fds=fds, timeout=3600, check=False
                )
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            reason = next((ln for ln in lines if "ERROR" in ln or "error:" in ln), lines[-1] if lines else "")
            raise ProviderError(f"restore of {dump} into {dbname} failed, nothing more was restored: {reason}")

    def _owned_by(self, role: str, user: str, dbname: str, dump: str) -> None:
        """What user (the etl role) made itself in dbname (a DAG's CREATE TABLE) becomes role's (the
        owner's): a clean restore's DROPs run as role, which is not a member of user (user is one of
        role), and PostgreSQL would refuse them. Ownership only: user keeps every right through role."""
        from psycopg import sql

        with translated(f"restore of {dump}: its objects to the owner role"), self.session(dbname) as conn:
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(user), sql.Identifier(role)))

    _CREATE_EXTENSION = re.compile(r'CREATE EXTENSION IF NOT EXISTS ("?)([\w-]+)\1 WITH SCHEMA ("?)(\w+)\3;')

    def _create_extension(self, dump: str, line: str, dbname: str, bindir: Path) -> None:
        """An untrusted extension the dump holds, made by the admin with a statement of our own: the
        entry's SQL is only read (pg_restore writes it as text, connecting nowhere) for the schema it
        names, and anything but the one statement pg_dump writes for an extension is refused."""
        from psycopg import sql

        with tempfile.NamedTemporaryFile("w", suffix=".list") as toc:
            toc.write(line + "\n")
            toc.flush()
            text = children.run(
                [bindir / "pg_restore", "--file=-", f"--use-list={toc.name}", dump], what=dump, timeout=600, check=False
            ).stdout
        # pg_restore's own frame around the entry: comments, its session settings, psql's \restrict lines
        statements = [
            ln
            for ln in text.splitlines()
            if ln.strip() and not ln.startswith(("--", "SET ", "SELECT pg_catalog.set_config(", "\\"))
        ]
        found = self._CREATE_EXTENSION.fullmatch(statements[0]) if len(statements) == 1 else None
        listed = line.split(" EXTENSION - ", 1)[1].split()[0]
        if found is None or found.group(2) != listed:
            raise ProviderError(
                f"{dump}: its entry for extension {listed!r} is not the statement pg_dump writes for "
                "one (CREATE EXTENSION IF NOT EXISTS ... WITH SCHEMA ...); a dump changed by hand is "
                "not restored; nothing was restored"
            )
        with translated(f"restore of {dump}: CREATE EXTENSION {listed}"), self.session(dbname) as conn:
            conn.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}").format(
                    sql.Identifier(listed), sql.Identifier(found.group(4))
                )
            )

    def _check_least_privilege(self, user: str, role: str) -> None:
        """ProviderError unless user (the session a restore runs in) reaches no more than role does and
        role carries nothing beyond a plain role's: the bounds pg_restore's session is kept within."""
        with self.session() as conn:
            rows = conn.execute(
                """SELECT r.rolname FROM pg_roles r
                   WHERE (pg_has_role(%(user)s, r.oid, 'MEMBER') AND r.rolname NOT IN (%(user)s, %(role)s))
                      OR (r.rolname IN (%(user)s, %(role)s) AND (r.rolsuper OR r.rolcreaterole OR r.rolcreatedb
                          OR r.rolreplication OR r.rolbypassrls))
                   ORDER BY 1""",
                {"user": user, "role": role},
            ).fetchall()
        if rows:
            raise ProviderError(
                f"restore refused: it runs as {user}, which must carry no more than {role} does, but {user} or "
                f"{role} holds {', '.join(r[0] for r in rows)} (a superuser or CREATEROLE-like attribute, or another "
                "role's membership): run `airflow-infra plan` and apply to repair that drift first; nothing was restored"
            )


# Every kind of object a user can make in a schema, counted per kind: all of it is data (a schema of
# views or functions is someone's work as much as one of tables). Indexes, triggers, constraints
# and policies belong to tables; automatic array and multirange types to their element types.
