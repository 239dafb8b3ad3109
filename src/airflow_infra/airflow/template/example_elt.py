"""Example ELT: a CSV into the workfiles bucket, then every CSV under incoming/ loaded into raw.cities,
one mapped task per file, each file exactly once (airflow-infra's loader: a file already loaded is
skipped, a retried task never loads twice), then an analytics table. The loads emit the Asset of
raw.cities: a DAG with schedule=[asset(PROJECT, "raw.cities")] runs after them."""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, BaseHook, ObjectStoragePath, Variable, task

from airflow_infra.airflow.loading import LoadOperator, list_files

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
    def create_table(path: str) -> str:
        """The table the file goes into (once)."""
        with _connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS raw.cities (name text, state text, population integer)")
        return path

    # a key, prefix or glob in the project's bucket: one load task per file it names
    files = list_files.override(task_id="files")(PROJECT, "incoming/*.csv")
    load = LoadOperator.partial(task_id="load", project=PROJECT, table="raw.cities").expand(source=files)

    @task
    def transform(loaded: list[dict]) -> None:
        """Build analytics.cities_by_state with the SQL in sql/."""
        with _connect() as conn:
            if not conn.execute("SELECT count(*) FROM raw.cities").fetchone()[0]:
                raise ValueError(f"raw.cities is empty after {list(loaded)}")
            conn.execute((REPO / "sql" / "analytics_cities.sql").read_text())

    create_table(extract()) >> files
    transform(load.output)
