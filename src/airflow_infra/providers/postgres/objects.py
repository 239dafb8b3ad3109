"""What a database or schema holds, in words: the catalog queries a delete's refusal and backup name."""

from __future__ import annotations

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
