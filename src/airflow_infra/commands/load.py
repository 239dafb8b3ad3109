"""`load`: files in the bucket (or anywhere) into a table of the project's database, exactly once, as
the project's etl role (loader/ says how)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

from ..errors import ConfigError
from ..loader.results import FileResult, LoadResult, UnloadResult
from .project import Project, open_project, outputs

__all__ = ["LoadResult", "UnloadResult", "load", "unload"]


def _connector(project: Project, outs: dict[str, Any]) -> Callable[[], Any]:
    """Sessions of the project's etl role, from its outputs (read with reveal)."""
    from ..loader.table import sessions

    if project.config.target.kind == "local":
        from .local import local_server

        local_server().start()  # the local target's server: running (a no-op when it is)
    if "etl_user" not in outs:
        raise ConfigError(f"{project.dir}: the project has no database yet: run `airflow-infra apply` first")
    tls = {k: outs[f"postgres_{k}"] for k in ("sslmode", "sslrootcert") if outs.get(f"postgres_{k}")}
    return sessions(
        host=outs["postgres_host"],
        port=outs["postgres_port"],
        dbname=outs["postgres_database"],
        user=outs["etl_user"],
        password=outs["etl_password"],
        tls=tls,
    )


def _s3(project: Project) -> Callable[[], Any] | None:
    """The S3 client a source in S3 is read with: made (boto3 imported) only for one."""
    import importlib.util

    if importlib.util.find_spec("boto3") is None:
        return None
    b = project.config.bucket

    def client() -> Any:
        from ..aws.clients import s3_client

        return s3_client(
            region=project.config.bucket_region, endpoint_url=b.endpoint_url, addressing_style=b.addressing_style
        )

    return client


@overload
def load(
    project: str | Path,
    source: None = None,
    table: None = None,
    *,
    vars: Sequence[str] = (),
    var_files: Sequence[str | Path] = (),
    create_home: bool = False,
) -> Project: ...


@overload
def load(
    project: Project | str | Path,
    source: str,
    table: str,
    *,
    format: str | None = None,
    mode: str = "append",
    key: Sequence[str] = (),
    reload: bool = False,
    jobs: int = 1,
    delimiter: str = ",",
    quote: str = '"',
    null: str = "",
    header: bool = True,
    encoding: str = "utf8",
    ignore_extra_columns: bool = False,
    max_errors: int = 0,
    reject_file: str | Path | None = None,
    create: bool = False,
    types: Mapping[str, str] | Sequence[str] = (),
    on_file: Callable[[FileResult], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    on_files: Callable[[int, int], None] | None = None,
) -> LoadResult: ...


def load(
    project: Project | str | Path,
    source: str | None = None,
    table: str | None = None,
    *,
    format: str | None = None,
    mode: str = "append",
    key: Sequence[str] = (),
    reload: bool = False,
    jobs: int = 1,
    delimiter: str = ",",
    quote: str = '"',
    null: str = "",
    header: bool = True,
    encoding: str = "utf8",
    ignore_extra_columns: bool = False,
    max_errors: int = 0,
    reject_file: str | Path | None = None,
    create: bool = False,
    types: Mapping[str, str] | Sequence[str] = (),
    on_file: Callable[[FileResult], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    on_files: Callable[[int, int], None] | None = None,
    vars: Sequence[str] = (),
    var_files: Sequence[str | Path] = (),
    create_home: bool = False,
) -> LoadResult | Project:
    """Load SOURCE (a key, prefix or glob in the project's bucket, an s3:// or file:// URL, or a local
    path) into TABLE (schema.table), each file once: a file the ledger has is skipped (reload: loaded
    again). mode: append, replace (the table's rows become the files', in one transaction) or upsert
    (on key). Returns what was loaded and skipped, with rows, bytes and seconds. max_errors: rows
    PostgreSQL refuses, per file, set aside rather than stopping the file (kept in the ledger's
    airflow_infra.rejects; reject_file: also written there as CSV). ignore_extra_columns: a file's column
    the table lacks is left out (else an error naming it). create: TABLE made from the first
    file's columns when it does not exist (types: {COL: TYPE} over what the file says).

    load(project_dir) alone opens the project, as open_project() does: its name before the loader."""
    if source is None and table is None and not isinstance(project, Project):
        warnings.warn("load(project_dir) is open_project(project_dir)", DeprecationWarning, stacklevel=2)
        return open_project(project, vars=vars, var_files=var_files, create_home=create_home)
    if source is None or table is None:
        raise ConfigError("load: give both SOURCE and TABLE")
    p = project if isinstance(project, Project) else open_project(project)
    from ..loader.load import load_files
    from ..loader.readers import CsvOptions
    from ..loader.sources import resolve

    outs = {k: v["value"] for k, v in outputs(p, reveal=True).items()}  # read once: the bucket and the etl role
    files = resolve(source, bucket_url=outs.get("bucket_url"), s3_client=_s3(p))
    options = CsvOptions(
        delimiter=delimiter, quote=quote, null=null, header=header, encoding=encoding, ignore_extra=ignore_extra_columns
    )
    if on_files is not None:  # what is about to be read: (files, bytes as stored), for a progress bar
        on_files(len(files), sum(f.size for f in files))
    return load_files(
        _connector(p, outs),
        files,
        table,
        format=format,
        mode=mode,
        key=list(key) or None,
        reload=reload,
        jobs=jobs,
        options=options,
        on_file=on_file,
        on_bytes=on_bytes,
        max_errors=max_errors,
        reject_file=reject_file,
        create=create,
        types=types,
    )


def unload(
    project: Project | str | Path,
    source: str,
    dest: str,
    *,
    format: str | None = None,
    overwrite: bool = False,
    on_bytes: Callable[[int], None] | None = None,
) -> UnloadResult:
    """SOURCE (a table, schema.table, or a query) into DEST (a key of the project's bucket, an s3:// or
    file:// URL, or a local path) as CSV (.csv, .csv.gz, .csv.zst) or Parquet, read by the project's etl
    role in a READ ONLY transaction. DEST is written whole or not at all; one that exists is replaced
    only with overwrite."""
    p = project if isinstance(project, Project) else open_project(project)
    from ..loader.unload import destination
    from ..loader.unload import unload as unload_rows

    outs = {k: v["value"] for k, v in outputs(p, reveal=True).items()}
    where = destination(dest, bucket_url=outs.get("bucket_url"), s3_client=_s3(p))
    return unload_rows(_connector(p, outs), source, where, format=format, overwrite=overwrite, on_bytes=on_bytes)
