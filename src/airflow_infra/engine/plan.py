"""Planning: refresh (read what exists), then a pure diff against the desired resources.

make_plan() writes nothing, anywhere; the Plan it returns is a value that apply runs as given,
and that can be saved to a file and loaded again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from ..errors import AirflowInfraError, ForeignResource, NotYetReachable, ProviderError, StateError, Unreadable
from ..providers.base import Provider
from ..resources import Observed, Ref, Resource
from ..state.base import State

PLAN_FORMAT = 1


class Action(StrEnum):
    """What a plan does to one resource (a str: plan JSON and saved plans carry the value)."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    ADOPT = "adopt"  # take an existing resource into the state (import)


CREATE, UPDATE, REPLACE, DELETE, ADOPT = Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE, Action.ADOPT
SYMBOL = {CREATE: "+", UPDATE: "~", REPLACE: "-/+", DELETE: "-", ADOPT: "<="}


@dataclass(frozen=True)
class Change:
    address: str
    action: Action
    resource: Resource  # desired (create/update/replace/adopt) or as in state (delete)
    before: Mapping[str, Any] | None  # attrs as refreshed; None for create
    changed: tuple[str, ...] = ()
    forces: tuple[str, ...] = ()  # fields forcing replacement
    holds_data: str | None = None  # what a delete/replace would lose
    notes: Mapping[str, str] = field(default_factory=dict)  # field -> what changing it means (the provider's words)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "action": self.action.value,
            "resource": self.resource.to_json(),
            "before": None if self.before is None else dict(self.before),
            "changed": list(self.changed),
            "forces_replacement": list(self.forces),
            "holds_data": self.holds_data,
            "notes": dict(self.notes),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Change:
        return cls(
            d["address"],
            Action(d["action"]),
            Resource.from_json(d["resource"]),
            d["before"],
            tuple(d["changed"]),
            tuple(d["forces_replacement"]),
            d["holds_data"],
            d.get("notes", {}),
        )


@dataclass(frozen=True)
class Drift:
    """A difference between the state and what exists, made outside airflow-infra."""

    address: str
    deleted: bool
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "deleted": self.deleted,
            "changes": {k: list(v) for k, v in self.changes.items()},
        }


@dataclass(frozen=True)
class Plan:
    operation: str  # "apply" or "destroy"
    lineage: str
    serial: int  # of the state the plan was made from
    refreshed: State  # the state as it really is, before any change
    changes: tuple[Change, ...]
    drift: tuple[Drift, ...]
    state_outdated: bool  # refreshed differs from stored: apply records the refresh first
    warnings: tuple[str, ...] = ()  # e.g. settings a store does not support
    conflicts: tuple[str, ...] = ()  # what exists and is not this project's: apply refuses while there are any

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def refuse_conflicts(self) -> None:
        """ForeignResource naming every conflict, when there is any: nothing may be applied then."""
        if self.conflicts:
            n = len(self.conflicts)
            raise ForeignResource(
                f"{n} resource{'s' if n > 1 else ''} of the configuration exist{'' if n > 1 else 's'} "
                f"and {'are' if n > 1 else 'is'} not this project's; nothing was changed: " + "; ".join(self.conflicts)
            )

    def counts(self) -> dict[str, int]:
        add = sum(c.action in (CREATE, REPLACE) for c in self.changes)
        change = sum(c.action == UPDATE for c in self.changes)
        destroy = sum(c.action in (DELETE, REPLACE) for c in self.changes)
        adopt = sum(c.action == ADOPT for c in self.changes)
        return {"add": add, "change": change, "destroy": destroy, "adopt": adopt}

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": PLAN_FORMAT,
            "operation": self.operation,
            "lineage": self.lineage,
            "serial": self.serial,
            "changes": [c.to_json() for c in self.changes],
            "drift": [d.to_json() for d in self.drift],
            "summary": self.counts(),
            "refreshed": json.loads(self.refreshed.to_json()),
            "state_outdated": self.state_outdated,
            "warnings": list(self.warnings),
            "conflicts": list(self.conflicts),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Plan:
        if d.get("format_version") != PLAN_FORMAT:
            raise ValueError(f"plan format {d.get('format_version')!r} is not {PLAN_FORMAT}")
        return cls(
            operation=d["operation"],
            lineage=d["lineage"],
            serial=d["serial"],
            refreshed=State.from_json(json.dumps(d["refreshed"])),
            changes=tuple(Change.from_json(c) for c in d["changes"]),
            drift=tuple(
                Drift(x["address"], x["deleted"], {k: tuple(v) for k, v in x["changes"].items()}) for x in d["drift"]
            ),
            state_outdated=d["state_outdated"],
            warnings=tuple(d.get("warnings", ())),
            conflicts=tuple(d.get("conflicts", ())),
        )


def _read(provider: Provider, r: Resource, prior: Observed | None) -> Observed | None:
    try:
        return provider.read(r, prior)
    except NotYetReachable:
        return None  # e.g. a role on an RDS instance this plan is about to create
    except Unreadable:
        return prior  # its server is there but cannot be asked yet: as the state says, until apply can look
    except AirflowInfraError:
        raise
    except Exception as exc:  # a provider bug or an untranslated library error: name the resource
        raise ProviderError(f"{r.address}: refresh failed: {type(exc).__name__}: {exc}") from exc


def _check_types(state: State, providers: Mapping[str, Provider]) -> None:
    unknown = sorted(a for a, r in state.resources.items() if r.type not in providers)
    if unknown:
        r = state.resources[unknown[0]]
        raise StateError(
            f"the state holds {r.address}, of type {r.type!r}, which this target does not manage (it manages "
            f"{', '.join(sorted(providers))}): a state of another target or release? Nothing was changed"
        )


def _for_read(r: Resource, want: Resource | None, known: Mapping[str, Mapping[str, Any]]) -> Resource:
    """What a provider reads with: the stored (or desired) attributes, with the desired Refs'
    current values (None where the referenced resource does not exist)."""
    if want is None or not want.refs():
        return r
    resolved = want.resolved(known.get, unknown=None)
    return Resource(
        r.type,
        r.name,
        {**r.attrs, **{k: resolved.attrs[k] for k, v in want.attrs.items() if isinstance(v, Ref)}},
        r.depends_on,
    )


def import_id(r: Resource) -> str:
    """What `airflow-infra import ADDRESS ID` takes for r."""
    return str(next(r.attrs[k] for k in ("name", "identifier", "bucket", "path") if k in r.attrs))


def name_of(r: Resource) -> str:
    """What a create names r, as a pending create records it: its import ID, or its address where
    it has no name."""
    try:
        return import_id(r)
    except StopIteration:
        return r.address


def _conflict(r: Resource, obs: Observed, recorded: bool, environment: str = "") -> str:
    from ..ownership import SIBLING, sibling_advice

    what = f"{r.address}: {import_id(r)!r} exists, {obs.whose or 'not made by airflow-infra'}"
    if recorded:
        return f"{what}, yet this state records it (a state copied from another project?)"
    if obs.whose.startswith(SIBLING):  # taking it over would merge the two environments: never advised
        return f"{what}; {sibling_advice(environment)}"
    return f"{what}; to take it over on purpose: airflow-infra import {r.address} {import_id(r)}"


def _refresh(
    state: State, wanted: Mapping[str, Resource], providers: Mapping[str, Provider], parallelism: int
) -> tuple[dict[str, Resource], set[str], list[Drift], list[str]]:
    """Read every resource in state and every wanted one not in it: (refreshed, adopted, drift,
    conflicts); what is not this project's is a conflict, never refreshed nor adopted. A wanted
    one with a pending create in the state is read as recorded (ours even without its marker: the
    create was cut short before it could write one) and, when found, adopted."""
    to_read: list[tuple[Resource, Observed | None]] = [(r, Observed(r.attrs)) for r in state.resources.values()] + [
        (r, Observed(r.attrs) if state.pending.get(a) == name_of(r) else None)
        for a, r in wanted.items()
        if a not in state.resources
    ]

    # Reads are independent; a few threads hide the round trips without loading the server. A
    # resource with Refs is read after the rest, with their values.
    def with_refs(item: tuple[Resource, Observed | None]) -> bool:
        return item[0].address in wanted and bool(wanted[item[0].address].refs())

    found: dict[str, Observed | None] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        for wave in ([i for i in to_read if not with_refs(i)], [i for i in to_read if with_refs(i)]):
            known = {a: obs.attrs for a, obs in found.items() if obs is not None}
            reads = [(_for_read(r, wanted.get(r.address), known), prior) for r, prior in wave]
            found.update(
                zip(
                    (r.address for r, _ in wave),
                    pool.map(lambda item: _read(providers[item[0].type], *item), reads),
                    strict=True,
                )
            )

    drift: list[Drift] = []
    refreshed: dict[str, Resource] = {}
    adopted: set[str] = set()
    conflicts: list[str] = []
    for r, prior in to_read:
        obs = found[r.address]
        recorded = r.address in state.resources
        if obs is not None and obs.foreign:
            conflicts.append(_conflict(r, obs, recorded, state.environment or ""))
            continue
        if recorded and prior is not None:
            if obs is None:
                drift.append(Drift(r.address, deleted=True))
                continue
            # an attribute the state never recorded (an older release's state) is news, not drift
            diff = {k: (prior.attrs[k], v) for k, v in obs.attrs.items() if k in prior.attrs and prior.attrs[k] != v}
            if diff:
                drift.append(Drift(r.address, deleted=False, changes=diff))
            refreshed[r.address] = Resource(r.type, r.name, dict(obs.attrs), r.depends_on)
        elif obs is not None:
            # Made by us but not recorded: an apply was interrupted before it could write state.
            refreshed[r.address] = Resource(r.type, r.name, dict(obs.attrs), r.depends_on)
            adopted.add(r.address)
    return refreshed, adopted, drift, sorted(conflicts)


def _change(r: Resource, prior_r: Resource | None, adopted: bool, provider: Provider) -> Change | None:
    if prior_r is None:
        return Change(r.address, CREATE, r, None)
    # a Ref: unknown, changed; a setting the target cannot keep (listed "unsupported") is never a change
    lacking = set(prior_r.attrs.get("unsupported", ()))
    changed = tuple(sorted(k for k, v in r.attrs.items() if prior_r.attrs.get(k) != v and k not in lacking))
    if changed:
        provider.check_change(r, Observed(prior_r.attrs))  # what the provider can never do
    forces = tuple(k for k in changed if k in provider.force_new)
    if forces:
        provider.check_delete(Observed(prior_r.attrs))  # a replacement deletes the old one
    notes = {k: n for k, n in provider.notes.items() if k in changed}
    if forces:
        holds = provider.holds_data(prior_r, Observed(prior_r.attrs))
        return Change(r.address, REPLACE, r, prior_r.attrs, changed, forces, holds, notes)
    if changed:
        return Change(r.address, UPDATE, r, prior_r.attrs, changed, notes=notes)
    if adopted:
        return Change(r.address, ADOPT, r, prior_r.attrs)
    return None


def _diff(
    wanted: Mapping[str, Resource],
    refreshed: Mapping[str, Resource],
    adopted: set[str],
    providers: Mapping[str, Provider],
) -> list[Change]:
    """Resources with Refs last: a Ref resolves to the refreshed value unless its resource is made
    or replaced by this plan (then it stays a Ref, known after apply)."""
    by_addr: dict[str, Change | None] = {}
    remade: set[str] = set()

    def attrs_of(address: str) -> Mapping[str, Any] | None:
        return None if address in remade or address not in refreshed else refreshed[address].attrs

    for refs in (False, True):
        remade |= {a for a, c in by_addr.items() if c is not None and c.action in (CREATE, REPLACE)}
        for address in sorted(a for a, r in wanted.items() if bool(r.refs()) == refs):
            r = wanted[address].resolved(attrs_of)
            by_addr[address] = _change(r, refreshed.get(address), address in adopted, providers[r.type])
    changes = [c for _, c in sorted(by_addr.items()) if c is not None]
    for address in sorted(set(refreshed) - set(wanted)):
        prior_r = refreshed[address]
        providers[prior_r.type].check_delete(Observed(prior_r.attrs))  # refused now, before anything is done
        holds = providers[prior_r.type].holds_data(prior_r, Observed(prior_r.attrs))
        changes.append(Change(address, DELETE, prior_r, prior_r.attrs, holds_data=holds))
    return changes


def make_plan(
    state: State,
    desired: Sequence[Resource],
    providers: Mapping[str, Provider],
    *,
    operation: str = "apply",
    parallelism: int = 4,
) -> Plan:
    """Refresh every resource in state (and every desired one not in it), then diff."""
    _check_types(state, providers)
    wanted = {r.address: r for r in desired}
    for r in desired:
        if r.refs() - set(r.depends_on):  # the graph orders by depends_on: a Ref must be in it
            raise ValueError(f"{r.address}: refers to {sorted(r.refs() - set(r.depends_on))} without depending on it")
    refreshed, adopted, drift, conflicts = _refresh(state, wanted, providers, parallelism)
    conflicting = {c.split(":", 1)[0] for c in conflicts}
    changes = _diff({a: r for a, r in wanted.items() if a not in conflicting}, refreshed, adopted, providers)
    # a conflicting resource in the state is neither planned nor deleted: it is not ours to touch
    changes = [c for c in changes if c.address not in conflicting]
    # a replacement made where something not ours is (a bucket path moved onto another's directory):
    # a conflict too, found now, before apply deletes the old one
    for c in [c for c in changes if c.action == REPLACE and name_of(c.resource) != name_of(refreshed[c.address])]:
        there = _read(providers[c.resource.type], c.resource, None) if not c.resource.refs() else None
        if there is not None and there.foreign:
            conflicts.append(_conflict(c.resource, there, False, state.environment or ""))
            changes.remove(c)
    conflicts.sort()

    warnings = tuple(
        w for a in sorted(refreshed) for w in providers[refreshed[a].type].warnings(Observed(refreshed[a].attrs))
    )
    # a pending create stays pending until its resource is recorded; one that never happened is over
    refreshed_state = replace(
        state,
        resources={a: r for a, r in refreshed.items() if a not in adopted},
        pending={a: n for a, n in state.pending.items() if a in adopted},
    )
    return Plan(
        operation=operation,
        lineage=state.lineage,
        serial=state.serial,
        refreshed=refreshed_state,
        changes=tuple(changes),
        drift=tuple(sorted(drift, key=lambda d: d.address)),
        state_outdated=(refreshed_state.resources, refreshed_state.pending) != (state.resources, state.pending),
        warnings=warnings,
        conflicts=tuple(conflicts),
    )
