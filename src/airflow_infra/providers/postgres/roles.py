"""A project's roles: LOGIN roles with SCRAM passwords kept in the secret store, kept out of every
database but their own."""

from __future__ import annotations

from typing import Any

from ... import scram
from ...errors import ConfigError, ProviderError
from ...ownership import Owner
from ...pgerrors import retried
from ...resources import Observed, Resource
from ..base import Provider, converged, read_back
from .common import (
    _FLAGS,
    _SERVER_ACL,
    DIFFERS,
    MISSING,
    ROLE_ATTRIBUTES,
    STORED,
    _give_password,
    _ident,
    _idents,
    _observed,
    _refuse_foreign,
    _translate,
)
from .session import PgAdmin


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
        from ...secretstores import new_password

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
