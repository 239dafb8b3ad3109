"""The command line: parse, call one function of airflow_infra.commands, render. Nothing else.
How a command ends (exit status, the one line on stderr) is exits.py's.
"""

from __future__ import annotations

import sys

import click

from ..durations import Seconds, lock_timeout_first
from .backup import backup
from .context import Ctx, commands, pass_ctx, render
from .dags import F, dags, registry_option
from .exits import run
from .load import load, unload
from .local import local
from .platform import platform_group
from .projects import projects
from .state import backend, force_unlock, state


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", default=".", metavar="DIR", help="Project directory (default: the current one).")
@click.option(
    "--var", "vars", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. project.environment=prod."
)
@click.option("--var-file", "var_files", multiple=True, metavar="FILE", help="A TOML file of config overrides.")
@click.option(
    "--lock-timeout",
    type=Seconds(),
    default=0.0,
    metavar="SECONDS",
    help="Wait this long for the state lock (30, 30s, 5m).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="airflow-infra")
@click.pass_context
def cli(
    ctx: click.Context,
    directory: str,
    vars: tuple[str, ...],
    var_files: tuple[str, ...],
    lock_timeout: float,
    debug: bool,
) -> None:
    """Give an Airflow ELT project its infrastructure: a workfiles bucket and a PostgreSQL target.

    Start with `airflow-infra up` in a project directory.
    """
    ctx.obj = Ctx(directory, vars, var_files, lock_timeout, debug)


def fleet_options(f: F) -> F:
    """--all over the registry's projects that have a Config, in parallel."""
    for option in (
        click.option("--jobs", type=click.IntRange(1, 64), default=4, help="With --all: projects at a time."),
        registry_option(text="With --all: the registry."),
        click.option("--all", "all_projects", is_flag=True, help="Every project in the registry with a Config."),
    ):
        f = option(f)
    return f


@cli.command()
@click.option("--name", help="Project name (default: the folder's name).")
@pass_ctx
def init(c: Ctx, name: str | None) -> None:
    """Write airflow-infra.toml for the local target."""
    click.echo(f"Wrote {commands.init(c.directory, name=name)}")


@cli.command()
@pass_ctx
def up(c: Ctx) -> None:
    """Init (if needed), apply without asking, and print the outputs."""
    project, plan, result = commands.up(
        c.directory, vars=c.vars, var_files=c.var_files, lock_timeout=c.lock_timeout, on_event=render.event
    )
    render.up(plan, result, commands.outputs(project, reveal=False))


@cli.command()
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when no changes, 2 when changes, 1 on error.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--out", "out", metavar="FILE", help="Save the plan for `apply FILE`.")
@click.option("--destroy", is_flag=True, help="Plan the destruction of everything in the state.")
@fleet_options
@pass_ctx
def plan(
    c: Ctx,
    detailed_exitcode: bool,
    as_json: bool,
    out: str | None,
    destroy: bool,
    all_projects: bool,
    registry: str,
    jobs: int,
) -> int:
    """Show what apply would change (reads only; writes nothing)."""
    if all_projects:
        results = commands.fleet_plan(registry, jobs=jobs)
        render.fleet(results, as_json)
        return render.fleet_status(results, detailed_exitcode)
    p = commands.plan(c.project(), destroy=destroy)
    if out:
        commands.save_plan(p, out)
    render.plan(p, as_json, out)
    p.refuse_conflicts()
    return 2 if detailed_exitcode and p.has_changes else 0


@cli.command()
@click.argument("planfile", required=False)
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force-delete-data", is_flag=True, help="Allow deleting what holds data, after a backup.")
@click.option(
    "--encrypt-storage",
    is_flag=True,
    help="aws: encrypt an unencrypted RDS instance by a snapshot-copy-restore (stop writers first).",
)
@fleet_options
@pass_ctx
def apply(
    c: Ctx,
    planfile: str | None,
    auto_approve: bool,
    force_delete_data: bool,
    encrypt_storage: bool,
    all_projects: bool,
    registry: str,
    jobs: int,
) -> int:
    """Apply the configuration (or a plan saved with `plan --out`)."""
    if all_projects:
        if encrypt_storage:
            raise click.UsageError("--encrypt-storage is for one project at a time, not with --all")
        # without --auto-approve every project is planned, shown and confirmed first (when one has changes: only
        # then is a terminal needed); each applies its reviewed plan
        confirm = (
            None
            if auto_approve
            else render.confirm(False, "apply these projects' plans", render.fleet_review, early=False)
        )
        results = commands.fleet_apply(registry, confirm=confirm, jobs=jobs, lock_timeout=c.lock_timeout)
        render.fleet(results)  # None: cancelled
        return render.fleet_status(results)
    # A saved plan was reviewed when it was made: applying it does not ask again (as Terraform).
    confirm = None if planfile else render.confirm(auto_approve, "apply these actions", render.plan_review)
    saved = commands.load_plan(planfile) if planfile else None
    p, result = commands.apply(
        c.project(),
        plan=saved,
        confirm=confirm,
        force_delete_data=force_delete_data,
        lock_timeout=c.lock_timeout,
        on_event=render.event,
        encrypt_storage=encrypt_storage,
        on_progress=render.progress,
    )
    return render.finished(p, result, "apply")


@cli.command()
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--force-delete-data", is_flag=True, help="Delete the bucket's objects and the database's tables, after a backup."
)
@click.option(
    "--skip-final-snapshot", is_flag=True, help='aws, environment "dev" only: no final snapshot of the RDS instance.'
)
@pass_ctx
def destroy(c: Ctx, auto_approve: bool, force_delete_data: bool, skip_final_snapshot: bool) -> int:
    """Destroy everything in the state, in reverse order."""
    confirm = render.confirm(auto_approve, "destroy all these resources", render.plan_review)
    p, result = commands.destroy(
        c.project(),
        confirm=confirm,
        force_delete_data=force_delete_data,
        lock_timeout=c.lock_timeout,
        on_event=render.event,
        skip_final_snapshot=skip_final_snapshot,
        on_progress=render.progress,
    )
    return render.finished(p, result, "destroy")


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Terraform's shape: {name: {value, sensitive}}.")
@click.option("--show-secrets", is_flag=True, help="Show sensitive values.")
@fleet_options
@pass_ctx
def output(
    c: Ctx, name: str | None, as_json: bool, show_secrets: bool, all_projects: bool, registry: str, jobs: int
) -> int | None:
    """Show the outputs (sensitive ones only with --show-secrets)."""
    if all_projects:
        results = commands.fleet_outputs(registry, jobs=jobs, reveal=show_secrets)
        render.fleet_outputs(results, as_json, show_secrets)
        return render.fleet_status(results)
    elif name:
        render.output_value(commands.output(c.project(), name, reveal=show_secrets), as_json)
    else:
        render.outputs(commands.outputs(c.project(), reveal=show_secrets), as_json, show_secrets)
    return None  # exit status 0


@cli.group(invoke_without_command=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["env", "json", "yaml", "uri"]),
    default="env",
    show_default=True,
    help="env: AIRFLOW_CONN_* lines to source; json/yaml: for `airflow connections import`; uri: conn_id=URI lines.",
)
@click.option("--output", metavar="FILE", help="Write to FILE (mode 0600, secrets included) instead of stdout.")
@click.option("--show-secrets", is_flag=True, help="Print passwords on stdout.")
@click.pass_context
def connections(ctx: click.Context, fmt: str, output: str | None, show_secrets: bool) -> None:
    """The project's Airflow connections and variables."""
    if ctx.invoked_subcommand is None:
        render.refuse_masked_file(output, show_secrets)
        text = commands.connections(ctx.obj.project(), fmt=fmt, reveal=show_secrets, output=output)
        render.connections(text, output, show_secrets)


@connections.command("push")
@click.option("--to", "to", type=click.Choice(["aws-secrets-manager", "airflow"]), required=True)
@click.option(
    "--prefix", default="airflow/connections", show_default=True, help="aws-secrets-manager: connections prefix."
)
@click.option("--variables-prefix", default="airflow/variables", show_default=True)
@click.option("--airflow-bin", default="airflow", show_default=True, help="airflow: the command to run.")
@pass_ctx
def connections_push(c: Ctx, to: str, prefix: str, variables_prefix: str, airflow_bin: str) -> None:
    """Write the connections where Airflow reads them (idempotent)."""
    render.pairs(
        commands.connections_push(
            c.project(),
            to=to,
            prefix=prefix,
            variables_prefix=variables_prefix,
            airflow_bin=airflow_bin,
            lock_timeout=c.lock_timeout,
        )
    )


@cli.command()
@click.argument("name")
@click.argument("directory", required=False, metavar="[DIR]")
def new(name: str, directory: str | None) -> None:
    """Scaffold a workflows repository for project NAME (default DIR: ./NAME)."""
    click.echo("Made {0}. Next: cd {0} && airflow-infra up".format(commands.new(name, directory)))


@cli.command()
@click.argument("roles", nargs=-1, type=click.Choice(["etl", "reader"]), metavar="[ROLE]...")
@click.option("--push", type=click.Choice(["aws-secrets-manager", "airflow"]), help="Then push Airflow's connections.")
@click.option("--airflow-bin", default="airflow", show_default=True, help="--push airflow: the command to run.")
@pass_ctx
def rotate(c: Ctx, roles: tuple[str, ...], push: str | None, airflow_bin: str) -> None:
    """Set a new password for the etl and/or reader role (default both); the old one stops working."""
    render.pairs(
        commands.rotate(
            c.project(),
            tuple(roles) or ("etl", "reader"),
            lock_timeout=c.lock_timeout,
            push=push,
            airflow_bin=airflow_bin,
        )
    )


@cli.command()
@pass_ctx
def doctor(c: Ctx) -> int:
    """Check from here that each connection works (postgres as the etl user; the bucket)."""
    return render.doctor(commands.doctor(c.project()))


@cli.command("import")
@click.argument("address")
@click.argument("resource_id", metavar="ID")
@pass_ctx
def import_(c: Ctx, address: str, resource_id: str) -> None:
    """Adopt an existing bucket, database, role or schema into the state at ADDRESS."""
    commands.import_resource(c.project(), address, resource_id, lock_timeout=c.lock_timeout)
    click.echo(f"Imported {resource_id} as {address}. Run `airflow-infra plan` to see what apply would change on it.")


@cli.command("import-terraform")
@click.argument("tfstate", type=click.Path(dir_okay=False))
@click.option("--name", help="The project's name (default: the RDS instance's database name).")
@click.option("--environment", default="prod", show_default=True)
@click.option("--module", help="The module holding the seed's resources, e.g. module.airflow_infrastructure.")
@click.option("--region", help="Default: the region in the instance's ARN.")
@click.option(
    "--allow-security-group",
    "allow_sgs",
    multiple=True,
    metavar="SG_ID",
    help="The Airflow workers' security group (repeatable): the only ones let through to 5432.",
)
@click.option(
    "--allow-cidr", "allow_cidrs", multiple=True, metavar="CIDR", help="A network let through to 5432 (repeatable)."
)
@click.option("--connect-through", metavar="HOST:PORT", help="A tunnel to the instance for the in-database setup.")
@pass_ctx
def import_terraform(
    c: Ctx,
    tfstate: str,
    name: str | None,
    environment: str,
    module: str | None,
    region: str | None,
    allow_sgs: tuple[str, ...],
    allow_cidrs: tuple[str, ...],
    connect_through: str | None,
) -> None:
    """Adopt what the seed's Terraform module made (its state: a file or s3://BUCKET/KEY): write airflow-infra.toml
    and take the bucket, security group and RDS instance into the state, changing nothing in AWS."""
    done = commands.import_terraform(
        tfstate,
        c.directory,
        name=name,
        environment=environment,
        module=module,
        region=region,
        allow_security_groups=allow_sgs,
        allow_cidrs=allow_cidrs,
        connect_through=connect_through,
        lock_timeout=c.lock_timeout,
    )
    click.echo(render.terraform_import(done))


@cli.command()
@click.argument("backup")
@click.option("--into", "into", metavar="PROJECT_DIR", help="The project to restore into (default: -C's).")
@click.option("--force-delete-data", is_flag=True, help="Replace what is there, after a backup of it.")
@pass_ctx
def restore(c: Ctx, backup: str, into: str | None, force_delete_data: bool) -> None:
    """Put a backup (a .dump, a .tar.gz or a *.manifest.json) back into a project's database or bucket."""
    done = commands.restore(c.project(into), backup, force_delete_data=force_delete_data, lock_timeout=c.lock_timeout)
    click.echo(render.restored(done, backup))


for group in (state, backend, force_unlock, projects, local, load, unload, backup, dags, platform_group):
    cli.add_command(group)


def main(argv: list[str] | None = None) -> None:
    run(cli, lock_timeout_first(sys.argv[1:] if argv is None else argv))
