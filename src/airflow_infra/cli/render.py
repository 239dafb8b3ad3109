"""Rendering for people: plans the way Terraform users read them, outputs, apply progress, the
tables and reports of every command, and the confirmation prompt."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import click

from ..engine.plan import ADOPT, CREATE, DELETE, REPLACE, SYMBOL, UPDATE, Change, Plan
from ..errors import ConfirmationRequired
from ..resources import Ref
from ..secretstores import MASK

COLOUR = {CREATE: "green", UPDATE: "yellow", REPLACE: "magenta", DELETE: "red", ADOPT: "cyan"}
VERB = {
    CREATE: "created",
    UPDATE: "updated in place",
    REPLACE: "replaced",
    DELETE: "destroyed",
    ADOPT: "adopted (it exists, made by airflow-infra, but was not in the state)",
}


def _v(value: Any) -> str:
    return str(value) if isinstance(value, Ref) else json.dumps(value)


def _drift_lines(plan: Plan) -> list[str]:
    lines = [click.style("Changed outside airflow-infra:", bold=True)]
    for d in plan.drift:
        if d.deleted:
            lines.append(f"  {d.address} has been deleted")
        else:
            lines += [
                f"  {d.address}: {k} changed {_v(old)} -> {_v(new)}" for k, (old, new) in sorted(d.changes.items())
            ]
    return [*lines, ""]


def _change_lines(c: Change) -> list[str]:
    head = click.style(f"  {SYMBOL[c.action]:>3} {c.address}", fg=COLOUR[c.action], bold=True)
    lines = [f"{head}  will be {VERB[c.action]}"]
    if c.action in (UPDATE, REPLACE):
        for k in c.changed:
            note = click.style("  # forces replacement", fg="magenta") if k in c.forces else ""
            if k in c.notes:
                note += click.style(f"  # {c.notes[k]}", fg="cyan")
            lines.append(f"        {k}: {_v((c.before or {}).get(k))} -> {_v(c.resource.attrs.get(k))}{note}")
    elif c.action == CREATE:
        lines += [f"        {k}: {_v(v)}" for k, v in sorted(c.resource.attrs.items())]
    if c.holds_data:
        lines.append(
            click.style(
                f"        ! holds {c.holds_data}: deleted only with --force-delete-data, after a backup", fg="red"
            )
        )
    return lines


def plan_text(plan: Plan) -> str:
    lines: list[str] = [click.style(f"Conflict: {c}", fg="red", bold=True) for c in plan.conflicts]
    lines += [click.style(f"Warning: {w}", fg="yellow") for w in plan.warnings]
    if lines:
        lines.append("")
    if plan.drift:
        lines += _drift_lines(plan)
    if not plan.changes and plan.conflicts:
        lines.append("Nothing else to change; nothing can be applied while the conflicts above remain.")
        return "\n".join(lines)
    if not plan.changes:
        lines.append(click.style("No changes.", bold=True) + " The infrastructure matches the configuration.")
        return "\n".join(lines)
    lines.append("airflow-infra will perform the following actions:")
    for c in plan.changes:
        lines += _change_lines(c)
    counts = plan.counts()
    summary = f"Plan: {counts['add']} to add, {counts['change']} to change, {counts['destroy']} to destroy."
    if counts["adopt"]:
        summary = summary[:-1] + f", {counts['adopt']} to adopt."
    lines += ["", click.style(summary, bold=True)]
    return "\n".join(lines)


def event(phase: str, change: Change, seconds: float, detail: str | None = None) -> None:
    words = {
        CREATE: ("Creating", "Creation"),
        UPDATE: ("Modifying", "Modifications"),
        REPLACE: ("Replacing", "Replacement"),
        DELETE: ("Destroying", "Destruction"),
        ADOPT: ("Adopting", "Adoption"),
    }
    doing, done = words[change.action]
    if phase == "backup":
        click.echo(f"Backup written: {detail}")
    elif phase == "start":
        click.echo(f"{change.address}: {doing}...")
    elif phase == "done":
        click.echo(f"{change.address}: {done} complete after {seconds:.1f}s")
    else:
        # progress, beside "complete after": stderr keeps the one line that says what failed and why
        click.echo(click.style(f"{change.address}: {done} failed after {seconds:.1f}s", fg="red"))


def progress(message: str) -> None:
    """A long wait's news (an RDS instance's status), between the step lines."""
    click.echo(click.style(f"  ... {message}", dim=True))


def outputs_text(outs: dict[str, dict[str, Any]], show_secrets: bool) -> str:
    lines = []
    for name, o in outs.items():
        value = _v(o["value"]) if (show_secrets or not o["sensitive"]) else MASK
        lines.append(f"{name} = {value}")
    return "\n".join(lines)


def output_value(o: dict[str, Any], as_json: bool) -> None:
    """One output's value: a string as it is (for `$(airflow-infra output x)`), anything else as JSON."""
    if o["sensitive"]:
        secret_stdout()
    click.echo(json.dumps(o["value"]) if as_json or not isinstance(o["value"], str) else o["value"])


def outputs(outs: dict[str, dict[str, Any]], as_json: bool, show_secrets: bool) -> None:
    if not outs and not as_json:  # as Terraform: said, not an error (`output NAME` is one)
        click.echo("No outputs: nothing is applied yet (`airflow-infra apply` makes them).", err=True)
        return
    if show_secrets:
        secret_stdout()
    click.echo(outputs_json(outs, show_secrets) if as_json else outputs_text(outs, show_secrets))
    if not show_secrets:
        masked_note(outs)


def refuse_masked_file(output: str | None, show_secrets: bool) -> None:
    """Connections are masked only for a person: into a file or a pipe (`> conns.env`, `| tee`) the
    masked passwords would go, and a later import would write them over working ones."""
    if not (output or show_secrets or sys.stdout.isatty()):
        raise click.UsageError(
            "stdout is not a terminal, and the passwords would go there masked: pass --output FILE "
            "(written with mode 0600, passwords included) or --show-secrets"
        )


def connections(text: str, output: str | None, show_secrets: bool) -> None:
    if show_secrets:
        secret_stdout()
    click.echo(f"Wrote {output} (mode 0600)." if output else text, nl=bool(output))
    if not (output or show_secrets):
        click.echo(
            "Note: passwords are masked: --show-secrets prints them, --output FILE writes them (mode 0600)", err=True
        )


def stdout_is_file() -> bool:
    import os
    import stat

    try:
        return stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError):  # no real file descriptor (a test runner's buffer)
        return False


def secret_stdout() -> None:
    """Secrets are about to be printed: when stdout is a file (`> conns.env`), it gets mode 0600,
    like every file we write a secret into."""
    import os

    if stdout_is_file():
        os.fchmod(sys.stdout.fileno(), 0o600)


def hidden(outs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Terraform's output shape without the sensitive values: a sensitive output has no "value"
    key (never a null anyone could take for the value)."""
    return {k: (o if not o["sensitive"] else {"sensitive": True}) for k, o in outs.items()}


def masked_note(outs: dict[str, dict[str, Any]], what: str = "output") -> None:
    n = sum(1 for o in outs.values() if o["sensitive"])
    if n:
        click.echo(f"Note: {n} sensitive {what}{'s' if n > 1 else ''} not shown: --show-secrets shows them", err=True)


def outputs_json(outs: dict[str, dict[str, Any]], show_secrets: bool) -> str:
    return json.dumps(outs if show_secrets else hidden(outs), sort_keys=True, indent=2)


def plan(p: Plan, as_json: bool, saved_to: str | None) -> None:
    click.echo(json.dumps(p.to_json(), sort_keys=True, indent=2) if as_json else plan_text(p))
    if saved_to and not as_json:
        click.echo(f"\nSaved the plan to {saved_to}: apply it with `airflow-infra apply {saved_to}`.")


def summary(plan: Plan, result: Any, verb: str) -> str:
    """The last line of an apply or destroy: what it did, or that it was cancelled."""
    if not plan.has_changes:
        return plan_text(plan)
    if result is None:
        return f"{verb.capitalize()} cancelled."
    counts = plan.counts()
    adopted = f", {counts['adopt']} adopted" if counts["adopt"] else ""  # an apply that only adopts says so
    return click.style(
        f"{verb.capitalize()} complete! Resources: {counts['add']} added, {counts['change']} changed, "
        f"{counts['destroy']} destroyed{adopted}.",
        fg="green",
        bold=True,
    )


# -- tables: rich is imported only by the commands that print one --------------------------------
def _table(*columns: str, rows: Sequence[Sequence[str]], fold: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    if fold:
        table.add_column(fold, overflow="fold")  # the whole reason, never cut short
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=True).print(table)


def fleet(results: list[Any] | None, as_json: bool = False) -> None:
    """Each project's plan counts and result (fleet commands); None: the review was declined."""
    if results is None:
        click.echo("Apply cancelled.")
        return
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], sort_keys=True, indent=2))
        return
    rows = []
    for r in results:
        counts = r.plan.counts() if r.plan is not None else {}
        result = (
            f"[red]error: {r.error}[/red]"
            if r.error
            else "applied"
            if r.applied
            else "changes"
            if r.plan is not None and r.plan.has_changes
            else "no changes"
        )
        rows.append((r.project, *(str(counts.get(k, "")) for k in ("add", "change", "destroy")), result))
    _table("project", "add", "change", "destroy", "result", rows=rows)


def fleet_outputs(results: list[Any], as_json: bool, show_secrets: bool) -> None:
    if as_json:
        click.echo(json.dumps([r.to_json(show_secrets=show_secrets) for r in results], sort_keys=True, indent=2))
        return
    for r in results:
        click.echo(click.style(f"# {r.project}", bold=True))
        click.echo(f"error: {r.error}" if r.error else outputs_text(r.outputs or {}, show_secrets))


def doctor(checks: list[Any]) -> int:
    """The checks as a table; the exit status (1 when one failed)."""
    _table(
        "check",
        "result",
        fold="detail",
        rows=[(ch.name, "[green]passed[/]" if ch.ok else "[red]failed[/]", ch.detail) for ch in checks],
    )
    return 0 if all(ch.ok for ch in checks) else 1


def state_restored(serial: int, restored: Any) -> None:
    click.echo(
        f"Restored state serial {serial} as serial {restored.serial} ({len(restored.resources)} resources). "
        "Run `airflow-infra plan` to see how the world differs from it."
    )


def state_migrated(where: str, backend: str) -> None:
    click.echo(f'Copied the state to {where}. Now set [state] backend = "{backend}" in airflow-infra.toml.')


def up(plan: Plan, result: Any, outs: dict[str, dict[str, Any]]) -> None:
    click.echo(summary(plan, result, "apply"))
    click.echo("\nOutputs:\n" + outputs_text(outs, show_secrets=False))


def dags_sync(results: list[Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
        return
    colour = {"failed": "red", "published": "green", "unpublished": "yellow"}
    rows = []
    for r in results:
        rev = f"{(r.old or '-')[:10]} -> {(r.new or '-')[:10]}" if r.old != r.new else (r.new or "-")[:10]
        text = f"{r.result}: {r.error}" if r.error else r.result
        rows.append((r.project, rev, f"[{colour.get(r.result, 'default')}]{text}[/]"))
    _table("project", "revision", "result", rows=rows)


# -- short reports -----------------------------------------------------------------------------
def local_status(s: dict[str, Any], as_json: bool = False) -> str:
    if as_json:
        return json.dumps(s, sort_keys=True, indent=2)
    if not s["initialised"]:
        return "Local PostgreSQL: not initialised (any command that needs it starts it)."
    state_word = click.style("running", fg="green") if s["running"] else click.style("stopped", fg="yellow")
    pid = f", pid {s['pid']}" if s["running"] else ""
    return (
        f"Local PostgreSQL {s['version']}: {state_word} on {s['host']}:{s['port']}{pid}\n"
        f"  data: {s['data_dir']}\n  binaries: {s['bindir']}\n  log: {s['log']}"
    )


def lock(info: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps(asdict(info) if info else None, sort_keys=True, indent=2)
    return info.describe() if info else "The state is not locked."


def state_versions(versions: list[Any], as_json: bool) -> str:
    if as_json:
        return json.dumps([asdict(v) for v in versions], sort_keys=True, indent=2)
    lines = []
    if not any(v.current for v in versions):
        lines.append(
            "The current state cannot be read (corrupt, or written by a newer release); "
            "`airflow-infra state rollback SERIAL` brings back one of these:"
            if versions
            else "No state is kept."
        )
    for v in versions:
        mark = "current" if v.current else ""
        lines.append(
            f"serial {v.serial:<6} {v.written}  {v.resources:>3} resources  lineage {v.lineage}  {mark}".rstrip()
        )
    return "\n".join(lines)


def terraform_import(done: Any) -> str:
    lines = [f"Wrote {done.config_path} for project {done.name}; adopted {', '.join(done.adopted)}."]
    lines += [f"The security group will no longer allow: {rule}" for rule in done.dropped_rules]
    lines += [click.style(f"Warning: {w}", fg="yellow") for w in done.warnings]
    lines.append("Next: `airflow-infra plan` shows the hardening apply would do; nothing is replaced.")
    return "\n".join(lines)


def restored(done: Any, backup: str) -> str:
    lines = [f"Backup written: {path}" for path in done.backups]
    lines += [click.style(f"Skipped: {item}", fg="yellow") for item in done.skipped]
    what = "the dump" if backup.endswith(".dump") else f"{done.items} item{'s' if done.items != 1 else ''}"
    lines.append(f"Restored {what} into {done.address} from {done.source}.")
    return "\n".join(lines)


def projects(entries: list[Any], as_json: bool) -> None:
    from ..registry import shown

    if as_json:
        click.echo(json.dumps([e.to_json() for e in entries], indent=2))
    lines([] if as_json else [f"{e.project}\t{shown(e.url)}" + (f"\t{e.ref}" if e.ref else "") for e in entries])


def lines(items: Sequence[str]) -> None:
    for line in items:
        click.echo(line)


def pairs(items: Sequence[tuple[str, str]]) -> None:
    lines([f"{name}: {value}" for name, value in items])


# -- asking ----------------------------------------------------------------------------------------
def confirm(auto_approve: bool, what: str, show: Callable[[Any], None], *, early: bool = True) -> Callable[[Any], bool]:
    """The library's confirm callback, for one plan or a fleet's: show() it, then ask on a terminal
    (or not, with --auto-approve). Without a terminal it refuses: at once, before anything is read
    (early), or only when there is something to confirm."""
    refusal = ConfirmationRequired(f"{what} needs confirmation and there is no terminal to ask on: pass --auto-approve")
    if early and not auto_approve and not sys.stdin.isatty():
        raise refusal

    def ask(planned: Any) -> bool:
        show(planned)
        if auto_approve:
            return True
        if not sys.stdin.isatty():
            raise refusal
        answer = click.prompt(f"Do you want to {what}? Only 'yes' will be accepted", default="", show_default=False)
        return answer.strip() == "yes"

    return ask


def fleet_status(results: list[Any] | None, detailed_exitcode: bool = False) -> int:
    """Exit status across projects: 1 if any failed or the review was declined (None), else (with
    --detailed-exitcode) 2 if any has changes."""
    if results is None:
        return 1
    changes = detailed_exitcode and any(r.plan is not None and r.plan.has_changes for r in results)
    return 1 if any(r.error for r in results) else 2 if changes else 0


def finished(plan: Plan, result: Any, verb: str) -> int:
    """The last line of an apply or destroy; the exit status: 1 when it was declined at the prompt."""
    click.echo(summary(plan, result, verb))
    return 1 if plan.has_changes and result is None else 0


def bootstrapped(done: list[str] | None) -> int:
    lines(
        ["Bootstrap cancelled: the bucket was left as it is."]
        if done is None
        else done or ["Nothing to do: the backend is ready."]
    )
    return 1 if done is None else 0


def bucket_changes(changes: list[str]) -> None:
    lines(["backend bootstrap will change the existing state bucket:", *(f"  ~ {c}" for c in changes), ""])


def plan_review(plan: Plan) -> None:
    click.echo(plan_text(plan) + "\n")


def fleet_review(results: list[Any]) -> None:
    fleet(results)
    click.echo()
