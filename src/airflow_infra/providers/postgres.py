"""PostgreSQL resources on any server we can reach as an admin: roles, a database, schemas.

One code path for every target: the local server, an existing server and (later) RDS differ
only in the ``connect`` function handed to PgAdmin. Identifiers always go through
psycopg.sql.Identifier. What we make carries a marker (a COMMENT naming the project, environment
and state lineage: ownership.py), so that a refresh can tell our own half-recorded resource
(adopted) from someone else's (never taken over).
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from .. import children, scram
from ..backups import backup_dir, stamp, written_whole
from ..children import passfile
from ..errors import ConfigError, ForeignResource, ProviderError, SecretMissing, Unreadable
from ..ownership import Owner, judge
from ..pgerrors import password_refused, refusal, retried, translated
from ..resources import Observed, Resource
from ..secretstores import SecretStore, role_ref
from . import pggrants
from .base import Provider, converged, read_back


def _observed(owner: Owner, attrs: dict[str, Any], comment: str | None, prior: Observed | None) -> Observed:
    """attrs with `marked`, judged by the COMMENT found (ownership.judge)."""
    v = judge(owner, Owner.from_marker(comment), recorded=prior is not None)
    return Observed({**attrs, "marked": v.marked}, foreign=not v.ours, whose=v.whose)


# A login role's `password`: the one it logs in with is the one kept in the secret store (STORED),
# or the store has none (MISSING), or the role's is another (DIFFERS). Either of the last two is drift
# that apply repairs by setting the stored one (a new one when there is none).
STORED, MISSING, DIFFERS = "stored", "missing from the secret store", "not the stored one"


_SERVER_ACL = threading.Lock()  # see RoleProvider._keep_out

# What every project role is besides its login: no power over the server or other roles, and nobody
# outside the project a member of it. Each is read and repaired (drift by hand: ALTER ROLE ... SUPERUSER).
ROLE_ATTRIBUTES: dict[str, Any] = {
    "superuser": False,
    "createdb": False,
    "createrole": False,
    "replication": False,
    "bypassrls": False,
    "inherit": True,
    "connection_limit": -1,
    "valid_until": None,
    "other_members": [],
    "admin_of": [],
}
_FLAGS = {
    "superuser": "SUPERUSER",
    "createdb": "CREATEDB",
    "createrole": "CREATEROLE",
    "replication": "REPLICATION",
    "bypassrls": "BYPASSRLS",
    "inherit": "INHERIT",
    "login": "LOGIN",
}


def _give_password(cur: Any, name: str, password: str) -> None:
    """ALTER ROLE ... PASSWORD with a SCRAM verifier computed here, never the password: a statement
    that reaches the server's log then holds nothing that logs in."""
    from psycopg import sql

    cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(_ident(name), sql.Literal(scram.verifier(password))))


def _refuse_foreign(address: str, what: str, found: Observed | None) -> None:
    if found is not None and found.foreign:
        raise ForeignResource(f"{address}: {what} exists, {found.whose}: it is never taken over silently")


def etl_role(project: str) -> str:
    """The project's loading role: what Airflow writes with, and what a restore replays a dump as."""
    return f"{project}_etl"


def database_resources(
    name: str, schemas: list[str], *, environment: str, database: str | None = None, private_server: bool = False
) -> list[Resource]:
    """The project's roles, database (named `database`, default the project's name) and schemas:
    the same on every target. A login role's password is kept under role_ref, and `password`
    wants it to be the one the role logs in with. On a private server (RoleProvider's) no role
    may connect to the server's other databases."""
    owner, etl, reader = f"{name}_owner", etl_role(name), f"{name}_reader"
    database = database or name
    roles = ("postgres_role.owner", "postgres_role.etl", "postgres_role.reader")
    out = [
        Resource(
            "postgres_role",
            "owner",
            {"name": owner, "login": False, "member_of": [], "password_ref": None, **ROLE_ATTRIBUTES, "marked": True},
        ),
        Resource(
            "postgres_role",
            "etl",
            {
                "name": etl,
                "login": True,
                "member_of": [owner],
                "password_ref": role_ref(name, environment, etl),
                "password": STORED,
                "password_secret_findings": [],
                **ROLE_ATTRIBUTES,
                "marked": True,
            },
            ("postgres_role.owner",),
        ),
        Resource(
            "postgres_role",
            "reader",
            {
                "name": reader,
                "login": True,
                "member_of": [],
                "password_ref": role_ref(name, environment, reader),
                "password": STORED,
                "password_secret_findings": [],
                **ROLE_ATTRIBUTES,
                "marked": True,
            },
        ),
        Resource(
            "postgres_database",
            "main",
            {
                "name": database,
                "owner": owner,
                "connect": sorted([etl, reader]),
                "public_access": False,
                "public_create": [],
                "other_privileges": [],
                "marked": True,
            },
            roles,
        ),
    ]
    if private_server:
        out[:3] = [Resource(r.type, r.name, {**r.attrs, "other_databases": []}, r.depends_on) for r in out[:3]]
    for s in schemas:
        out.append(
            Resource(
                "postgres_schema",
                s,
                {
                    "name": s,
                    "database": database,
                    "owner": owner,
                    "readers": [reader],
                    "default_select": sorted([etl, owner]),
                    "grants": [],
                    "marked": True,
                },
                ("postgres_database.main", *roles),
            )
        )
    return out


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
            # its wait for each table's lock bounded like our own sessions' (DESIGN 5.3): a run stopped
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
                children.run(
                    args,
                    what=f"pg_dump of {dbname}",
                    env=env,
                    pass_fds=fds,
                    timeout=3600,
                    reason=lambda p: (
                        "nothing was deleted: " + "; ".join(ln.strip() for ln in p.stderr.splitlines() if ln.strip())
                    ),
                )
        return out

    def pg_restore(self, dump: str, dbname: str, *, role: str, login: tuple[str, str], clean: bool = False) -> None:
        """Load a dump into dbname, every object made as role (the project's owner) and given our
        grants by its default privileges; schemas that exist already are kept, not made again.

        Least privilege (DESIGN 5.7): what the dump holds (functions, triggers, constraints, defaults
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
            with passfile(as_login) as (child_env, fds):
                proc = children.run(
                    args, what=f"restore of {dump}", env=child_env, pass_fds=fds, timeout=3600, check=False
                )
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            reason = next((ln for ln in lines if "ERROR" in ln or "error:" in ln), lines[-1] if lines else "")
            raise ProviderError(f"restore of {dump} into {dbname} failed, nothing more was restored: {reason}")

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
_OBJECTS_SQL = """
WITH ns AS (SELECT oid FROM pg_namespace WHERE {where})
SELECT kind, count(*) FROM (
    SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                          WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                          WHEN 'f' THEN 'foreign table' ELSE 'type' END
      FROM pg_class c JOIN ns ON ns.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
    UNION ALL SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END
      FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
    UNION ALL SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END
      FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
     WHERE t.typtype IN ('b', 'd', 'e', 'r')
       AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
    UNION ALL SELECT 'collation' FROM pg_collation x JOIN ns ON ns.oid = x.collnamespace
    UNION ALL SELECT 'conversion' FROM pg_conversion x JOIN ns ON ns.oid = x.connamespace
    UNION ALL SELECT 'operator' FROM pg_operator x JOIN ns ON ns.oid = x.oprnamespace
    UNION ALL SELECT 'operator class' FROM pg_opclass x JOIN ns ON ns.oid = x.opcnamespace
    UNION ALL SELECT 'operator family' FROM pg_opfamily x JOIN ns ON ns.oid = x.opfnamespace
    UNION ALL SELECT 'text search object' FROM pg_ts_config x JOIN ns ON ns.oid = x.cfgnamespace
    UNION ALL SELECT 'text search object' FROM pg_ts_dict x JOIN ns ON ns.oid = x.dictnamespace
    UNION ALL SELECT 'text search object' FROM pg_ts_parser x JOIN ns ON ns.oid = x.prsnamespace
    UNION ALL SELECT 'text search object' FROM pg_ts_template x JOIN ns ON ns.oid = x.tmplnamespace
    UNION ALL SELECT 'statistics object' FROM pg_statistic_ext x JOIN ns ON ns.oid = x.stxnamespace
    UNION ALL SELECT 'extension' FROM pg_extension x JOIN ns ON ns.oid = x.extnamespace
    {extra}
) objects(kind) GROUP BY kind ORDER BY kind"""

# (run without parameters: a single % is literal to psycopg then)
_USER_SCHEMAS = "nspname NOT IN ('pg_catalog', 'information_schema') AND nspname !~ '^pg_(toast|temp_)'"


def _plural(kind: str, n: int) -> str:
    if n == 1:
        return kind
    return kind + "es" if kind.endswith("s") else kind[:-1] + "ies" if kind.endswith("y") else kind + "s"


def _describe_objects(rows: list[tuple[str, int]]) -> str | None:
    """[("table", 3), ("view", 1)] -> "3 tables, 1 view"; None when there is nothing."""
    parts = [f"{n} {_plural(kind, n)}" for kind, n in rows if n]
    return ", ".join(parts) or None


# What DROP SCHEMA ... CASCADE would take from *other* schemas: objects that depend, directly or
# through others, on an object in the schema (a column of a type defined there, a view reading a
# table there, a partition of a table there, a trigger calling a function there). Each dropped
# object is placed in a schema through its own catalog; one that cannot be placed counts as outside.
_OUTSIDE_DEPENDENTS_SQL = """
WITH RECURSIVE ns AS (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s),
inside(classid, objid) AS (
    SELECT 'pg_class'::regclass, c.oid FROM pg_class c JOIN ns ON c.relnamespace = ns.oid
    UNION ALL SELECT 'pg_proc'::regclass, p.oid FROM pg_proc p JOIN ns ON p.pronamespace = ns.oid
    UNION ALL SELECT 'pg_type'::regclass, t.oid FROM pg_type t JOIN ns ON t.typnamespace = ns.oid
    UNION ALL SELECT 'pg_collation'::regclass, x.oid FROM pg_collation x JOIN ns ON x.collnamespace = ns.oid
    UNION ALL SELECT 'pg_operator'::regclass, x.oid FROM pg_operator x JOIN ns ON x.oprnamespace = ns.oid
    UNION ALL SELECT 'pg_ts_config'::regclass, x.oid FROM pg_ts_config x JOIN ns ON x.cfgnamespace = ns.oid
    UNION ALL SELECT 'pg_extension'::regclass, x.oid FROM pg_extension x JOIN ns ON x.extnamespace = ns.oid
    UNION ALL SELECT 'pg_namespace'::regclass, ns.oid FROM ns
),
dropped(classid, objid, objsubid) AS (
    SELECT d.classid, d.objid, d.objsubid FROM pg_depend d JOIN inside i ON (d.refclassid, d.refobjid) = (i.classid, i.objid)
     WHERE d.deptype IN ('n', 'a', 'P', 'S')
    UNION
    SELECT d.classid, d.objid, d.objsubid FROM pg_depend d JOIN dropped x ON (d.refclassid, d.refobjid) = (x.classid, x.objid)
     WHERE d.deptype IN ('n', 'a', 'P', 'S')
),
placed AS (
    SELECT x.*, CASE x.classid
        WHEN 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = x.objid)
        WHEN 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = x.objid)
        WHEN 'pg_type'::regclass THEN (SELECT typnamespace FROM pg_type WHERE oid = x.objid)
        WHEN 'pg_constraint'::regclass THEN (SELECT connamespace FROM pg_constraint WHERE oid = x.objid)
        WHEN 'pg_collation'::regclass THEN (SELECT collnamespace FROM pg_collation WHERE oid = x.objid)
        WHEN 'pg_operator'::regclass THEN (SELECT oprnamespace FROM pg_operator WHERE oid = x.objid)
        WHEN 'pg_opclass'::regclass THEN (SELECT opcnamespace FROM pg_opclass WHERE oid = x.objid)
        WHEN 'pg_opfamily'::regclass THEN (SELECT opfnamespace FROM pg_opfamily WHERE oid = x.objid)
        WHEN 'pg_ts_config'::regclass THEN (SELECT cfgnamespace FROM pg_ts_config WHERE oid = x.objid)
        WHEN 'pg_statistic_ext'::regclass THEN (SELECT stxnamespace FROM pg_statistic_ext WHERE oid = x.objid)
        WHEN 'pg_extension'::regclass THEN (SELECT extnamespace FROM pg_extension WHERE oid = x.objid)
        WHEN 'pg_conversion'::regclass THEN (SELECT connamespace FROM pg_conversion WHERE oid = x.objid)
        WHEN 'pg_ts_dict'::regclass THEN (SELECT dictnamespace FROM pg_ts_dict WHERE oid = x.objid)
        WHEN 'pg_ts_parser'::regclass THEN (SELECT prsnamespace FROM pg_ts_parser WHERE oid = x.objid)
        WHEN 'pg_ts_template'::regclass THEN (SELECT tmplnamespace FROM pg_ts_template WHERE oid = x.objid)
        WHEN 'pg_default_acl'::regclass THEN (SELECT defaclnamespace FROM pg_default_acl WHERE oid = x.objid)
        WHEN 'pg_amop'::regclass THEN (SELECT f.opfnamespace FROM pg_amop a JOIN pg_opfamily f ON f.oid = a.amopfamily
                                       WHERE a.oid = x.objid)
        WHEN 'pg_amproc'::regclass THEN (SELECT f.opfnamespace FROM pg_amproc a JOIN pg_opfamily f ON f.oid = a.amprocfamily
                                         WHERE a.oid = x.objid)
        WHEN 'pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
                                          WHERE r.oid = x.objid)
        WHEN 'pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                                          WHERE t.oid = x.objid)
        WHEN 'pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid
                                          WHERE a.oid = x.objid)
        WHEN 'pg_policy'::regclass THEN (SELECT c.relnamespace FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
                                         WHERE p.oid = x.objid)
        END AS nsp
    FROM dropped x
)
SELECT DISTINCT pg_describe_object(classid, objid, objsubid) FROM placed p
 WHERE nsp IS DISTINCT FROM (SELECT oid FROM ns)
   AND NOT EXISTS (  -- a member of an extension installed in the schema (a cast, say) goes with its extension
       SELECT 1 FROM pg_depend e JOIN pg_extension x ON x.oid = e.refobjid
        WHERE (e.classid, e.objid) = (p.classid, p.objid) AND e.refclassid = 'pg_extension'::regclass
          AND e.deptype = 'e' AND x.extnamespace = (SELECT oid FROM ns))
 ORDER BY 1 LIMIT 20"""


def _translate(address: str, step: str) -> AbstractContextManager[None]:
    """The psycopg boundary (pgerrors.translated) for one step of one resource."""
    return translated(f"{address}: {step} failed")


def _ident(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(name)


def _idents(names: Iterable[str]) -> Any:
    from psycopg import sql

    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


class RoleProvider(Provider):
    type = "postgres_role"
    force_new = frozenset({"name"})
    marks_atomically = True  # CREATE ROLE and its COMMENT in one transaction
    notes = {
        "password": "the stored password is set (a new one when none is stored); Airflow's connections "
        "need it again: `airflow-infra connections push`",
        "password_ref": "the password moves to where this release keeps it",
    }

    def __init__(self, admin: PgAdmin, owner: Owner, *, private_server: bool = False):
        """private_server: the server is ours (the local target's), so no project role may connect
        to its other databases (postgres, template1) either."""
        self.admin = admin
        self.owner = owner
        self.private_server = private_server

    # members: roles other than the project's and the admin (a CREATEROLE admin is made a member);
    # DISTINCT: PostgreSQL 16 keeps a membership once per grantor
    ROLE_SQL = """SELECT r.rolcanlogin, shobj_description(r.oid, 'pg_authid'),
                         array(SELECT DISTINCT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                               WHERE m.member = r.oid ORDER BY 1),
                         r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolreplication, r.rolbypassrls, r.rolinherit,
                         r.rolconnlimit, nullif(r.rolvaliduntil::text, 'infinity'),
                         array(SELECT DISTINCT u.rolname FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member
                               WHERE m.roleid = r.oid AND u.rolname <> ALL(%(ours)s) AND u.rolname <> current_user
                               ORDER BY 1),
                         array(SELECT DISTINCT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                               WHERE m.member = r.oid AND m.admin_option ORDER BY 1),
                         array(SELECT d.datname FROM pg_database d WHERE %(private)s
                               AND d.datname IN ('postgres', 'template1')
                               AND has_database_privilege(r.oid, d.oid, 'CONNECT') ORDER BY 1)
                  FROM pg_roles r WHERE r.rolname = %(name)s"""

    def _project_roles(self) -> list[str]:
        return [f"{self.owner.project}_{k}" for k in ("owner", "etl", "reader")]

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        with _translate(r.address, "read"):
            row = self.admin.query(
                self.ROLE_SQL, {"name": r.attrs["name"], "ours": self._project_roles(), "private": self.private_server}
            )
        if row is None:
            return None
        login, comment, member_of, *flags, connlimit, valid_until, others, admin_of, databases = row
        attrs: dict[str, Any] = {
            "name": r.attrs["name"],
            "login": login,
            "member_of": list(member_of),
            "password_ref": r.attrs.get("password_ref"),
            **dict(zip(list(_FLAGS)[:6], flags, strict=True)),
            "connection_limit": connlimit,
            "valid_until": valid_until,
            "other_members": list(others),
            "admin_of": list(admin_of),
        }
        if self.private_server:
            attrs["other_databases"] = list(databases)
        if r.attrs.get("password_ref"):
            attrs["password"] = self._password(r.attrs["name"], r.attrs["password_ref"])
            attrs["password_secret_findings"] = self.admin.secrets.findings(r.attrs["password_ref"])
            secret = self._secret_location(r, prior)
            if secret:
                attrs["password_secret"] = secret
        return _observed(self.owner, attrs, comment, prior)

    def _password(self, name: str, ref: str) -> str:
        """STORED, MISSING or DIFFERS (see there)."""
        try:
            value = self.admin.secrets.get(ref)
        except ConfigError:  # the store needs a key this run was not given: it can say only whether it holds one
            return STORED if self.admin.secrets.holds(ref) else MISSING
        if value is None:
            return MISSING
        if self.admin.is_superuser:  # may read the verifier: a comparison, no login (nor a failed one in the log)
            row = self.admin.query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (name,))
            return STORED if row is not None and scram.matches(row[0], value) else DIFFERS
        return STORED if self.admin.password_works(name, value) else DIFFERS

    def _stored_password(self, r: Resource, prior: Observed | None) -> tuple[str, str | None]:
        """(the password the role is to have, an older reference it was moved from, to delete once
        the role has it): the one under an older reference when it moved, else the one stored, else a
        new one, kept in the store first. Asked before the role's transaction opens, never inside:
        a slow store must not hold a transaction open (the server ends one left idle)."""
        ref = r.attrs["password_ref"]
        old_ref = prior.attrs.get("password_ref") if prior else None
        moved = self.admin.secrets.get(old_ref) if old_ref and old_ref != ref else None
        if moved is not None:
            self.admin.secrets.put(ref, moved)
        return self.admin.secrets.get_or_create(ref), old_ref if moved is not None else None

    def rotate(self, r: Resource) -> None:
        """A new password for the login role r: kept in the store first (Secrets Manager: the new
        value AWSCURRENT, the old one AWSPREVIOUS), then given to the role, so the old one stops
        working only once the new one is safe."""
        from ..secretstores import new_password

        ref, name = r.attrs.get("password_ref"), r.attrs["name"]
        if not ref:
            raise ProviderError(f"{r.address}: role {name} logs in with no password of ours; nothing to rotate")
        password = new_password()
        self.admin.secrets.put(ref, password)
        with _translate(r.address, "rotate"), self.admin.session() as conn:
            _give_password(conn, name, password)

    def _secret_location(self, r: Resource, prior: Observed | None) -> str | None:
        """The password's address in its store (a Secrets Manager ARN), recorded when the role is
        made; a refresh keeps the recorded one rather than asking the store again."""
        ref = r.attrs.get("password_ref")
        if not ref:
            return None
        return (prior.attrs.get("password_secret") if prior else None) or self.admin.secrets.locate(ref)

    def _converge(self, r: Resource, cur: Any, current: dict[str, Any]) -> None:
        """current: the role's attributes as read ({} for a role just made: CREATE ROLE's defaults).
        Only what differs is altered: a CREATEROLE admin may not even name SUPERUSER, REPLICATION or
        BYPASSRLS in an ALTER ROLE, but may take CREATEDB, CREATEROLE and the rest back."""
        from psycopg import sql

        name = _ident(r.attrs["name"])
        made = {**ROLE_ATTRIBUTES, "login": False, **current}
        cur.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(name, sql.Literal(self.owner.marker())))
        clauses = [
            ("" if r.attrs[k] else "NO") + word for k, word in _FLAGS.items() if k in r.attrs and made[k] != r.attrs[k]
        ]
        if made["connection_limit"] != r.attrs.get("connection_limit", -1):
            clauses.append(f"CONNECTION LIMIT {int(r.attrs.get('connection_limit', -1))}")
        if made["valid_until"] is not None:
            clauses.append("VALID UNTIL 'infinity'")  # what "no expiry" is, once one was set
        if clauses:
            cur.execute(sql.SQL("ALTER ROLE {} " + " ".join(clauses)).format(name))
        for g in sorted(set(r.attrs["member_of"]) - set(made.get("member_of", []))):
            cur.execute(sql.SQL("GRANT {} TO {}").format(_ident(g), name))
        for g in sorted(set(made.get("member_of", [])) - set(r.attrs["member_of"])):
            cur.execute(sql.SQL("REVOKE {} FROM {}").format(_ident(g), name))
        for m in made["other_members"]:
            cur.execute(sql.SQL("REVOKE {} FROM {}").format(name, _ident(m)))
        for g in made.get("admin_of", []):  # may hand the role on to anyone: never the project's to do
            cur.execute(sql.SQL("REVOKE ADMIN OPTION FOR {} FROM {}").format(_ident(g), name))

    def _keep_out(self, r: Resource, current: dict[str, Any]) -> None:
        """On a private server: no CONNECT on its other databases, for PUBLIC or the role. Outside
        the role's transaction and one at a time: each changes one shared catalog row, which two
        open transactions cannot both update ("tuple concurrently updated")."""
        from psycopg import sql

        if not self.private_server or current.get("other_databases") == []:
            return
        dbs = _idents(["postgres", "template1"])
        revoke = sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC, {}").format(dbs, _ident(r.attrs["name"]))

        def step() -> None:
            with _SERVER_ACL:
                self.admin.execute(revoke)

        # XX000 "tuple concurrently updated": another process's apply is at the same ACL
        retried(step, sqlstates=("XX000",), attempts=20, pause=0.05)

    def create(self, r: Resource) -> Observed:
        from psycopg import sql

        name = r.attrs["name"]
        with _translate(r.address, "create"):
            found = self.read(r, None)  # an apply killed before it could record it: converged, not made again
            _refuse_foreign(r.address, f"role {name!r}", found)
            password, moved_from = self._stored_password(r, None) if r.attrs.get("password_ref") else (None, None)
        # all-or-nothing: role, marker, password, grants
        with _translate(r.address, "create"), self.admin.session() as conn, conn.transaction(), conn.cursor() as cur:
            row = cur.execute(
                "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", (name,)
            ).fetchone()
            if row is not None and found is None:  # made by someone else since it was read
                _refuse_foreign(r.address, f"role {name!r}", _observed(self.owner, {}, row[0], None))
            if row is None:
                cur.execute(sql.SQL("CREATE ROLE {}").format(_ident(name)))
                if not self.admin.is_superuser:
                    # A CREATEROLE admin must be a member to own databases as, and set defaults for, it.
                    cur.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(_ident(name)))
            if password is not None:
                _give_password(cur, name, password)
            self._converge(r, cur, dict(found.attrs) if found and row else {})
        self._finish(r, dict(found.attrs) if found else {}, moved_from, "create")
        return read_back(self, r)

    def update(self, r: Resource, prior: Observed) -> Observed:
        password, moved_from = None, None
        if r.attrs.get("password_ref") and prior.attrs.get("password_secret_findings"):
            with _translate(r.address, "update"):
                self.admin.secrets.repair(r.attrs["password_ref"])
        if r.attrs.get("password_ref") and (
            prior.attrs.get("password") != STORED or prior.attrs.get("password_ref") != r.attrs["password_ref"]
        ):
            with _translate(r.address, "update"):
                password, moved_from = self._stored_password(r, prior)
        with _translate(r.address, "update"), self.admin.session() as conn, conn.transaction(), conn.cursor() as cur:
            if password is not None:
                _give_password(cur, r.attrs["name"], password)
            self._converge(r, cur, dict(prior.attrs))
        self._finish(r, dict(prior.attrs), moved_from, "update")
        done = read_back(self, r)
        return converged(r, done, [k for k in r.attrs if k in done.attrs])

    def _finish(self, r: Resource, current: dict[str, Any], moved_from: str | None, step: str) -> None:
        """After the role's transaction: the server-wide CONNECTs, and the older reference a password
        moved from (the role has the password now)."""
        with _translate(r.address, step):
            self._keep_out(r, current)
        if moved_from:
            self.admin.secrets.delete(moved_from)

    def mark(self, r: Resource) -> None:
        from psycopg import sql

        with _translate(r.address, "import"):
            self.admin.execute(
                sql.SQL("COMMENT ON ROLE {} IS {}").format(_ident(r.attrs["name"]), sql.Literal(self.owner.marker()))
            )

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        from psycopg import sql

        with _translate(r.address, "delete"):
            self.admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(_ident(r.attrs["name"])))
        if r.attrs.get("password_ref"):
            self.admin.secrets.delete(r.attrs["password_ref"])


class DatabaseProvider(Provider):
    """The project's database. CREATE DATABASE cannot run in a transaction, so "ours" is judged
    by its owner: a database owned by our marked owner role is ours."""

    type = "postgres_database"
    force_new = frozenset({"name"})
    marks_atomically = True  # made owned by the marked owner role, which says whose it is
    notes = {
        "owner": "the previous owner keeps USAGE and CREATE on schema public, and its tables",
        "public_access": "PUBLIC loses CONNECT and its rights on schema public",
    }

    def __init__(self, admin: PgAdmin, owner: Owner):
        self.admin = admin
        self.owner = owner

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        with _translate(r.address, "read"):
            row = self.admin.query(
                """SELECT pg_get_userbyid(d.datdba), shobj_description(o.oid, 'pg_authid'),
                          shobj_description(d.oid, 'pg_database'),
                          array(SELECT DISTINCT pg_get_userbyid(a.grantee) FROM aclexplode(d.datacl) a
                                WHERE a.privilege_type = 'CONNECT' AND a.grantee NOT IN (d.datdba, 0) ORDER BY 1),
                          d.datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee = 0),
                          array(SELECT DISTINCT pg_get_userbyid(a.grantee) || ' holds ' || a.privilege_type
                                  FROM aclexplode(d.datacl) a WHERE """
                + self.BEYOND
                + """ ORDER BY 1),
                          has_database_privilege(d.oid, 'CONNECT')
                   FROM pg_database d JOIN pg_roles o ON o.oid = d.datdba WHERE d.datname = %s""",
                (r.attrs["name"],),
            )
            if row is None:
                return None
            owner, owner_comment, comment, connect, public, others, may_connect = row
            # CREATE DATABASE and its COMMENT cannot share a transaction: before the COMMENT, our marked owner says it
            found = _observed(
                self.owner,
                {
                    "name": r.attrs["name"],
                    "owner": owner,
                    "connect": list(connect),
                    "public_access": public,
                    "other_privileges": list(others),
                },
                comment or owner_comment,
                prior,
            )
            if found.foreign:
                return found  # not ours to look inside (nor, maybe, to connect to)
            if not may_connect:
                # (its owner changed by hand, say): unknown until update gives it back to our owner role
                return Observed({**found.attrs, "public_create": None})
            with self.admin.session(r.attrs["name"]) as conn:
                public_create = conn.execute(
                    self.PUBLIC_CREATE_SQL, ([r.attrs["owner"], *r.attrs["connect"]],)
                ).fetchone()[0]
        return Observed({**found.attrs, "public_create": list(public_create)})

    # A database privilege held beyond what the project's roles need (CONNECT, TEMPORARY) by anyone
    # but the owner: `other_privileges`, read and taken back from the same catalog rows.
    BEYOND = "a.grantee NOT IN (d.datdba, 0) AND a.privilege_type NOT IN ('CONNECT', 'TEMPORARY')"

    # The project's roles that may make objects in schema public, where the readers' grants never
    # reach (the owner role may, through pg_database_owner, and the etl user through it).
    PUBLIC_CREATE_SQL = """SELECT array(SELECT r.rolname FROM pg_roles r WHERE r.rolname = ANY(%s::text[])
                                          AND CASE WHEN to_regnamespace('public') IS NULL THEN false
                                                   ELSE has_schema_privilege(r.oid, 'public', 'CREATE') END ORDER BY 1)"""

    def _converge(self, r: Resource, current: Observed | None) -> None:
        from psycopg import sql

        db = _ident(r.attrs["name"])
        with self.admin.session() as conn, conn.transaction():
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, _ident(r.attrs["owner"])))
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(db, sql.Literal(self.owner.marker())))
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
            beyond = [
                row[0]
                for row in conn.execute(
                    "SELECT DISTINCT pg_get_userbyid(a.grantee) FROM pg_database d, aclexplode(d.datacl) a "
                    "WHERE d.datname = %s AND " + self.BEYOND,
                    (r.attrs["name"],),
                )
            ]
            if beyond:  # CREATE (a schema of one's own) is the owner's alone
                conn.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(db, _idents(sorted(beyond))))
            extra = set(current.attrs.get("connect", [])) - set(r.attrs["connect"]) if current else set()
            if extra:
                conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(db, _idents(sorted(extra))))
            conn.execute(
                sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, _idents(r.attrs["connect"]))
            )
        # Inside the database: nobody may use the public schema, not even its owner (nor the etl user
        # through it) to make tables there...
        with self.admin.session(r.attrs["name"]) as conn, conn.transaction():
            public = conn.execute(
                "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'"
            ).fetchone()
            if public is not None:  # (dropped by hand: nothing to keep anyone out of)
                conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
                holders = {
                    public[0],
                    r.attrs["owner"],
                    *r.attrs["connect"],
                    *((current.attrs.get("public_create") or []) if current else []),
                }
                conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(_idents(sorted(holders))))
        previous = current.attrs.get("owner") if current else None
        if previous and previous != r.attrs["owner"]:
            # ...except an adopted database's previous owner, which still owns the tables there
            self.admin.execute(
                sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(_ident(previous)), dbname=r.attrs["name"]
            )

    def create(self, r: Resource) -> Observed:
        from psycopg import sql

        with _translate(r.address, "create"):
            existing = self.read(r, None)
            _refuse_foreign(r.address, f"database {r.attrs['name']!r}", existing)
            if existing is None:
                self.admin.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                        _ident(r.attrs["name"]), _ident(r.attrs["owner"])
                    )
                )
            self._converge(r, existing)
        return read_back(self, r)

    def update(self, r: Resource, prior: Observed) -> Observed:
        with _translate(r.address, "update"):
            self._converge(r, prior)
        return converged(r, read_back(self, r), ("public_create", "other_privileges"))

    def mark(self, r: Resource) -> None:
        from psycopg import sql

        with _translate(r.address, "import"):
            self.admin.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    _ident(r.attrs["name"]), sql.Literal(self.owner.marker())
                )
            )

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        from psycopg import sql

        self.admin.close_db(r.attrs["name"])
        stmt = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)" if force else "DROP DATABASE IF EXISTS {}").format(
            _ident(r.attrs["name"])
        )
        with _translate(r.address, "delete"):
            # WITH (FORCE) as a non-superuser admin cannot end a superuser's session (42501), an
            # autovacuum worker's among them: those are brief, so try again for a while
            retried(lambda: self.admin.execute(stmt), sqlstates=("42501",) if force else (), attempts=50, pause=0.1)

    def holds_data(self, r: Resource, observed: Observed) -> str | None:
        name = r.attrs["name"]
        with _translate(r.address, "read"):
            if not self.admin.database_exists(name):
                return None
            with self.admin.session(name) as conn:
                rows = conn.execute(
                    _OBJECTS_SQL.format(
                        where=_USER_SCHEMAS, extra="UNION ALL SELECT 'large object' FROM pg_largeobject_metadata"
                    )
                ).fetchall()
        return _describe_objects(rows)

    def backup(self, r: Resource, observed: Observed, dest: Path) -> Path:
        return self.admin.pg_dump(r.attrs["name"], dest)

    def restore(self, r: Resource, source: str, *, replace: bool = False) -> tuple[int, list[str]]:
        """Load a dump (of a database or a schema) into the database; replace: drop what the dump
        holds first (the caller has backed it up)."""
        etl = etl_role(self.owner.project)
        password = self.admin.secrets.get(role_ref(self.owner.project, self.owner.environment, etl))
        if not password:
            raise SecretMissing(
                f"restore runs as {etl}, whose password is not in the secret store: run "
                "`airflow-infra apply` to set one; nothing was restored"
            )
        self.admin.pg_restore(source, r.attrs["name"], role=r.attrs["owner"], login=(etl, password), clean=replace)
        return 1, []


class SchemaProvider(Provider):
    """A schema in the project's database, owned by the owner role; readers get USAGE, SELECT on
    its tables, and SELECT on tables created later by the roles in ``default_select``."""

    type = "postgres_schema"
    force_new = frozenset({"name", "database"})
    marks_atomically = True  # CREATE SCHEMA and its COMMENT in one transaction
    deleted_with = frozenset({"postgres_database"})  # a destroy drops the database, schemas and all

    def __init__(self, admin: PgAdmin, owner: Owner):
        self.admin = admin
        self.owner = owner

    @contextmanager
    def _session(self, r: Resource) -> Iterator[Any]:
        """A session in the schema's database, or None when the database is gone; Unreadable when
        the admin may not connect to it (someone else's database of that name: a conflict of its own)."""
        db = r.attrs["database"]
        row = self.admin.query(
            "SELECT has_database_privilege(datname, 'CONNECT') FROM pg_database WHERE datname = %s", (db,)
        )
        if row is None:
            yield None
            return
        if not row[0]:
            raise Unreadable(f"{r.address}: the admin may not connect to database {db!r}")
        with self.admin.session(db) as conn:
            yield conn

    def _query(self, conn: Any, r: Resource) -> Any:
        return conn.execute(
            """SELECT pg_get_userbyid(n.nspowner), obj_description(n.oid, 'pg_namespace'),
                      array(SELECT DISTINCT pg_get_userbyid(a.grantee) FROM aclexplode(n.nspacl) a
                            WHERE a.privilege_type = 'USAGE' AND a.grantee NOT IN (n.nspowner, 0) ORDER BY 1),
                      array(SELECT DISTINCT pg_get_userbyid(d.defaclrole) FROM pg_default_acl d, aclexplode(d.defaclacl) a
                            WHERE d.defaclnamespace = n.oid AND d.defaclobjtype = 'r' AND a.privilege_type = 'SELECT'
                              AND pg_get_userbyid(a.grantee) = ANY(%s) ORDER BY 1)
               FROM pg_namespace n WHERE n.nspname = %s""",
            (list(r.attrs["readers"]), r.attrs["name"]),
        ).fetchone()

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        with _translate(r.address, "read"), self._session(r) as conn:
            row = self._query(conn, r) if conn is not None else None
            if row is None:
                return None
            owner, comment, readers, default_select = row
            found = _observed(
                self.owner,
                {
                    "name": r.attrs["name"],
                    "database": r.attrs["database"],
                    "owner": owner,
                    "readers": list(readers),
                    "default_select": list(default_select),
                },
                comment,
                prior,
            )
            if found.foreign:
                return found
            return Observed({**found.attrs, "grants": pggrants.words(pggrants.findings(conn, r))})

    def _converge(self, cur: Any, r: Resource, current: Observed | None) -> None:
        from psycopg import sql

        s, readers = _ident(r.attrs["name"]), _idents(r.attrs["readers"])
        cur.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(s, _ident(r.attrs["owner"])))
        cur.execute(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(s, sql.Literal(self.owner.marker())))
        cur.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(s))
        gone = set(current.attrs.get("readers", [])) - set(r.attrs["readers"]) if current else set()
        if gone:
            cur.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(s, _idents(sorted(gone))))
        if current is not None and current.attrs.get("grants"):
            pggrants.repair(cur, r, pggrants.findings(cur, r))  # the readers' grants are given again below
        if r.attrs["readers"]:
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, readers))
            cur.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(s, readers))
            for role in r.attrs["default_select"]:
                cur.execute(
                    sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(
                        _ident(role), s, readers
                    )
                )

    def create(self, r: Resource) -> Observed:
        from psycopg import sql

        with _translate(r.address, "create"), self._session(r) as conn:
            if conn is None:
                raise ProviderError(f"{r.address}: database {r.attrs['database']!r} does not exist")
            with conn.transaction(), conn.cursor() as cur:  # all-or-nothing
                row = self._query(conn, r)
                _refuse_foreign(
                    r.address,
                    f"schema {r.attrs['name']!r}",
                    None if row is None else _observed(self.owner, {}, row[1], None),
                )
                if row is None:
                    cur.execute(
                        sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                            _ident(r.attrs["name"]), _ident(r.attrs["owner"])
                        )
                    )
                self._converge(cur, r, None)
        return read_back(self, r)

    def update(self, r: Resource, prior: Observed) -> Observed:
        with (
            _translate(r.address, "update"),
            self.admin.session(r.attrs["database"]) as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            self._converge(cur, r, prior)
        return converged(r, read_back(self, r), ("grants",), who="a superuser, or the objects' owners,")

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        from psycopg import sql

        with _translate(r.address, "delete"), self._session(r) as conn:
            if conn is None:
                return  # the database went first: the schema went with it
            if force:
                # One transaction; an object made in another schema between the check and the drop
                # (someone at work right now) is not covered.
                with conn.transaction():
                    outside = self._outside_dependents(conn, r)
                    if outside:
                        raise ProviderError(
                            f"{r.address}: objects in other schemas depend on schema {r.attrs['name']!r} and "
                            f"would be dropped with it ({', '.join(outside)}); their data is in no backup of "
                            "this schema: drop or change them first; nothing was deleted"
                        )
                    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(_ident(r.attrs["name"])))
            else:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {}").format(_ident(r.attrs["name"])))

    def mark(self, r: Resource) -> None:
        from psycopg import sql

        with _translate(r.address, "import"), self.admin.session(r.attrs["database"]) as conn:
            conn.execute(
                sql.SQL("COMMENT ON SCHEMA {} IS {}").format(_ident(r.attrs["name"]), sql.Literal(self.owner.marker()))
            )

    @staticmethod
    def _outside_dependents(conn: Any, r: Resource) -> list[str]:
        return [row[0] for row in conn.execute(_OUTSIDE_DEPENDENTS_SQL, {"schema": r.attrs["name"]})]

    def holds_data(self, r: Resource, observed: Observed) -> str | None:
        with _translate(r.address, "read"), self._session(r) as conn:
            if conn is None:
                return None
            rows = conn.execute(_OBJECTS_SQL.format(where="nspname = %s", extra=""), (r.attrs["name"],)).fetchall()
            outside = self._outside_dependents(conn, r) if rows else []
        held = _describe_objects(rows)
        if held and outside:
            held += f"; {', '.join(outside)} in other schemas depend on it (never dropped with it)"
        return held

    def backup(self, r: Resource, observed: Observed, dest: Path) -> Path:
        return self.admin.pg_dump(r.attrs["database"], dest, schema=r.attrs["name"])
