"""What the PostgreSQL providers share: the marker read into Observed, identifiers, one translation."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from ... import scram
from ...errors import ForeignResource
from ...ownership import Owner, judge
from ...pgerrors import translated
from ...resources import Observed


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


def _translate(address: str, step: str) -> AbstractContextManager[None]:
    """The psycopg boundary (pgerrors.translated) for one step of one resource."""
    return translated(f"{address}: {step} failed")


def _ident(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(name)


def _idents(names: Iterable[str]) -> Any:
    from psycopg import sql

    return sql.SQL(", ").join(sql.Identifier(n) for n in names)
