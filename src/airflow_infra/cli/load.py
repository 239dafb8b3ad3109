"""`load SOURCE TABLE`: files into a table of the project's database, each once."""

from __future__ import annotations

import json
import sys

import click

from ..loader.load import MODES, FileResult
from ..loader.readers import FORMATS
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
    as_json: bool,
) -> None:
    """Load SOURCE into TABLE (schema.table) as the project's etl role, each file exactly once.

    SOURCE: a key, prefix or glob in the project's bucket (incoming/2024-*.csv.gz), an s3:// or file://
    URL, or a local path. A file loaded before (the same URL and version) is skipped.

    \b
    Example:
      airflow-infra load 'incoming/*.csv.gz' raw.incidents
    """

    def said(f: FileResult) -> None:
        if not as_json:
            what = "skipped (loaded before)" if f.skipped else f"{f.rows:,} rows in {f.seconds:.1f} s"
            click.echo(f"{f.url}: {what}", file=sys.stderr)

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
        on_file=said,
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    rate = result.rows / result.seconds if result.seconds else 0.0
    click.echo(
        f"Loaded {len(result.loaded)} file(s), {result.rows:,} rows ({result.bytes / 1e6:,.1f} MB) into {table} "
        f"in {result.seconds:.1f} s ({rate:,.0f} rows/s); skipped {len(result.skipped)} loaded before."
    )
