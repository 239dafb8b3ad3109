"""The loader in DAGs: an operator and a TaskFlow-friendly function that load files from the project's
bucket into its tables exactly once (loader/), with what Airflow already holds for the project: its
`<project>_postgres` connection (the etl role) and `<project>_workfiles_url` variable, and for a bucket
on S3 its `<project>_workbucket` connection. No password goes through an argument, XCom or a log: it
is read from the connection inside the task, and the task returns a summary (files, rows, bytes).

Each load names an Asset for its table, `airflow-infra://<project>/<schema>/<table>`, so a downstream
DAG can be scheduled on it. For one mapped task per file:

    files = list_files.override(task_id="files")(PROJECT, "incoming/*.csv")
    LoadOperator.partial(task_id="load", project=PROJECT, table="raw.t").expand(source=files)
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, BaseHook, BaseOperator, Variable, task  # type: ignore[import-not-found]

from ..loader.load import load_files
from ..loader.readers import CsvOptions
from ..loader.results import LoadResult
from ..loader.sources import resolve
from ..loader.table import sessions


def asset(project: str, table: str) -> Any:
    """The Asset a load of table emits."""
    schema, _, name = table.partition(".")
    return Asset(uri=f"airflow-infra://{project}/{schema}/{name}", name=f"{project}.{table}")


def _connect(project: str) -> Any:
    c = BaseHook.get_connection(f"{project}_postgres")
    extra = c.extra_dejson or {}
    tls = {k: extra[k] for k in ("sslmode", "sslrootcert") if extra.get(k)}
    return sessions(host=c.host, port=c.port, dbname=c.schema, user=c.login, password=c.password, tls=tls)


def _bucket(project: str) -> tuple[str, Any]:
    """The bucket's URL without a connection id (s3://bucket/prefix/ or file:///path), and an S3 client
    factory from the bucket's connection."""
    url = Variable.get(f"{project}_workfiles_url")
    if not url.startswith("s3://"):
        return url, None
    bucket = url[5:].split("@", 1)[-1]  # ObjectStoragePath's s3://<conn_id>@<bucket>/<prefix>

    def client() -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # type: ignore[import-not-found]

        from ..aws.clients import Bounded

        return Bounded(S3Hook(aws_conn_id=f"{project}_workbucket").get_conn(), "s3")

    return f"s3://{bucket}", client


def load(
    project: str,
    source: str,
    table: str,
    *,
    format: str | None = None,
    mode: str = "append",
    key: list[str] | None = None,
    reload: bool = False,
    jobs: int = 1,
    options: CsvOptions | None = None,
    max_errors: int = 0,
    create: bool = False,
    types: dict[str, str] | None = None,
) -> LoadResult:
    """SOURCE (a key, prefix or glob in the project's bucket, or an s3:// or file:// URL) into TABLE,
    each file once, as the project's etl role (the connection Airflow holds). max_errors: bad rows a
    file may set aside (in airflow_infra.rejects); create: TABLE made from the first file's columns."""
    url, client = _bucket(project)
    files = resolve(source, bucket_url=url, s3_client=client)
    return load_files(
        _connect(project),
        files,
        table,
        format=format,
        mode=mode,
        key=key,
        reload=reload,
        jobs=jobs,
        options=options,
        max_errors=max_errors,
        create=create,
        types=types or {},
    )


@task
def list_files(project: str, source: str) -> list[str]:
    """The URLs SOURCE names in the project's bucket, for one mapped load task per file."""
    url, client = _bucket(project)
    return [f.url for f in resolve(source, bucket_url=url, s3_client=client)]


class LoadOperator(BaseOperator):
    """Load SOURCE into TABLE of PROJECT's database exactly once; emits TABLE's Asset."""

    template_fields = ("source", "table")

    def __init__(
        self,
        *,
        project: str,
        source: str,
        table: str,
        format: str | None = None,
        mode: str = "append",
        key: list[str] | None = None,
        reload: bool = False,
        max_errors: int = 0,
        create: bool = False,
        types: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("outlets", [asset(project, table)])
        super().__init__(**kwargs)
        self.project, self.source, self.table = project, source, table
        self.format, self.mode, self.key, self.reload = format, mode, key, reload
        self.max_errors, self.create, self.types = max_errors, create, types

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """For mapping (.partial(...).expand(source=...)): the table's Asset is the tasks' outlet too
        (__init__, which sets it, runs only when the tasks are expanded)."""
        if "outlets" not in kwargs and isinstance(kwargs.get("project"), str) and isinstance(kwargs.get("table"), str):
            kwargs["outlets"] = [asset(kwargs["project"], kwargs["table"])]
        return super().partial(**kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        result = load(
            self.project,
            self.source,
            self.table,
            format=self.format,
            mode=self.mode,
            key=self.key,
            reload=self.reload,
            max_errors=self.max_errors,
            create=self.create,
            types=self.types,
        )
        for f in result.files:
            said = "skipped (loaded before)" if f.skipped else f"{f.rows} rows"
            self.log.info("%s: %s%s", f.url, said, f", {f.rejected} set aside" if f.rejected else "")
        return result.to_json()  # the summary alone: no password in XCom
