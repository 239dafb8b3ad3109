"""A project's database: made with the owner role, its PUBLIC rights revoked, dumped before it goes."""

from __future__ import annotations

from pathlib import Path

from ...errors import SecretMissing
from ...ownership import Owner
from ...pgerrors import retried
from ...resources import Observed, Resource
from ...secretstores import role_ref
from ..base import Provider, converged, read_back
from .common import (
    _ident,
    _idents,
    _observed,
    _refuse_foreign,
    _translate,
    etl_role,
)
from .objects import _OBJECTS_SQL, _USER_SCHEMAS, _describe_objects
from .session import PgAdmin


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
            self.admin.wait_for_logins(f"{r.address}: delete of database {r.attrs['name']!r}")
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
