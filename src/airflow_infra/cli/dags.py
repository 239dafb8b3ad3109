"""The CLI of `dags`: publishing the registered projects' DAGs (sync, install-importer) for Airflow 2 and
DAG folders, and the DAG bundles an Airflow 3 deployment reads. Thin, as cli.py; it adds the group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import click

F = TypeVar("F", bound=Callable[..., Any])


@overload
def registry_option(f: F, *, text: str = ...) -> F: ...
@overload
def registry_option(f: None = None, *, text: str = ...) -> Callable[[F], F]: ...
def registry_option(f: F | None = None, *, text: str = "The projects registry.") -> F | Callable[[F], F]:
    """--registry, for every command that reads projects.csv (cli.py's and the platform's too)."""
    option = click.option("--registry", default="projects.csv", metavar="FILE", show_default=True, help=text)
    return option(f) if f is not None else option


@click.group()
def dags() -> None:
    """Bring the registered projects' DAGs into Airflow (bundles for Airflow 3, a DAG folder for 2)."""


@dags.command("bundles")
@registry_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "env", "cfg", "toml"]),
    default="json",
    show_default=True,
    help="json: the list; env: AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST; cfg: airflow.cfg lines; "
    "toml: the same as TOML.",
)
def dags_bundles(registry: str, fmt: str) -> None:
    """Airflow 3 DAG bundles, one per registered project, for any Airflow 3 deployment."""
    from ..commands.platform import dags_bundles as bundles

    click.echo(bundles(registry, fmt=fmt), nl=False)


@dags.command("sync")
@registry_option
@click.option("--dags-folder", required=True, metavar="DIR", help="Airflow's DAG folder.")
@click.option("--jobs", type=click.IntRange(1, 64), default=4, show_default=True, help="Projects at a time.")
@click.option(
    "--check", is_flag=True, help="Compile (and load in a DagBag, where Airflow is importable) before publishing."
)
@click.option(
    "--recheck",
    is_flag=True,
    help="--check the published revisions again too (done by itself when the Airflow they passed with changed).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1, 3600),
    default=300,
    show_default=True,
    metavar="SECONDS",
    help="The longest one git call (a clone, a fetch) may take; a server that hangs fails its project only.",
)
@click.option("--json", "as_json", is_flag=True)
def dags_sync(
    registry: str, dags_folder: str, jobs: int, check: bool, recheck: bool, timeout: float, as_json: bool
) -> int:
    """Clone or fetch each project's repository and publish it at DIR/<Project>, atomically."""
    from .. import commands
    from . import render

    results = commands.dags_sync(registry, dags_folder, jobs=jobs, check=check, recheck=recheck, timeout=timeout)
    render.dags_sync(results, as_json)
    return 1 if any(r.result == "failed" for r in results) else 0


@dags.command("install-importer")
@registry_option
@click.option("--dags-folder", required=True, metavar="DIR", help="Airflow's DAG folder.")
@click.option("--schedule", default="*/5 * * * *", show_default=True, help="Cron schedule of the import_dags DAG.")
@click.option("--jobs", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--no-check", is_flag=True, help="Publish without compiling or loading the DAGs first.")
def dags_install_importer(registry: str, dags_folder: str, schedule: str, jobs: int, no_check: bool) -> None:
    """Write the import_dags DAG, which runs `dags sync` on a schedule."""
    from .. import commands

    path = commands.dags_install_importer(
        dags_folder, registry=registry, schedule=schedule, jobs=jobs, check=not no_check
    )
    click.echo(f"Wrote {path}")
