"""PostgreSQL resources on any server we can reach as an admin: roles, a database, schemas.

One code path for every target: the local server, an existing server and RDS differ only in the
``connect`` function handed to PgAdmin (session.py). Identifiers always go through
psycopg.sql.Identifier. What we make carries a marker (a COMMENT naming the project, environment
and state lineage: ownership.py), so that a refresh can tell our own half-recorded resource
(adopted) from someone else's (never taken over). One module per concept: session, roles,
database, schemas; resources lists what a project's database is made of.
"""

from __future__ import annotations

from .common import etl_role
from .database import DatabaseProvider
from .resources import database_resources
from .roles import RoleProvider
from .schemas import SchemaProvider
from .session import IDLE_IN_TRANSACTION, POOL, PgAdmin

__all__ = [
    "IDLE_IN_TRANSACTION",
    "POOL",
    "DatabaseProvider",
    "PgAdmin",
    "RoleProvider",
    "SchemaProvider",
    "database_resources",
    "etl_role",
]
