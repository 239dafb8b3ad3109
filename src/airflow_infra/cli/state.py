"""`state ...`, `backend bootstrap` and `force-unlock`: the commands on a project's state and its lock."""

from __future__ import annotations

import json

import click

from ..plugins import STATE_BACKENDS
from .context import Ctx, commands, pass_ctx, render


@click.group()
def state() -> None:
    """Inspect the state."""


@state.command("list")
@pass_ctx
def state_list(c: Ctx) -> None:
    """List the addresses in the state."""
    render.lines(commands.state_list(c.project()))


@state.command("show")
@click.argument("address")
@pass_ctx
def state_show(c: Ctx, address: str) -> None:
    """Show one resource in the state."""
    click.echo(json.dumps(commands.state_show(c.project(), address), sort_keys=True, indent=2))


@state.command("lock")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def state_lock(c: Ctx, as_json: bool) -> None:
    """Show the current state lock, if any."""
    click.echo(render.lock(commands.lock_info(c.project()), as_json))


@state.command("versions")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def state_versions(c: Ctx, as_json: bool) -> None:
    """List the kept states, the current one first."""
    click.echo(render.state_versions(commands.state_versions(c.project()), as_json))


@state.command("rollback")
@click.argument("serial", type=click.IntRange(min=1))
@pass_ctx
def state_rollback(c: Ctx, serial: int) -> None:
    """Bring back a kept state (as a new serial); nothing else changes."""
    render.state_restored(serial, commands.state_rollback(c.project(), serial, lock_timeout=c.lock_timeout))


# `state restore SERIAL`, its name before 0.x: kept for scripts ("restore" is now only backups')
state.add_command(click.Command("restore", callback=state_rollback.callback, params=state_rollback.params, hidden=True))


@state.command("migrate")
@click.option(
    "--to",
    "to_backend",
    type=click.Choice(STATE_BACKENDS.names),
    required=True,
    help="The backend to copy the state into.",
)
@click.option("--dsn-env", help="postgres: the environment variable holding the DSN (default AIRFLOW_INFRA_STATE_DSN).")
@click.option("--path", help="local: the state file, relative to the project directory.")
@pass_ctx
def state_migrate(c: Ctx, to_backend: str, dsn_env: str | None, path: str | None) -> None:
    """Copy the state into another backend, lineage and serial kept."""
    render.state_migrated(
        commands.state_migrate(
            c.project(), to_backend=to_backend, dsn_env=dsn_env, path=path, lock_timeout=c.lock_timeout
        ),
        to_backend,
    )


@click.group()
def backend() -> None:
    """The state backend."""


@backend.command("bootstrap")
@click.option("--auto-approve", "--yes", is_flag=True, help="Change an existing bucket's settings without asking.")
@pass_ctx
def backend_bootstrap(c: Ctx, auto_approve: bool) -> int:
    """Make the state bucket and lock table that [state] names (idempotent)."""
    confirm = render.confirm(auto_approve, "change the existing bucket", render.bucket_changes, early=False)
    return render.bootstrapped(commands.backend_bootstrap(c.project(), confirm=confirm))


@click.command("force-unlock")
@click.argument("lock_id")
@pass_ctx
def force_unlock(c: Ctx, lock_id: str) -> None:
    """Remove the state lock, only when LOCK_ID matches it."""
    commands.force_unlock(c.project(), lock_id)
    click.echo(f"Lock {lock_id} removed.")
