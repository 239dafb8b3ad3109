"""`projects ...`: the registry of projects (projects.csv)."""

from __future__ import annotations

import json

import click

from .context import commands, render
from .dags import registry_option


@click.group()
def projects() -> None:
    """The projects registry (the seed's projects.csv: Project,Repo,URL[,Branch,Path,Config])."""


@projects.command("list")
@registry_option
@click.option("--json", "as_json", is_flag=True)
def projects_list(registry: str, as_json: bool) -> None:
    """List the registered projects."""
    render.projects(commands.projects_list(registry), as_json)


@projects.command("show")
@click.argument("project")
@registry_option
def projects_show(project: str, registry: str) -> None:
    """Show one registered project."""
    click.echo(json.dumps(commands.projects_show(registry, project).to_json(), indent=2))


@projects.command("add")
@click.argument("project")
@click.argument("url")
@registry_option
@click.option("--repo", default="", help="The repository's name (default: PROJECT).")
@click.option("--branch", default="", help="Branch to publish (default: the repository's default branch).")
@click.option("--path", default="", help="Folder of the repository holding its DAGs (default: all of it).")
@click.option("--config", default="", help="The project's airflow-infra.toml, for --all commands.")
def projects_add(project: str, url: str, registry: str, repo: str, branch: str, path: str, config: str) -> None:
    """Register a project's workflows repository."""
    commands.projects_add(registry, project=project, url=url, repo=repo, branch=branch, path=path, config=config)
    click.echo(f"Added {project} to {registry}.")


@projects.command("remove")
@click.argument("project")
@registry_option
def projects_remove(project: str, registry: str) -> None:
    """Remove a project from the registry (the next `dags sync` unpublishes it)."""
    commands.projects_remove(registry, project)
    click.echo(f"Removed {project} from {registry}.")
