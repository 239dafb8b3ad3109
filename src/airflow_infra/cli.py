"""The command line: parse, call one function of airflow_infra.commands, render. Nothing else.

Exit status: 0 success; 1 any error (one line on stderr; traceback only with --debug);
2 only from `plan --detailed-exitcode` when there are changes.
"""

from __future__ import annotations

import json
import sys

import click

from .errors import AirflowInfraError, ConfirmationRequired


class Ctx:
    def __init__(self, directory: str, vars: tuple, var_files: tuple, lock_timeout: float, debug: bool):
        self.directory, self.vars, self.var_files = directory, vars, var_files
        self.lock_timeout, self.debug = lock_timeout, debug

    def project(self):
        from . import commands

        return commands.load(self.directory, vars=self.vars, var_files=self.var_files)


pass_ctx = click.make_pass_decorator(Ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", default=".", metavar="DIR", help="Project directory (default: the current one).")
@click.option("--var", "vars", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. project.environment=prod.")
@click.option("--var-file", "var_files", multiple=True, metavar="FILE", help="A TOML file of config overrides.")
@click.option("--lock-timeout", type=float, default=0.0, metavar="SECONDS", help="Wait this long for the state lock.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="airflow-infra")
@click.pass_context
def cli(ctx, directory, vars, var_files, lock_timeout, debug):
    """Give an Airflow ELT project its infrastructure: a workfiles bucket and a PostgreSQL target.

    Start with `airflow-infra up` in a project directory.
    """
    ctx.obj = Ctx(directory, vars, var_files, lock_timeout, debug)


def fleet_options(f):
    """--all over the registry's projects that have a Config, in parallel."""
    f = click.option("--jobs", type=click.IntRange(1, 64), default=4, help="With --all: projects at a time.")(f)
    f = click.option("--registry", default="projects.csv", metavar="FILE", help="With --all: the projects registry.")(f)
    return click.option("--all", "all_projects", is_flag=True, help="Every project in the registry that has a Config.")(f)


def _fleet_report(results, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], sort_keys=True, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("project", "add", "change", "destroy", "result")
    for r in results:
        counts = r.plan.counts() if r.plan is not None else {}
        result = (f"[red]error: {r.error}[/red]" if r.error else
                  "applied" if r.applied else "changes" if r.plan is not None and r.plan.has_changes else "no changes")
        table.add_row(r.project, *(str(counts.get(k, "")) for k in ("add", "change", "destroy")), result)
    Console(soft_wrap=True).print(table)


def _fleet_exit(results, detailed_exitcode: bool) -> None:
    """Exit status across projects: 1 if any failed, else (with --detailed-exitcode) 2 if any has changes."""
    if any(r.error for r in results):
        sys.exit(1)
    if detailed_exitcode and any(r.plan is not None and r.plan.has_changes for r in results):
        sys.exit(2)


def _confirm(auto_approve: bool, what: str):
    """The library's confirm callback: shows the plan, then asks on a terminal (or not, with
    --auto-approve). Without a terminal it refuses at once, before anything is read or locked."""
    if not auto_approve and not sys.stdin.isatty():
        raise ConfirmationRequired(f"{what} needs confirmation and there is no terminal to ask on: pass --auto-approve")

    def ask(plan) -> bool:
        from .render import plan_text

        click.echo(plan_text(plan) + "\n")
        if auto_approve:
            return True
        answer = click.prompt(f"Do you want to {what}? Only 'yes' will be accepted", default="", show_default=False)
        return answer.strip() == "yes"

    return ask


def _report(plan, result, verb: str) -> None:
    if result is None:
        click.echo(f"{verb.capitalize()} cancelled.")
        return
    counts = plan.counts()
    click.echo(click.style(f"{verb.capitalize()} complete! Resources: {counts['add']} added, {counts['change']} changed, "
                           f"{counts['destroy']} destroyed.", fg="green", bold=True))


@cli.command()
@click.option("--name", help="Project name (default: the folder's name).")
@pass_ctx
def init(c: Ctx, name):
    """Write airflow-infra.toml for the local target."""
    from . import commands

    path = commands.init(c.directory, name=name)
    click.echo(f"Wrote {path}")


@cli.command()
@pass_ctx
def up(c: Ctx):
    """Init (if needed), apply without asking, and print the outputs."""
    from . import commands
    from .render import event, outputs_text

    project, plan, result = commands.up(c.directory, vars=c.vars, var_files=c.var_files,
                                        lock_timeout=c.lock_timeout, on_event=event)
    if not plan.has_changes:
        click.echo("No changes. The infrastructure matches the configuration.")
    else:
        _report(plan, result, "apply")
    click.echo("\nOutputs:\n" + outputs_text(commands.outputs(project, reveal=False), show_secrets=False))


@cli.command()
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when no changes, 2 when changes, 1 on error.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--out", "out", metavar="FILE", help="Save the plan for `apply FILE`.")
@click.option("--destroy", is_flag=True, help="Plan the destruction of everything in the state.")
@fleet_options
@pass_ctx
def plan(c: Ctx, detailed_exitcode, as_json, out, destroy, all_projects, registry, jobs):
    """Show what apply would change (reads only; writes nothing)."""
    from . import commands
    from .render import plan_text

    if all_projects:
        results = commands.fleet_plan(registry, jobs=jobs)
        _fleet_report(results, as_json)
        _fleet_exit(results, detailed_exitcode)
        return
    p = commands.plan(c.project(), destroy=destroy)
    click.echo(json.dumps(p.to_json(), sort_keys=True, indent=2) if as_json else plan_text(p))
    if out:
        commands.save_plan(p, out)
        if not as_json:
            click.echo(f"\nSaved the plan to {out}: apply it with `airflow-infra apply {out}`.")
    if detailed_exitcode and p.has_changes:
        sys.exit(2)


@cli.command()
@click.argument("planfile", required=False)
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force-delete-data", is_flag=True, help="Allow deleting what holds data, after a backup.")
@click.option("--encrypt-storage", is_flag=True,
              help="aws: encrypt an unencrypted RDS instance by a snapshot-copy-restore (stop writers first).")
@fleet_options
@pass_ctx
def apply(c: Ctx, planfile, auto_approve, force_delete_data, encrypt_storage, all_projects, registry, jobs):
    """Apply the configuration (or a plan saved with `plan --out`)."""
    from . import commands
    from .render import event, progress

    if all_projects:
        if encrypt_storage:
            raise click.UsageError("--encrypt-storage is for one project at a time, not with --all")
        if not auto_approve and not sys.stdin.isatty():
            raise ConfirmationRequired("apply --all needs confirmation and there is no terminal to ask on: "
                                       "pass --auto-approve")
        plans = None
        if not auto_approve:
            planned = commands.fleet_plan(registry, jobs=jobs)
            _fleet_report(planned, False)
            if click.prompt("\nApply these projects' plans? Only 'yes' will be accepted", default="",
                            show_default=False).strip() != "yes":
                click.echo("Apply cancelled.")
                return
            plans = {r.project: r.plan for r in planned if r.plan is not None}
        results = commands.fleet_apply(registry, plans=plans, jobs=jobs, lock_timeout=c.lock_timeout)
        _fleet_report(results, False)
        _fleet_exit(results, False)
        return

    # A saved plan was reviewed when it was made: applying it does not ask again (as Terraform).
    confirm = None if planfile else _confirm(auto_approve, "apply these actions")
    project = c.project()
    saved = commands.load_plan(planfile) if planfile else None
    p, result = commands.apply(project, plan=saved, confirm=confirm, force_delete_data=force_delete_data,
                               lock_timeout=c.lock_timeout, on_event=event, encrypt_storage=encrypt_storage,
                               on_progress=progress)
    _finish(p, result, "apply")


def _finish(p, result, verb: str) -> None:
    from .render import plan_text

    if p.has_changes:
        _report(p, result, verb)
    else:
        click.echo(plan_text(p))


@cli.command()
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force-delete-data", is_flag=True, help="Delete the bucket's objects and the database's tables, after a backup.")
@click.option("--skip-final-snapshot", is_flag=True, help="aws, environment \"dev\" only: no final snapshot of the RDS instance.")
@pass_ctx
def destroy(c: Ctx, auto_approve, force_delete_data, skip_final_snapshot):
    """Destroy everything in the state, in reverse order."""
    from . import commands
    from .render import event, progress

    confirm = _confirm(auto_approve, "destroy all these resources")
    p, result = commands.destroy(c.project(), confirm=confirm, force_delete_data=force_delete_data,
                                 lock_timeout=c.lock_timeout, on_event=event, skip_final_snapshot=skip_final_snapshot,
                                 on_progress=progress)
    _finish(p, result, "destroy")


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Terraform's shape: {name: {value, sensitive}}.")
@click.option("--show-secrets", is_flag=True, help="Show sensitive values.")
@fleet_options
@pass_ctx
def output(c: Ctx, name, as_json, show_secrets, all_projects, registry, jobs):
    """Show the outputs (sensitive ones only with --show-secrets)."""
    from . import commands
    from .render import outputs_json, outputs_text

    if all_projects:
        results = commands.fleet_outputs(registry, jobs=jobs, reveal=show_secrets)
        if as_json:
            click.echo(json.dumps([r.to_json(show_secrets=show_secrets) for r in results], sort_keys=True, indent=2))
        for r in results if not as_json else []:
            click.echo(click.style(f"# {r.project}", bold=True))
            click.echo(f"error: {r.error}" if r.error else outputs_text(r.outputs or {}, show_secrets))
        _fleet_exit(results, False)
        return

    outs = commands.outputs(c.project(), reveal=show_secrets)
    if name:
        if name not in outs:
            raise AirflowInfraError(f"NAME {name!r} is not an output (outputs: {', '.join(outs) or 'none, apply first'})")
        o = outs[name]
        if o["sensitive"] and not show_secrets:
            raise AirflowInfraError(f"output {name!r} is sensitive: pass --show-secrets to print it")
        click.echo(json.dumps(o["value"]) if as_json or not isinstance(o["value"], str) else o["value"])
        return
    click.echo(outputs_json(outs, show_secrets) if as_json else outputs_text(outs, show_secrets))


@cli.group()
def state():
    """Inspect the state."""


@state.command("list")
@pass_ctx
def state_list(c: Ctx):
    """List the addresses in the state."""
    from . import commands

    for address in commands.state_list(c.project()):
        click.echo(address)


@state.command("show")
@click.argument("address")
@pass_ctx
def state_show(c: Ctx, address):
    """Show one resource in the state."""
    from . import commands

    click.echo(json.dumps(commands.state_show(c.project(), address), sort_keys=True, indent=2))


@state.command("lock")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def state_lock(c: Ctx, as_json):
    """Show the current state lock, if any."""
    from dataclasses import asdict

    from . import commands

    info = commands.lock_info(c.project())
    if as_json:
        click.echo(json.dumps(asdict(info) if info else None, sort_keys=True, indent=2))
    else:
        click.echo(info.describe() if info else "The state is not locked.")


@state.command("versions")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def state_versions(c: Ctx, as_json):
    """List the kept states, the current one first."""
    from dataclasses import asdict

    from . import commands

    versions = commands.state_versions(c.project())
    if as_json:
        click.echo(json.dumps([asdict(v) for v in versions], sort_keys=True, indent=2))
        return
    if not any(v.current for v in versions):
        click.echo("The current state cannot be read (corrupt, or written by a newer release); "
                   "`airflow-infra state restore SERIAL` brings back one of these:" if versions else
                   "No state is kept.")
    for v in versions:
        mark = "current" if v.current else ""
        click.echo(f"serial {v.serial:<6} {v.written}  {v.resources:>3} resources  lineage {v.lineage}  {mark}".rstrip())


@state.command("restore")
@click.argument("serial", type=click.IntRange(min=1))
@pass_ctx
def state_restore(c: Ctx, serial):
    """Bring back a kept state (as a new serial); nothing else changes."""
    from . import commands

    restored = commands.state_restore(c.project(), serial, lock_timeout=c.lock_timeout)
    click.echo(f"Restored state serial {serial} as serial {restored.serial} ({len(restored.resources)} resources). "
               "Run `airflow-infra plan` to see how the world differs from it.")


@state.command("migrate")
@click.option("--to", "to_backend", type=click.Choice(["local", "postgres", "s3"]), required=True, help="The backend to copy the state into.")
@click.option("--dsn-env", help="postgres: the environment variable holding the DSN (default AIRFLOW_INFRA_STATE_DSN).")
@click.option("--path", help="local: the state file, relative to the project directory.")
@pass_ctx
def state_migrate(c: Ctx, to_backend, dsn_env, path):
    """Copy the state into another backend, lineage and serial kept."""
    from . import commands

    where = commands.state_migrate(c.project(), to_backend=to_backend, dsn_env=dsn_env, path=path,
                                   lock_timeout=c.lock_timeout)
    click.echo(f"Copied the state to {where}. Now set [state] backend = \"{to_backend}\" in airflow-infra.toml.")


@cli.group(invoke_without_command=True)
@click.option("--format", "fmt", type=click.Choice(["env", "json", "yaml", "uri"]), default="env", show_default=True,
              help="env: AIRFLOW_CONN_* lines to source; json/yaml: for `airflow connections import`; uri: conn_id=URI lines.")
@click.option("--output", metavar="FILE", help="Write to FILE (mode 0600, secrets included) instead of stdout.")
@click.option("--show-secrets", is_flag=True, help="Print passwords on stdout.")
@click.pass_context
def connections(ctx, fmt, output, show_secrets):
    """The project's Airflow connections and variables."""
    if ctx.invoked_subcommand is not None:
        return
    from . import commands

    text = commands.connections(ctx.obj.project(), fmt=fmt, show_secrets=show_secrets, output=output)
    if output:
        click.echo(f"Wrote {output} (mode 0600).")
    else:
        click.echo(text, nl=False)


@connections.command("push")
@click.option("--to", "to", type=click.Choice(["aws-secrets-manager", "airflow"]), required=True)
@click.option("--prefix", default="airflow/connections", show_default=True, help="aws-secrets-manager: connections prefix.")
@click.option("--variables-prefix", default="airflow/variables", show_default=True)
@click.option("--airflow-bin", default="airflow", show_default=True, help="airflow: the command to run.")
@pass_ctx
def connections_push(c: Ctx, to, prefix, variables_prefix, airflow_bin):
    """Write the connections where Airflow reads them (idempotent)."""
    from . import commands

    for name, result in commands.connections_push(c.project(), to=to, prefix=prefix, variables_prefix=variables_prefix,
                                                  airflow_bin=airflow_bin):
        click.echo(f"{name}: {result}")


@cli.command()
@click.argument("name")
@click.argument("directory", required=False, metavar="[DIR]")
def new(name, directory):
    """Scaffold a workflows repository for project NAME (default DIR: ./NAME)."""
    from . import commands

    root = commands.new(name, directory)
    click.echo(f"Made {root}. Next: cd {root} && airflow-infra up")


@cli.command()
@pass_ctx
def doctor(c: Ctx):
    """Check from here that each connection works (postgres as the etl user; the bucket)."""
    from rich.console import Console
    from rich.table import Table

    from . import commands

    checks = commands.doctor(c.project())
    table = Table("check", "result")
    table.add_column("detail", overflow="fold")  # the whole reason, never cut short
    for ch in checks:
        table.add_row(ch.name, "[green]passed[/]" if ch.ok else "[red]failed[/]", ch.detail)
    Console(soft_wrap=True).print(table)
    if not all(ch.ok for ch in checks):
        sys.exit(1)


@cli.group()
def backend():
    """The state backend."""


@backend.command("bootstrap")
@pass_ctx
def backend_bootstrap(c: Ctx):
    """Make the state bucket and lock table that [state] names (idempotent)."""
    from . import commands

    done = commands.backend_bootstrap(c.project())
    click.echo("\n".join(done) if done else "Nothing to do: the backend is ready.")


@cli.command("import")
@click.argument("address")
@click.argument("resource_id", metavar="ID")
@pass_ctx
def import_(c: Ctx, address, resource_id):
    """Adopt an existing bucket, database, role or schema into the state at ADDRESS."""
    from . import commands

    commands.import_resource(c.project(), address, resource_id, lock_timeout=c.lock_timeout)
    click.echo(f"Imported {resource_id} as {address}. Run `airflow-infra plan` to see what apply would change on it.")


@cli.command("import-terraform")
@click.argument("tfstate", type=click.Path(dir_okay=False))
@click.option("--name", help="The project's name (default: the RDS instance's database name).")
@click.option("--environment", default="prod", show_default=True)
@click.option("--module", help="The module holding the seed's resources, e.g. module.airflow_infrastructure.")
@click.option("--region", help="Default: the region in the instance's ARN.")
@click.option("--allow-security-group", "allow_sgs", multiple=True, metavar="SG_ID",
              help="The Airflow workers' security group (repeatable): the only ones let through to 5432.")
@click.option("--allow-cidr", "allow_cidrs", multiple=True, metavar="CIDR", help="A network let through to 5432 (repeatable).")
@click.option("--connect-through", metavar="HOST:PORT", help="A tunnel to the instance for the in-database setup.")
@pass_ctx
def import_terraform(c: Ctx, tfstate, name, environment, module, region, allow_sgs, allow_cidrs, connect_through):
    """Adopt what the seed's Terraform module made (its state file, format 4): write airflow-infra.toml
    and take the bucket, security group and RDS instance into the state, changing nothing in AWS."""
    from . import commands

    done = commands.import_terraform(tfstate, c.directory, name=name, environment=environment, module=module,
                                     region=region, allow_security_groups=allow_sgs, allow_cidrs=allow_cidrs,
                                     connect_through=connect_through, lock_timeout=c.lock_timeout)
    click.echo(f"Wrote {done.config_path} for project {done.name}; adopted {', '.join(done.adopted)}.")
    for rule in done.dropped_rules:
        click.echo(f"The security group will no longer allow: {rule}")
    for w in done.warnings:
        click.echo(click.style(f"Warning: {w}", fg="yellow"))
    click.echo("Next: `airflow-infra plan` shows the hardening apply would do; nothing is replaced.")


@cli.command()
@click.argument("backup")
@click.option("--into", "into", metavar="PROJECT_DIR", help="The project to restore into (default: -C's).")
@click.option("--force-delete-data", is_flag=True, help="Replace what is there, after a backup of it.")
@pass_ctx
def restore(c: Ctx, backup, into, force_delete_data):
    """Put a backup (a .dump, a .tar.gz or a *.manifest.json) back into a project's database or bucket."""
    from . import commands

    project = commands.load(into or c.directory, vars=c.vars, var_files=c.var_files)
    done = commands.restore(project, backup, force_delete_data=force_delete_data, lock_timeout=c.lock_timeout)
    for path in done.backups:
        click.echo(f"Backup written: {path}")
    for item in done.skipped:
        click.echo(click.style(f"Skipped: {item}", fg="yellow"))
    what = "the dump" if backup.endswith(".dump") else f"{done.items} item{'s' if done.items != 1 else ''}"
    click.echo(f"Restored {what} into {done.address} from {done.source}.")


@cli.command("force-unlock")
@click.argument("lock_id")
@pass_ctx
def force_unlock(c: Ctx, lock_id):
    """Remove the state lock, only when LOCK_ID matches it."""
    from . import commands

    commands.force_unlock(c.project(), lock_id)
    click.echo(f"Lock {lock_id} removed.")


@cli.group()
def projects():
    """The projects registry (the seed's projects.csv: Project,Repo,URL[,Branch,Path,Config])."""


registry_option = click.option("--registry", default="projects.csv", metavar="FILE", show_default=True,
                               help="The projects registry.")


@projects.command("list")
@registry_option
@click.option("--json", "as_json", is_flag=True)
def projects_list(registry, as_json):
    """List the registered projects."""
    from . import commands

    entries = commands.projects_list(registry)
    if as_json:
        click.echo(json.dumps([e.to_json() for e in entries], indent=2))
    for e in entries if not as_json else []:
        click.echo(f"{e.project}\t{e.url}" + (f"\t{e.branch}" if e.branch else ""))


@projects.command("show")
@click.argument("project")
@registry_option
def projects_show(project, registry):
    """Show one registered project."""
    from . import commands

    entries = {e.project: e for e in commands.projects_list(registry)}
    if project not in entries:
        raise AirflowInfraError(f"PROJECT {project!r} is not in {registry} (projects: {', '.join(entries) or 'none'})")
    click.echo(json.dumps(entries[project].to_json(), indent=2))


@projects.command("add")
@click.argument("project")
@click.argument("url")
@registry_option
@click.option("--repo", default="", help="The repository's name (default: PROJECT).")
@click.option("--branch", default="", help="Branch to publish (default: the repository's default branch).")
@click.option("--path", default="", help="Folder of the repository holding its DAGs (default: all of it).")
@click.option("--config", default="", help="The project's airflow-infra.toml, for --all commands.")
def projects_add(project, url, registry, repo, branch, path, config):
    """Register a project's workflows repository."""
    from . import commands

    commands.projects_add(registry, project=project, url=url, repo=repo, branch=branch, path=path, config=config)
    click.echo(f"Added {project} to {registry}.")


@projects.command("remove")
@click.argument("project")
@registry_option
def projects_remove(project, registry):
    """Remove a project from the registry (the next `dags sync` unpublishes it)."""
    from . import commands

    commands.projects_remove(registry, project)
    click.echo(f"Removed {project} from {registry}.")


@cli.group()
def dags():
    """Publish the registered projects' DAGs into Airflow's DAG folder."""


@dags.command("sync")
@registry_option
@click.option("--dags-folder", required=True, metavar="DIR", help="Airflow's DAG folder.")
@click.option("--jobs", type=click.IntRange(1, 64), default=4, show_default=True, help="Projects at a time.")
@click.option("--check", is_flag=True, help="Compile (and load in a DagBag, where Airflow is importable) before publishing.")
@click.option("--json", "as_json", is_flag=True)
def dags_sync(registry, dags_folder, jobs, check, as_json):
    """Clone or fetch each project's repository and publish it at DIR/<Project>, atomically."""
    from . import commands

    results = commands.dags_sync(registry, dags_folder, jobs=jobs, check=check)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("project", "revision", "result")
        colour = {"failed": "red", "published": "green", "unpublished": "yellow"}
        for r in results:
            rev = f"{(r.old or '-')[:10]} -> {(r.new or '-')[:10]}" if r.old != r.new else (r.new or "-")[:10]
            text = f"{r.result}: {r.error}" if r.error else r.result
            table.add_row(r.project, rev, f"[{colour.get(r.result, 'default')}]{text}[/]")
        Console(soft_wrap=True).print(table)
    if any(r.result == "failed" for r in results):
        sys.exit(1)


@dags.command("install-importer")
@registry_option
@click.option("--dags-folder", required=True, metavar="DIR", help="Airflow's DAG folder.")
@click.option("--schedule", default="*/5 * * * *", show_default=True, help="Cron schedule of the import_dags DAG.")
@click.option("--jobs", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--no-check", is_flag=True, help="Publish without compiling or loading the DAGs first.")
def dags_install_importer(registry, dags_folder, schedule, jobs, no_check):
    """Write the import_dags DAG, which runs `dags sync` on a schedule."""
    from . import commands

    path = commands.dags_install_importer(dags_folder, registry=registry, schedule=schedule, jobs=jobs, check=not no_check)
    click.echo(f"Wrote {path}")


@cli.group()
def local():
    """The local PostgreSQL server that airflow-infra runs (AIRFLOW_INFRA_HOME/postgres)."""


def _status_text(s: dict) -> str:
    if not s["initialised"]:
        return "Local PostgreSQL: not initialised (any command that needs it starts it)."
    state_word = click.style("running", fg="green") if s["running"] else click.style("stopped", fg="yellow")
    pid = f", pid {s['pid']}" if s["running"] else ""
    return (f"Local PostgreSQL {s['version']}: {state_word} on {s['host']}:{s['port']}{pid}\n"
            f"  data: {s['data_dir']}\n  binaries: {s['bindir']}\n  log: {s['log']}")


@local.command("start")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (set at first start, or while stopped).")
def local_start(port):
    """Start (initialising on first use) the local PostgreSQL."""
    from . import commands

    click.echo(_status_text(commands.local_start(port=port)))


@local.command("stop")
def local_stop():
    """Stop the local PostgreSQL."""
    from . import commands

    click.echo(_status_text(commands.local_stop()))


@local.command("status")
@click.option("--json", "as_json", is_flag=True)
def local_status(as_json):
    """Show whether the local PostgreSQL runs, where, and from which binaries."""
    from . import commands

    s = commands.local_status()
    click.echo(json.dumps(s, sort_keys=True, indent=2) if as_json else _status_text(s))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="airflow-infra", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            click.echo("Interrupted; what finished is in the state, and the next apply carries on.", err=True)
            sys.exit(130)
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:  # usage errors exit 1 too: 2 means "changes" for plan
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(1)
    except AirflowInfraError as exc:
        if debug:
            raise
        click.echo(click.style("Error: ", fg="red", bold=True) + str(exc), err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted; what finished is in the state, and the next apply carries on.", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        sys.exit(1)
