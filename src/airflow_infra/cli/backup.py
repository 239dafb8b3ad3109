"""`backup` (now) and `backup list`: the project's database and bucket, backed up on demand."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from .context import Ctx, commands, pass_ctx


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_context
def backup(click_ctx: click.Context, as_json: bool) -> None:
    """Back up the project's database and bucket now (`backup list` shows the backups).

    \b
    Example:
      airflow-infra backup && airflow-infra backup list
    """
    if click_ctx.invoked_subcommand is not None:
        return
    c = click_ctx.find_object(Ctx)
    assert c is not None
    done = commands.backup(c.project(), lock_timeout=c.lock_timeout)
    if as_json:
        click.echo(json.dumps(done.to_json(), indent=2))
        return
    for path in done.backups:
        click.echo(f"Backed up: {path}")
    click.echo(f"{len(done.backups)} backup(s) in {done.seconds:.1f} s; `airflow-infra restore BACKUP` takes one back.")


@backup.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
@pass_ctx
def backup_list(c: Ctx, as_json: bool) -> None:
    """The backups of this project's database and bucket in its backup location, oldest first."""
    found = commands.backup_list(c.project())
    if as_json:
        click.echo(json.dumps([b.to_json() for b in found], indent=2))
        return
    if not found:
        click.echo("No backups of this project in its backup location.")
        return
    now = datetime.now(UTC)
    click.echo(f"{'taken (UTC)':<19} {'age':>8} {'kind':<9} {'size':>11}  path")
    for b in found:
        hours = (now - b.taken).total_seconds() / 3600
        age = f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.0f} d"
        click.echo(f"{b.taken:%Y-%m-%d %H:%M:%S} {age:>8} {b.kind:<9} {b.size / 1e6:>8.1f} MB  {b.path}")
