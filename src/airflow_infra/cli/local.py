"""`local ...`: the local PostgreSQL server every local project shares."""

from __future__ import annotations

import click

from .context import commands, render


@click.group()
def local() -> None:
    """The local PostgreSQL server that airflow-infra runs (AIRFLOW_INFRA_HOME/postgres)."""


@local.command("start")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (set at first start, or while stopped).")
def local_start(port: int | None) -> None:
    """Start (initialising on first use) the local PostgreSQL."""
    click.echo(render.local_status(commands.local_start(port=port)))


@local.command("stop")
def local_stop() -> None:
    """Stop the local PostgreSQL."""
    click.echo(render.local_status(commands.local_stop()))


@local.command("install-service")
@click.option("--scope", type=click.Choice(["system", "user"]), help="Default: system as root, else user.")
@click.option("--print", "print_only", is_flag=True, help="Show the systemd unit; install nothing.")
def local_install_service(scope: str | None, print_only: bool) -> None:
    """Start the local PostgreSQL at boot and stop it cleanly (a systemd unit)."""
    found = commands.local_install_service(scope=scope, print_only=print_only)
    click.echo(found.text if print_only else f"Installed and started {found.name} ({found.path}).", nl=not print_only)


@local.command("status")
@click.option("--json", "as_json", is_flag=True)
def local_status(as_json: bool) -> None:
    """Show whether the local PostgreSQL runs, where, and from which binaries."""
    click.echo(render.local_status(commands.local_status(), as_json))
