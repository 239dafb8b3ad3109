"""The resources a project's database is made of: its roles, the database, its schemas, as one list."""

from __future__ import annotations

from ...resources import Resource
from ...secretstores import role_ref
from .common import (
    ROLE_ATTRIBUTES,
    STORED,
    etl_role,
)


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
