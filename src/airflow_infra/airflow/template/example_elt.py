"""Example ELT: a CSV into the workfiles bucket, then into raw with COPY, then an analytics table."""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, BaseHook, ObjectStoragePath, Variable, task

PROJECT = "{{name}}"
REPO = Path(__file__).resolve().parent.parent


def _connect():
    import psycopg

    c = BaseHook.get_connection(f"{PROJECT}_postgres")
    return psycopg.connect(
        host=c.host, port=c.port, dbname=c.schema, user=c.login, password=c.password, **(c.extra_dejson or {})
    )


with DAG(
    f"{PROJECT}_example_elt",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", PROJECT],
):

    @task
    def extract() -> str:
        """Put the CSV into the project's bucket."""
        target = ObjectStoragePath(Variable.get(f"{PROJECT}_workfiles_url")) / "incoming" / "cities.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / "resources" / "cities.csv").read_bytes())
        return str(target)

    @task
    def load(path: str) -> int:
        """COPY it into raw.cities."""
        with _connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS raw.cities (name text, state text, population integer)")
            conn.execute("TRUNCATE raw.cities")
            with conn.cursor().copy("COPY raw.cities FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                copy.write(ObjectStoragePath(path).read_bytes())
            return conn.execute("SELECT count(*) FROM raw.cities").fetchone()[0]

    @task
    def transform(rows: int) -> None:
        """Build analytics.cities_by_state with the SQL in sql/."""
        if not rows:
            raise ValueError("raw.cities is empty")
        with _connect() as conn:
            conn.execute((REPO / "sql" / "analytics_cities.sql").read_text())

    transform(load(extract()))
