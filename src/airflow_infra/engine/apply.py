"""Applying a plan: walk the dependency graph with bounded parallelism, persist after every step.

State is written after each finished resource, so an apply killed at any point leaves a state
that the next plan completes: what was made but not recorded is found by refresh and adopted
(providers mark what they make), never created twice.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from graphlib import TopologicalSorter
from pathlib import Path

from ..errors import (
    AirflowInfraError,
    ApplyFailed,
    DataLossRefused,
    ForeignResource,
    LeaseLost,
    NotYetReachable,
    ProviderError,
    StateError,
)
from ..providers.base import Provider
from ..resources import Observed, Resource
from ..state.base import State, Transaction
from .plan import ADOPT, CREATE, DELETE, REPLACE, UPDATE, Change, Plan, name_of

# (phase: "start"|"done"|"failed"|"backup", change, seconds[, the backup's path for "backup"])
Event = Callable[..., None]


@dataclass
class ApplyResult:
    state: State
    backups: list[Path | str]  # a file, or an s3:// address
    applied: list[str]


def _graph(plan: Plan) -> dict[str, set[str]]:
    """Each change's predecessors: creates after what they depend on, deletes before it.

    A resource that moves to a new dependency (an RDS instance to the parameter group of its new
    major version) is changed before the old dependency is deleted: create before destroy.
    """
    by_addr = {c.address: c for c in plan.changes}
    graph: dict[str, set[str]] = {a: set() for a in by_addr}
    used_before = {a: r.depends_on for a, r in plan.refreshed.resources.items()}
    for c in plan.changes:
        if c.action == DELETE:
            # X depended on c's resource and X is deleted or moved off it: X goes first.
            for other in plan.changes:
                if other.address != c.address and c.address in (
                    other.resource.depends_on if other.action == DELETE else used_before.get(other.address, ())
                ):
                    graph[c.address].add(other.address)
        else:
            graph[c.address] |= {d for d in c.resource.depends_on if d in by_addr and by_addr[d].action != DELETE}
    return graph


def _converged(change: Change, obs: Observed | None) -> Observed:
    """A create or update must read back what it made: None would be recorded as "deleted"."""
    if obs is None:
        raise ProviderError(
            f"{change.address}: {change.action} reported success, but the resource reads back "
            "as absent; it was not recorded as made: run plan to see what is there"
        )
    return obs


def _run(
    change: Change, provider: Provider, force: bool, covered: bool = False, txn: Transaction | None = None
) -> Observed | None:
    """covered: a DELETE whose container is deleted in the same plan (a schema in a database that
    goes): the container's delete takes it, and its backup holds it. A REPLACE records the old one's
    delete before the create (txn), so that a kill between them leaves a pending create, not a
    recorded resource that no longer exists."""
    r = change.resource
    before = Observed(change.before or {})
    if change.action == CREATE:
        return _converged(change, provider.create(r))
    if change.action == UPDATE:
        return _converged(change, provider.update(r, before))
    if change.action == REPLACE:
        old = Resource(r.type, r.name, dict(change.before or {}), r.depends_on)
        provider.delete(old, before, force=force)
        if txn is not None:
            txn.commit(lambda s: s.without(change.address))
        return _converged(change, provider.create(r))
    if change.action == DELETE:
        if covered:
            return None
        with contextlib.suppress(NotYetReachable):  # its server is gone, and the resource with it
            provider.delete(r, before, force=force)
        return None
    if change.action == ADOPT:
        return before
    raise AssertionError(change.action)


@contextmanager
def _cancel_on_interrupt(providers: Mapping[str, Provider]) -> Iterator[None]:
    """Ctrl-C: steps still running stop waiting (providers that wait have cancel()) and fail, so the
    worker threads end; what finished is in the state already, and the next apply carries on."""
    try:
        yield
    except KeyboardInterrupt:
        for provider in {id(p): p for p in providers.values()}.values():
            provider.cancel()
        raise


def check_data_loss(plan: Plan, *, force_delete_data: bool) -> list[Change]:
    """The changes that would lose data; DataLossRefused unless force_delete_data."""
    losing = [c for c in plan.changes if c.action in (DELETE, REPLACE) and c.holds_data]
    if losing and not force_delete_data:
        what = "; ".join(f"{c.address} holds {c.holds_data}" for c in losing)
        raise DataLossRefused(f"refusing to delete data ({what}): pass --force-delete-data to back it up and delete it")
    return losing


def _recheck_data(plan: Plan, providers: Mapping[str, Provider]) -> Plan:
    """Ask again, under the lock, whether what a change deletes holds data: a saved plan, or one
    confirmed at a prompt, may be older than rows written since."""
    changes = []
    for c in plan.changes:
        if c.action in (DELETE, REPLACE) and not c.holds_data:
            prior = Resource(c.resource.type, c.resource.name, dict(c.before or {}), c.resource.depends_on)
            holds = providers[c.resource.type].holds_data(prior, Observed(prior.attrs))
            if holds:
                c = replace(c, holds_data=holds)
        changes.append(c)
    return replace(plan, changes=tuple(changes))


def apply_plan(
    plan: Plan,
    txn: Transaction,
    providers: Mapping[str, Provider],
    *,
    backup_dir: Path,
    force_delete_data: bool = False,
    parallelism: int = 4,
    on_event: Event | None = None,
) -> ApplyResult:
    """Run plan inside txn (the state under its lock), committing each step as it finishes."""
    plan = _recheck_data(plan, providers)
    losing = check_data_loss(plan, force_delete_data=force_delete_data)
    emit = on_event or (lambda *a: None)
    backups = _backups(losing, providers, backup_dir, emit)  # every backup before anything is deleted
    stored = txn.state
    txn.rebase(replace(plan.refreshed, serial=stored.serial, lineage=plan.lineage, secrets=stored.secrets))
    if plan.state_outdated:
        txn.commit(lambda s: s)  # record the refresh (e.g. resources deleted by hand) first
    applied, failures = _walk(
        plan, providers, txn, force_delete_data=force_delete_data, parallelism=parallelism, emit=emit
    )
    if failures:
        raise ApplyFailed(f"{plan.operation} failed; finished steps are saved in the state: " + "; ".join(failures))
    return ApplyResult(txn.state, backups, applied)


def _backups(
    losing: list[Change], providers: Mapping[str, Provider], backup_dir: Path, emit: Event
) -> list[Path | str]:
    backups: list[Path | str] = []
    for c in losing:
        p = providers[c.resource.type]
        prior = Resource(c.resource.type, c.resource.name, dict(c.before or {}), c.resource.depends_on)
        started = time.monotonic()
        try:
            backups.append(p.backup(prior, Observed(prior.attrs), backup_dir))
        except AirflowInfraError:
            raise
        except Exception as exc:
            raise ProviderError(
                f"{c.address}: backup failed, nothing was deleted: {type(exc).__name__}: {exc}"
            ) from exc
        emit("backup", c, time.monotonic() - started, str(backups[-1]))
    return backups


def _covered(plan: Plan, providers: Mapping[str, Provider]) -> set[str]:
    """DELETEs whose container goes in the same plan (see _run's covered)."""
    by_addr = {c.address: c for c in plan.changes}
    deleting = {c.address for c in plan.changes if c.action == DELETE}
    return {
        c.address
        for c in plan.changes
        if c.action == DELETE
        and any(
            d in deleting and by_addr[d].resource.type in providers[c.resource.type].deleted_with
            for d in c.resource.depends_on
        )
    }


def _walk(
    plan: Plan,
    providers: Mapping[str, Provider],
    txn: Transaction,
    *,
    force_delete_data: bool,
    parallelism: int,
    emit: Event,
) -> tuple[list[str], list[str]]:
    """Run the changes along the dependency graph, recording each as it finishes; after the first
    failure nothing new starts. Returns (applied, failures)."""
    by_addr = {c.address: c for c in plan.changes}
    covered = _covered(plan, providers)
    sorter = TopologicalSorter(_graph(plan))
    sorter.prepare()
    failures: list[str] = []
    applied: list[str] = []
    running: dict[Future[Observed | None], tuple[Change, float]] = {}
    ready: list[str] = []
    lease_lost = False
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool, _cancel_on_interrupt(providers):
        while sorter.is_active():
            if not failures:
                ready += sorter.get_ready()
                starting: list[str] = []
                for address in list(ready):
                    if by_addr[address].holds_data and (
                        any(rc.holds_data for rc, _ in running.values()) or any(by_addr[a].holds_data for a in starting)
                    ):
                        continue  # one deletion of data at a time: a failure stops before the next
                    starting.append(address)
                try:
                    txn.check_held()  # a holder whose lease ran out touches nothing more
                    _intend([by_addr[a] for a in starting], providers, txn)
                except StateError as exc:
                    failures.append(str(exc))
                    lease_lost = isinstance(exc, LeaseLost)
                    starting = []
                for address in starting:
                    ready.remove(address)
                    c = _resolved(by_addr[address], txn.state)
                    emit("start", c, 0.0)
                    running[
                        pool.submit(_run, c, providers[c.resource.type], force_delete_data, address in covered, txn)
                    ] = (c, time.monotonic())
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                c, started = running.pop(fut)
                failure = _record(c, fut, txn)
                if failure:
                    failures.append(failure)
                    emit("failed", c, time.monotonic() - started)
                    continue
                applied.append(c.address)
                emit("done", c, time.monotonic() - started)
                sorter.done(c.address)
    if failures and not lease_lost:
        try:  # a step failed because this run was stopped past its lease: say that too
            txn.check_held()
        except LeaseLost as exc:
            failures.append(str(exc))
    return applied, failures


def _intend(changes: list[Change], providers: Mapping[str, Provider], txn: Transaction) -> None:
    """Record the names of the creates about to start in the state, in one write, before the calls
    (invariant 2, docs/architecture.md): a kill after a call and before its resource is recorded (or marked) leaves
    something the next plan adopts, never something it refuses as foreign. A provider whose create
    marks in the same step needs none."""
    creates = {
        c.address: name_of(c.resource)
        for c in changes
        if c.action in (CREATE, REPLACE) and not providers[c.resource.type].marks_atomically
    }
    if any(txn.state.pending.get(a) != n for a, n in creates.items()):
        txn.commit(lambda s: s.with_pending(creates))


def _resolved(c: Change, state: State) -> Change:
    """The change with its Refs' values, from what the state holds now (the dependencies ran first)."""
    if not c.resource.refs() or c.action == DELETE:
        return c
    r = c.resource.resolved(lambda a: state.resources[a].attrs if a in state.resources else None)
    missing = sorted(r.refs())
    if missing:
        raise ProviderError(f"{c.address}: needs {missing[0]}, which is not in the state: apply it first")
    return replace(c, resource=r)


def _record(c: Change, fut: Future[Observed | None], txn: Transaction) -> str | None:
    """Commit a finished change to the state; the failure's line instead when it failed."""
    try:
        obs = fut.result()
    except Exception as exc:
        if isinstance(exc, ForeignResource) and c.address in txn.state.pending:
            # what is there is someone else's: no create of ours is pending there any more (else the
            # next plan would read it as ours)
            with contextlib.suppress(StateError):
                txn.commit(lambda s: s.done(c.address))
        detail = str(exc) if isinstance(exc, AirflowInfraError) else f"{type(exc).__name__}: {exc}"
        return detail if detail.startswith(c.address) else f"{c.address}: {detail}"
    r = c.resource
    try:
        if obs is None:
            txn.commit(lambda s: s.without(c.address).done(c.address))
        else:
            made = Resource(r.type, r.name, dict(obs.attrs), r.depends_on)
            txn.commit(lambda s: s.with_resource(made).done(c.address))
    except StateError as exc:  # e.g. the lease ran out while the step ran: what it did is not recorded
        return (
            f"{c.address}: {c.action} finished but was not recorded ({exc}); the next plan finds it as it is "
            "(what we make carries this project's marker)"
        )
    return None
