"""`load SOURCE TABLE`: files into a table of the project's database, each once."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import TYPE_CHECKING

import click

from ..loader import FORMATS, MODES

if TYPE_CHECKING:
    from ..loader.results import FileResult
from .context import Ctx, commands, pass_ctx


@click.command()
@click.argument("source")
@click.argument("table")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: from each file's name.")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="append",
    show_default=True,
    help="append: add the rows; replace: the table's rows become the files' (one transaction); upsert: "
    "insert or update on --key.",
)
@click.option("--key", "key", metavar="COL[,COL]", help="upsert: the key (a unique index on exactly it).")
@click.option("--reload", is_flag=True, help="Load files the ledger says were loaded already, again.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Files at a time.")
@click.option("--delimiter", default=",", show_default=True, help="CSV: the field delimiter.")
@click.option("--null", default="", help="CSV: what stands for NULL (default: an unquoted empty field).")
@click.option("--no-header", is_flag=True, help="CSV: no header line; the columns are the table's, in order.")
@click.option("--encoding", default="utf8", show_default=True, help="CSV: the file's encoding.")
@click.option(
    "--ignore-extra-columns", is_flag=True, help="Leave out a file's columns the table lacks (else: refused)."
)
@click.option(
    "--max-errors",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Bad rows a file may set aside and still load its good rows (one more: nothing of it is loaded).",
)
@click.option(
    "--reject-file",
    type=click.Path(dir_okay=False, writable=True),
    help="With --max-errors: write the rows set aside, with their reasons, to this CSV file.",
)
@click.option(
    "--create",
    is_flag=True,
    help="Make TABLE from the first file's columns when it does not exist (Parquet's types; CSV's and JSON "
    "lines' inferred from the first 10,000 rows).",
)
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="COL=TYPE",
    help="With --create: a column's PostgreSQL type (amount=numeric(12,2)); repeat for more.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
@pass_ctx
def load(
    c: Ctx,
    source: str,
    table: str,
    fmt: str | None,
    mode: str,
    key: str | None,
    reload: bool,
    jobs: int,
    delimiter: str,
    null: str,
    no_header: bool,
    encoding: str,
    ignore_extra_columns: bool,
    max_errors: int,
    reject_file: str | None,
    create: bool,
    types: tuple[str, ...],
    as_json: bool,
) -> None:
    """Load SOURCE into TABLE (schema.table) as the project's etl role, each file exactly once.

    SOURCE: a key, prefix or glob in the project's bucket (incoming/2024-*.csv.gz), an s3:// or file://
    URL, or a local path. A file loaded before (the same URL and version) is skipped.

    \b
    Example:
      airflow-infra load 'incoming/*.csv.gz' raw.incidents
    """

    bar = _Bar() if sys.stderr.isatty() and not as_json else None

    def said(f: FileResult) -> None:
        if bar is not None:
            bar.done(f)
        elif not as_json:
            what = "skipped (loaded before)" if f.skipped else f"{f.rows:,} rows in {f.seconds:.1f} s"
            what += f", {f.rejected:,} set aside" if f.rejected else ""
            click.echo(f"{f.url}: {what}", file=sys.stderr)

    with bar or contextlib.nullcontext():
        result = commands.load(
            c.project(),
            source,
            table,
            format=fmt,
            mode=mode,
            key=[k.strip() for k in key.split(",")] if key else (),
            reload=reload,
            jobs=jobs,
            delimiter=delimiter,
            null=null,
            header=not no_header,
            encoding=encoding,
            ignore_extra_columns=ignore_extra_columns,
            max_errors=max_errors,
            reject_file=reject_file,
            create=create,
            types=types,
            on_file=said,
            on_bytes=bar.read if bar is not None else None,
            on_files=bar.files if bar is not None else None,
        )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    rate = result.rows / result.seconds if result.seconds else 0.0
    if result.created:
        click.echo(f"Created {table} from {result.files[0].url}'s columns.")
    click.echo(
        f"Loaded {len(result.loaded)} file(s), {result.rows:,} rows ({result.bytes / 1e6:,.1f} MB) into {table} "
        f"in {result.seconds:.1f} s ({rate:,.0f} rows/s); skipped {len(result.skipped)} loaded before."
    )
    if result.rejected:
        where = f"written to {reject_file}" if reject_file else "kept in the table airflow_infra.rejects"
        click.echo(f"Set aside {result.rejected:,} bad row(s) ({where}).")


@click.command()
@click.argument("source")
@click.argument("dest")
@click.option("--format", "fmt", type=click.Choice(("csv", "parquet")), help="Default: from DEST's name.")
@click.option("--overwrite", is_flag=True, help="Replace DEST when it exists (else: refused).")
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
@pass_ctx
def unload(c: Ctx, source: str, dest: str, fmt: str | None, overwrite: bool, as_json: bool) -> None:
    """Write SOURCE (a table, schema.table, or a query) to DEST as CSV or Parquet, read-only.

    DEST: a key in the project's bucket (outgoing/incidents.parquet), an s3:// or file:// URL, or a
    local path; .csv.gz and .csv.zst are compressed. DEST appears whole or not at all.

    \b
    Example:
      airflow-infra unload "SELECT * FROM raw.incidents WHERE day >= '2024-01-01'" outgoing/2024.parquet
    """
    bar = _Bar("unloading") if sys.stderr.isatty() and not as_json else None
    with bar or contextlib.nullcontext():
        result = commands.unload(
            c.project(),
            source,
            dest,
            format=fmt,
            overwrite=overwrite,
            on_bytes=bar.read if bar is not None else None,
        )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    rate = result.rows / result.seconds if result.seconds else 0.0
    click.echo(
        f"Wrote {result.rows:,} rows ({result.bytes / 1e6:,.1f} MB) to {result.url} in {result.seconds:.1f} s "
        f"({rate:,.0f} rows/s)."
    )


class _Bar:
    """A progress bar on the terminal: bytes read of all the files, their speed, the rows so far."""

    def __init__(self, what: str = "loading") -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.rows = 0
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[rows]:,} rows"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.progress.add_task(what, total=None, rows=0)

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def files(self, n: int, size: int) -> None:
        self.progress.update(self.task, total=size, description=f"loading {n} file{'s' if n != 1 else ''}")

    def read(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def done(self, f: FileResult) -> None:
        self.rows += f.rows if not f.skipped else 0
        if f.skipped:
            self.progress.advance(self.task, f.bytes)
        self.progress.update(self.task, rows=self.rows)
