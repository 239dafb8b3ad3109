"""Privileges inside a project's schema: what they must be, what is wrong with them in words, and
the statements that put them right (the `grants` attribute of a postgres_schema).

The project's roles (the owner and those whose new tables the readers may read, the etl user) may
hold anything there; its readers hold exactly USAGE on the schema and SELECT on every table and view
(SELECT at most on a sequence); nobody outside the project holds anything: no privilege on the
schema, an object, a column or in its default privileges, and no object is theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# One row per (kind, object, who): every privilege held by someone other than the object's owner,
# every object's owner, the schema's default privileges, and each table or view a reader cannot read.
_SQL = """
WITH ns AS (SELECT oid, nspname, nspowner, nspacl FROM pg_namespace WHERE nspname = %(schema)s),
rel AS (SELECT c.oid, c.relname, c.relkind, c.relowner, c.relacl FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')),
who AS (SELECT 0::oid AS oid, 'PUBLIC'::text AS name UNION ALL SELECT oid, rolname FROM pg_roles)
SELECT 'object', rel.relname, rel.relkind::text, who.name, array_agg(a.privilege_type ORDER BY a.privilege_type)
  FROM rel, aclexplode(coalesce(rel.relacl, acldefault(CASE rel.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char",
                                                       rel.relowner))) a JOIN who ON who.oid = a.grantee
 WHERE a.grantee <> rel.relowner GROUP BY 1, 2, 3, 4
UNION ALL
SELECT 'column', rel.relname || ' (' || att.attname || ')', rel.relkind::text, who.name,
       array_agg(a.privilege_type ORDER BY a.privilege_type)
  FROM rel JOIN pg_attribute att ON att.attrelid = rel.oid AND att.attnum > 0 AND att.attacl IS NOT NULL,
       aclexplode(att.attacl) a JOIN who ON who.oid = a.grantee GROUP BY 1, 2, 3, 4
UNION ALL
SELECT 'schema', ns.nspname, '', who.name, array_agg(a.privilege_type ORDER BY a.privilege_type)
  FROM ns, aclexplode(coalesce(ns.nspacl, acldefault('n', ns.nspowner))) a JOIN who ON who.oid = a.grantee
 WHERE a.grantee <> ns.nspowner GROUP BY 1, 2, 3, 4
UNION ALL
SELECT 'owner', rel.relname, rel.relkind::text, pg_get_userbyid(rel.relowner), '{}'::text[] FROM rel
UNION ALL
SELECT 'default', pg_get_userbyid(d.defaclrole), d.defaclobjtype::text, who.name,
       array_agg(a.privilege_type ORDER BY a.privilege_type)
  FROM pg_default_acl d JOIN ns ON d.defaclnamespace = ns.oid, aclexplode(d.defaclacl) a
  JOIN who ON who.oid = a.grantee GROUP BY 1, 2, 3, 4
UNION ALL
SELECT 'unreadable', rel.relname, rel.relkind::text, r.rolname, '{}'::text[] FROM rel, pg_roles r
 WHERE r.rolname = ANY(%(readers)s::text[]) AND rel.relkind <> 'S'
   AND NOT has_table_privilege(r.oid, rel.oid, 'SELECT')
ORDER BY 1, 2, 4"""

_OBJECTS = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}  # default ACL kinds
_ALTER = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE", "S": "SEQUENCE"}


@dataclass(frozen=True)
class Finding:
    """One thing wrong: kind (object, column, schema, owner, default, unreadable), what (the object,
    or for a default the role whose defaults they are), objtype (relkind or default ACL kind), who,
    the privileges in question, and the words a plan shows."""

    kind: str
    what: str
    objtype: str
    who: str
    privileges: tuple[str, ...]
    words: str


def findings(conn: Any, r: Any) -> list[Finding]:
    """What is wrong with the privileges in schema r (a postgres_schema resource); [] when nothing."""
    s, readers = r.attrs["name"], set(r.attrs["readers"])
    ours = {r.attrs["owner"], *r.attrs["default_select"]}
    out = []
    for kind, what, objtype, who, privileges in conn.execute(_SQL, {"schema": s, "readers": sorted(readers)}):
        if who in ours:
            continue
        if kind == "owner":
            out.append(Finding(kind, what, objtype, who, (), f"{who} owns {s}.{what}"))
            continue
        if kind == "unreadable":
            out.append(Finding(kind, what, objtype, who, (), f"{who} cannot SELECT {s}.{what}"))
            continue
        if who in readers:
            allowed = {"USAGE"} if kind == "schema" else {"SELECT"}
        else:  # another role's USAGE on the schema: the `readers` attribute says it already
            allowed = {"USAGE"} if kind == "schema" and who != "PUBLIC" else set()
        held = ", ".join(sorted(set(privileges) - allowed))
        if not held:
            continue
        words = {
            "object": f"{who} holds {held} on {s}.{what}",
            "column": f"{who} holds {held} on {s}.{what}",
            "schema": f"{who} holds {held} on schema {s}",
            "default": f"the default privileges of {what} give {who} {held} on new "
            f"{_OBJECTS.get(objtype, objtype).lower()} in {s}",
        }[kind]
        out.append(Finding(kind, what, objtype, who, tuple(sorted(set(privileges) - allowed)), words))
    return out


def words(found: list[Finding]) -> list[str]:
    return sorted(f.words for f in found)


def repair(cur: Any, r: Any, found: list[Finding]) -> None:
    """Statements that take back what findings() found; the readers' grants are given again after
    (SchemaProvider._converge). A REVOKE of what the admin may not change only warns: the caller
    reads again and says what is left."""
    from psycopg import sql

    s = sql.Identifier(r.attrs["name"])

    def grantee(who: str) -> Any:
        return sql.SQL("PUBLIC") if who == "PUBLIC" else sql.Identifier(who)

    for f in found:
        if f.kind in ("object", "column"):
            name = f.what.split(" (", 1)[0]  # a column's privileges go with REVOKE ALL on its table
            cur.execute(sql.SQL("REVOKE ALL ON {}.{} FROM {}").format(s, sql.Identifier(name), grantee(f.who)))
        elif f.kind == "schema":
            cur.execute(
                sql.SQL("REVOKE {} ON SCHEMA {} FROM {}").format(
                    sql.SQL(", ").join(sql.SQL(p) for p in f.privileges), s, grantee(f.who)
                )
            )
        elif f.kind == "owner":
            cur.execute(
                sql.SQL("ALTER " + _ALTER[f.objtype] + " {}.{} OWNER TO {}").format(
                    s, sql.Identifier(f.what), sql.Identifier(r.attrs["owner"])
                )
            )
        elif f.kind == "default" and f.objtype in _OBJECTS:
            cur.execute(
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} REVOKE ALL ON "
                    + _OBJECTS[f.objtype]
                    + " FROM {}"
                ).format(sql.Identifier(f.what), s, grantee(f.who))
            )
    if r.attrs["readers"]:  # what they hold beyond SELECT goes; SELECT is given again by the caller
        readers = sql.SQL(", ").join(sql.Identifier(x) for x in r.attrs["readers"])
        cur.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(s, readers))
        cur.execute(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(s, readers))
