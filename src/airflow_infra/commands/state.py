"""Commands on a project's state: list, show, versions, rollback to a kept serial, migrate to
another backend, bootstrap the S3 backend, the lock and force-unlock."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import AirflowInfraError, ConfigError, StateError

if TYPE_CHECKING:
    from ..state.base import LockInfo, State, StateVersion

# Heavier modules (the engine, providers, psycopg) are imported inside the functions that need
# them, so that `airflow-infra --help` and config errors stay fast.
from .project import Project


def state_list(project: Project) -> list[str]:
    return sorted(project.backend().read().resources)


def state_show(project: Project, address: str) -> dict[str, Any]:
    state = project.backend().read()
    if address not in state.resources:
        known = ", ".join(sorted(state.resources)) or "none"
        raise AirflowInfraError(f"ADDRESS {address!r} is not in the state (addresses: {known})")
    return state.resources[address].to_json()


def state_versions(project: Project) -> list[StateVersion]:
    """The states the backend keeps (the current one first): a list of StateVersion."""
    return project.backend().versions()


def state_rollback(project: Project, serial: int, *, lock_timeout: float = 0.0) -> State:
    """Bring back a kept state as a new serial of the current lineage, under the lock. Returns
    the new State. Nothing in the world changes: the next plan shows what differs from it."""
    from dataclasses import replace

    from ..errors import StateConflict, StateCorrupt
    from ..state.base import transaction

    backend = project.backend()
    with transaction(backend, "state rollback", timeout=lock_timeout, read=False) as txn:
        try:
            current = txn.state
        except StateCorrupt:
            current = None  # what restore is for: the corrupt one is kept as a version
        old = backend.read_version(serial)
        if old is None:
            raise StateError(
                f"SERIAL {serial}: no such state is kept in {backend.location} "
                "(`airflow-infra state versions` lists those that are)"
            )
        _check_is_this_projects(project, old, serial)
        if current is None:
            # Past the corrupt state too (at most one past the newest readable one), so that a plan
            # saved from that state can never pass for one made from the restored state.
            newest = max((v.serial for v in backend.versions() if v.lineage == old.lineage), default=serial)
            restored = replace(old, serial=newest + 2)
            backend.overwrite(restored)
            return restored
        if current.serial > 0 and old.lineage != current.lineage:
            raise StateConflict(
                f"SERIAL {serial}: that state is of lineage {old.lineage}, not the current "
                f"lineage {current.lineage} (another project's or an earlier start's); nothing was restored"
            )
        return txn.commit(lambda s: replace(old, serial=s.serial, lineage=s.lineage))


def _check_is_this_projects(project: Project, old: State, serial: int) -> None:
    """A kept state names the resources of one project: refuse one whose database or roles are not
    this config's (a state file copied from another project). From the config alone: a restore must
    work while the servers are down."""
    from ..providers.postgres import database_resources

    # the names every target gives the project's database and roles, from the one place that says them
    expected = {
        r.address: r.attrs["name"]
        for r in database_resources(
            project.config.project.name,
            [],
            environment=project.config.project.environment,
            database=project.config.database_name,
        )
    }
    for address, want in sorted(expected.items()):
        r = old.resources.get(address)
        if r is not None and r.attrs.get("name") != want:
            raise StateError(
                f"SERIAL {serial}: that state's {address} is {r.attrs.get('name')!r}, this project's is "
                f"{want!r}: it is another project's state; nothing was restored"
            )


def state_migrate(
    project: Project, *, to_backend: str, dsn_env: str | None = None, path: str | None = None, lock_timeout: float = 0.0
) -> str:
    """Copy the state from the configured backend into another, keeping lineage, serial and resources.
    The destination must hold no state yet. Returns the destination's location; the config is left to
    the user (set [state] backend to the destination afterwards)."""
    from pydantic import ValidationError

    from ..config import StateConfig
    from ..state import get_backend
    from ..state.base import transaction

    # The destination's other settings ([state] bucket, key, lock, ...) come from the config.
    settings = {
        **project.config.state.model_dump(exclude_unset=True),
        "backend": to_backend,
        **({"dsn_env": dsn_env} if dsn_env else {}),
        **({"path": path} if path else {}),
    }
    try:
        state_cfg = StateConfig(**settings)
    except ValidationError as exc:
        raise ConfigError(f"--to {to_backend!r}: {exc.errors()[0]['msg']}") from None
    moved = project.config.model_copy(update={"state": state_cfg})
    from ..locations import check

    check(moved, project.dir, project.home)  # the state's new place follows the containment rule too
    source = project.backend()
    dest = get_backend(moved, project.dir)
    if dest.location == source.location:
        raise ConfigError(f"--to: the state is already at {dest.location}")
    with (
        transaction(source, "migrate", timeout=lock_timeout) as txn,
        transaction(dest, "migrate", timeout=lock_timeout, read=False),
    ):
        dest.import_state(txn.state)
        return dest.location


def backend_bootstrap(project: Project, *, confirm: Callable[[list[str]], bool] | None = None) -> list[str] | None:
    """Make what [state] needs and nobody should make by hand: for s3, the state bucket (versioning,
    SSE, public-access block) and, for a DynamoDB lock, the table. Idempotent. Settings of an
    existing bucket change only when confirm(the changes) says yes; None: declined, nothing done."""
    st = project.config.state
    if st.backend != "s3":
        return []
    if not st.bucket:
        raise ConfigError("[state] bucket: set the state bucket's name first")
    from ..state.s3 import bootstrap

    return bootstrap(
        bucket=st.bucket, region=st.region, lock=st.locks, dynamodb_table=st.dynamodb_table, confirm=confirm
    )


def lock_info(project: Project) -> LockInfo | None:
    return project.backend().lock_info()


def force_unlock(project: Project, lock_id: str) -> None:
    project.backend().unlock(lock_id)


state_restore = state_rollback  # its name before "restore" was left to backups alone; kept for scripts
