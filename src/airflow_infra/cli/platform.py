"""The CLI of the platform (`platform up|status|logs|down`): thin, over commands/platform.py; cli.py
adds the group."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from .dags import registry_option as registry_choice

if TYPE_CHECKING:
    from ..commands.platform import PlatformStatus

registry_option = registry_choice(
    text="The projects registry; [platform] is read from the airflow-infra.toml beside it."
)


@click.group("platform")
def platform_group() -> None:
    """A local Airflow 3 for every project in the registry (no Docker)."""


def _render(status: PlatformStatus, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(status.to_json(), indent=2))
        return
    click.echo(
        f"Airflow: {status.url}  user: {status.user}"
        + (f"  password: {status.password}" if status.password else "")
        + ("" if status.healthy else "  (not healthy)")
    )
    for c in status.components:
        state = f"running, pid {c['pid']}" if c["running"] else "stopped"
        part = (status.health or {}).get(c["name"].replace("-", "_").replace("api_server", "metadatabase")) or {}
        click.echo(f"  {c['name']:<14} {state:<20} {part.get('status', '') if c['running'] else ''}")


@platform_group.command("up")
@registry_option
@click.option("--json", "as_json", is_flag=True)
def platform_up(registry: str, as_json: bool) -> None:
    """Install Airflow (once), start what is not running, wait until it is healthy."""
    from ..commands.platform import platform_up as up

    status = up(registry, on_progress=lambda m: click.echo(m, err=True))
    if not as_json:
        click.echo("Started: " + ", ".join(status.started) if status.started else "Everything was running: no change.")
    _render(status, as_json)


@platform_group.command("status")
@registry_option
@click.option("--json", "as_json", is_flag=True)
@click.option("--show-secrets", is_flag=True, help="Print the admin user's password.")
def platform_status(registry: str, as_json: bool, show_secrets: bool) -> int:
    """Each process, its pid and health; the URL and the user (exit 1 when not healthy)."""
    from ..commands.platform import platform_status as status

    found = status(registry, reveal=show_secrets)
    _render(found, as_json)
    return 0 if found.healthy else 1


@platform_group.command("logs")
@click.argument("component", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing what is written.")
def platform_logs(component: str | None, follow: bool) -> int:
    """Print a component's log (default: all of them)."""
    from ..commands.platform import platform_logs as logs
    from ..platform.logs import texts

    paths = logs(component)
    if not paths:
        raise click.ClickException("no logs yet: run `airflow-infra platform up` first")
    for text in texts(paths, follow=follow):
        click.echo(text, nl=False)
    return 0


@platform_group.command("down")
def platform_down() -> None:
    """Stop every process (gracefully, then by force after 30 s)."""
    from ..commands.platform import platform_down as down

    stopped = down()
    click.echo("Stopped: " + ", ".join(stopped) if stopped else "Nothing was running.")
