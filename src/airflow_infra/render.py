"""Rendering for people: plans the way Terraform users read them, outputs, apply progress."""

from __future__ import annotations

import json
from typing import Any

import click

from .engine.plan import ADOPT, CREATE, DELETE, REPLACE, SYMBOL, UPDATE, Plan
from .resources import Ref

COLOUR = {CREATE: "green", UPDATE: "yellow", REPLACE: "magenta", DELETE: "red", ADOPT: "cyan"}
VERB = {CREATE: "created", UPDATE: "updated in place", REPLACE: "replaced", DELETE: "destroyed",
        ADOPT: "adopted (it exists, made by airflow-infra, but was not in the state)"}


def _v(value: Any) -> str:
    return str(value) if isinstance(value, Ref) else json.dumps(value)


def _drift_lines(plan: Plan) -> list[str]:
    lines = [click.style("Changed outside airflow-infra:", bold=True)]
    for d in plan.drift:
        if d.deleted:
            lines.append(f"  {d.address} has been deleted")
        else:
            lines += [f"  {d.address}: {k} changed {_v(old)} -> {_v(new)}" for k, (old, new) in sorted(d.changes.items())]
    return [*lines, ""]


def _change_lines(c) -> list[str]:
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
        lines.append(click.style(f"        ! holds {c.holds_data}: deleted only with --force-delete-data, after a backup",
                                 fg="red"))
    return lines


def plan_text(plan: Plan) -> str:
    lines: list[str] = [click.style(f"Warning: {w}", fg="yellow") for w in plan.warnings]
    if lines:
        lines.append("")
    if plan.drift:
        lines += _drift_lines(plan)
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


def event(phase: str, change, seconds: float, detail: str | None = None) -> None:
    words = {CREATE: ("Creating", "Creation"), UPDATE: ("Modifying", "Modifications"),
             REPLACE: ("Replacing", "Replacement"), DELETE: ("Destroying", "Destruction"), ADOPT: ("Adopting", "Adoption")}
    doing, done = words[change.action]
    if phase == "backup":
        click.echo(f"Backup written: {detail}")
    elif phase == "start":
        click.echo(f"{change.address}: {doing}...")
    elif phase == "done":
        click.echo(f"{change.address}: {done} complete after {seconds:.1f}s")
    else:
        click.echo(click.style(f"{change.address}: {done} failed after {seconds:.1f}s", fg="red"), err=True)


def progress(message: str) -> None:
    """A long wait's news (an RDS instance's status), between the step lines."""
    click.echo(click.style(f"  ... {message}", dim=True))


def outputs_text(outs: dict[str, dict], show_secrets: bool) -> str:
    lines = []
    for name, o in outs.items():
        value = _v(o["value"]) if (show_secrets or not o["sensitive"]) else "<sensitive>"
        lines.append(f"{name} = {value}")
    return "\n".join(lines)


def outputs_json(outs: dict[str, dict], show_secrets: bool) -> str:
    shown = {k: {"value": (o["value"] if show_secrets or not o["sensitive"] else None), "sensitive": o["sensitive"]}
             for k, o in outs.items()}
    return json.dumps(shown, sort_keys=True, indent=2)
