"""A project's schemas, with their grants and default privileges (pggrants.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...errors import ProviderError, Unreadable
from ...ownership import Owner
from ...resources import Observed, Resource
from .. import pggrants
from ..base import Provider, converged, read_back
from .common import (
    _ident,
    _idents,
    _observed,
    _refuse_foreign,
    _translate,
)
from .objects import _OBJECTS_SQL, _OUTSIDE_DEPENDENTS_SQL, _describe_objects
from .session import PgAdmin


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
