"""Everything that holds data counts as data (invariant 1): not only tables.

A schema or database holding only views, functions, sequences, types, foreign tables ... is
refused by destroy and by schema removal without --force-delete-data; with it, the backup comes
first and holds the object.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from airflow_infra.localserver.server import LocalServer

# kind as the plan names it -> statements made in schema {s} (by the superuser)
OBJECTS = {
    "view": "CREATE VIEW {s}.obj AS SELECT 1 AS one",
    "materialized view": "CREATE MATERIALIZED VIEW {s}.obj AS SELECT 1 AS one",
    "sequence": "CREATE SEQUENCE {s}.obj",
    "function": "CREATE FUNCTION {s}.obj() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "procedure": "CREATE PROCEDURE {s}.obj() LANGUAGE sql AS 'SELECT 1'",
    "aggregate": "CREATE AGGREGATE {s}.obj(int) (SFUNC = int4pl, STYPE = int)",
    "type": "CREATE TYPE {s}.obj AS ENUM ('a', 'b')",
    "domain": "CREATE DOMAIN {s}.obj AS int CHECK (VALUE > 0)",
    "foreign table": "CREATE FOREIGN TABLE {s}.obj (id int) SERVER airflow_infra_test_server",
    "table": "CREATE TABLE {s}.obj (id int) PARTITION BY RANGE (id)",
    "collation": 'CREATE COLLATION {s}.obj FROM "C"',
    "operator": "CREATE OPERATOR {s}.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq)",
    "text search object": "CREATE TEXT SEARCH CONFIGURATION {s}.obj (COPY = pg_catalog.simple)",
}


def _schema(kind: str) -> str:
    return "k_" + kind.replace(" ", "_")


def _dump_lists(server: LocalServer, dump: str) -> str:
    proc = subprocess.run(
        [str(server.bindir / "pg_restore"), "--list", dump], capture_output=True, text=True, check=True
    )
    return proc.stdout


def test_schemas_holding_any_kind_of_object_are_data(cli, superuser, server, name):
    cli("init")
    toml = cli.dir / "airflow-infra.toml"
    schemas = sorted(_schema(k) for k in OBJECTS)
    original = toml.read_text()
    toml.write_text(original.replace('"analytics"]', '"analytics", ' + ", ".join(f'"{s}"' for s in schemas) + "]"))
    cli("apply", "--auto-approve")
    with superuser(name) as conn:
        conn.execute("CREATE FOREIGN DATA WRAPPER airflow_infra_test_fdw")
        conn.execute("CREATE SERVER airflow_infra_test_server FOREIGN DATA WRAPPER airflow_infra_test_fdw")
        for kind, statement in OBJECTS.items():
            conn.execute(statement.format(s=_schema(kind)))

    toml.write_text(original)  # every k_* schema removed from the config
    plan = json.loads(cli("plan", "--json").stdout)
    holds = {c["address"]: c["holds_data"] for c in plan["changes"] if c["action"] == "delete"}
    assert holds == {f"postgres_schema.{_schema(k)}": f"1 {k}" for k in OBJECTS}
    refused = cli("apply", "--auto-approve", expect=1)
    assert "--force-delete-data" in refused.stderr and "1 view" in refused.stderr
    assert cli("state", "list").stdout.count("k_") == len(OBJECTS)

    done = cli("apply", "--auto-approve", "--force-delete-data")
    dumps = [line.split()[-1] for line in done.stdout.splitlines() if line.startswith("Backup written: ")]
    assert len(dumps) == len(OBJECTS)
    listed = "\n".join(_dump_lists(server, d) for d in dumps)
    for kind in OBJECTS:
        assert f" {_schema(kind)} " in listed, f"{kind} is in no backup"
    with superuser(name) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'k\\_%'").fetchone()[0] == 0


@pytest.mark.parametrize("kind", ["view", "function", "sequence"])
def test_a_database_holding_only_one_object_is_data(cli, superuser, server, name, kind):
    cli("up")
    with superuser(name) as conn:
        conn.execute(OBJECTS[kind].format(s="public"))
    refused = cli("destroy", "--auto-approve", expect=1)
    assert f"postgres_database.main holds 1 {kind}" in refused.stderr
    with superuser() as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    done = cli("destroy", "--auto-approve", "--force-delete-data")
    dump = next(w for w in done.stdout.split() if w.endswith(".dump") and f"/{name}-" in w)
    assert " public obj" in _dump_lists(server, dump)


def test_a_saved_plan_is_checked_again_before_it_deletes(cli, superuser, name):
    """Data written after the plan was saved is still refused."""
    cli("up")
    saved = str(cli.dir / "destroy.plan")
    cli("plan", "--destroy", "--out", saved)
    with superuser(name) as conn:
        conn.execute("CREATE VIEW raw.late AS SELECT 1 AS one")
    refused = cli("apply", "--auto-approve", saved, expect=1)
    assert "holds 1 view" in refused.stderr
    with superuser(name) as conn:
        assert conn.execute("SELECT 1 FROM pg_views WHERE viewname = 'late'").fetchone()


def test_objects_in_other_schemas_that_depend_on_a_removed_schema_are_never_dropped(cli, superuser, name):
    """DROP SCHEMA ... CASCADE would take a column, a partition and a view from schemas that stay, and
    the schema's backup would not hold them: refused even with --force-delete-data."""
    cli("up")
    with superuser(name) as conn:
        conn.execute(f"SET ROLE {name}_owner")
        conn.execute("CREATE TYPE raw.color AS ENUM ('red', 'green')")
        conn.execute("CREATE TABLE staging.keep (id int, c raw.color)")
        conn.execute("INSERT INTO staging.keep VALUES (1, 'red'), (2, 'green')")
        conn.execute("CREATE TABLE raw.events (d date, n int) PARTITION BY RANGE (d)")
        conn.execute(
            "CREATE TABLE staging.events_2024 PARTITION OF raw.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
        )
        conn.execute("INSERT INTO raw.events SELECT date '2024-01-01' + g % 300, g FROM generate_series(1, 1000) g")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text().replace('"raw", ', ""))
    plan = cli("plan").stdout
    assert "in other schemas depend on it" in plan and "staging.keep" in plan
    refused = cli("apply", "--auto-approve", "--force-delete-data", expect=1)
    assert "objects in other schemas depend on schema 'raw'" in refused.stderr
    assert "column c of table staging.keep" in refused.stderr and "staging.events_2024" in refused.stderr
    with superuser(name) as conn:
        assert conn.execute("SELECT count(*) FROM staging.keep WHERE c IS NOT NULL").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM staging.events_2024").fetchone()[0] == 1000
    assert "postgres_schema.raw" in cli("state", "list").stdout
