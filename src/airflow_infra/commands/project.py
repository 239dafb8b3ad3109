"""Commands on one project: init, load, plan, apply, destroy, up, import, outputs.

The CLI parses, calls one of these and renders the result; a script can do exactly what the
CLI does. Options are keyword-only. Every function raises only AirflowInfraError subclasses
on purpose.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AirflowInfraError, ConfigError, StalePlan
from ..home import ensure_dir, home_dir
from ..names import CONFIG_FILE, project_name

if TYPE_CHECKING:
    from ..config import Config
    from ..engine.apply import ApplyResult, Event
    from ..engine.plan import Plan
    from ..resources import Resource
    from ..state.base import State, StateBackend, Transaction
    from ..targets.base import Target

# Heavier modules (the engine, providers, psycopg) are imported inside the functions that need
# them, so that `airflow-infra --help` and config errors stay fast.


@dataclass
class Project:
    """A loaded project: its directory, validated config, AIRFLOW_INFRA_HOME and state backend."""

    dir: Path
    config: Config  # imported lazily: `--help` stays fast
    home: Path

    def backend(self) -> StateBackend:
        from ..state import get_backend

        return get_backend(self.config, self.dir)

    def claim(self, state: State) -> State:
        """The state as this project's (StateError when it records another project or environment)."""
        return state.claimed(self.config.project.name, self.config.project.environment)

    def check_locations(self) -> None:
        """The containment rule (locations.py): ConfigError when two of the project's places overlap."""
        from ..locations import check

        check(self.config, self.dir, self.home)

    @property
    def backup_dir(self) -> Path:
        from ..locations import backup_dir

        return backup_dir(self.config, self.home)

    def target(self, **options: Any) -> Target:
        """options: lock_timeout (--lock-timeout: database lock waits too), and the aws target's
        apply/destroy flags (encrypt_storage, skip_final_snapshot, on_progress)."""
        from ..targets import get_target

        return get_target(self.config, self.home, **options)


def init(project_dir: str | Path = ".", *, name: str | None = None, environment: str = "dev") -> Path:
    """Write airflow-infra.toml (local target). Refuses to overwrite an existing one."""
    project_dir = Path(project_dir)
    path = project_dir / CONFIG_FILE
    if path.exists():
        raise ConfigError(f"{path}: already exists; edit it, or remove it to start again")
    name = project_name(project_dir, name)
    from ..config import render_config

    text = render_config(name, environment)
    project_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    ensure_dir(home_dir())  # the home, for the commands that follow (they make none)
    return path


def open_project(
    project_dir: str | Path = ".",
    *,
    vars: Sequence[str] = (),
    var_files: Sequence[str | Path] = (),
    create_home: bool = False,
) -> Project:
    """The project in project_dir. The home must exist unless create_home (what `up` does)."""
    from ..config import load_config
    from ..home import existing_home

    project_dir = Path(project_dir).resolve()
    if not project_dir.is_dir():
        raise ConfigError(f"-C {project_dir}: not a directory")
    config = load_config(project_dir, vars=vars, var_files=var_files)
    home = home_dir()
    if create_home and home.exists() and not home.is_dir():
        raise ConfigError(
            f"AIRFLOW_INFRA_HOME={home}: not a directory; set AIRFLOW_INFRA_HOME to a directory (or "
            "a path where one can be made)"
        )
    return Project(project_dir, config, home if create_home else existing_home())


def plan(project: Project, *, destroy: bool = False) -> Plan:
    """Refresh and diff; writes nothing. Returns a Plan."""
    from ..engine.plan import make_plan

    project.check_locations()
    state = project.claim(project.backend().read())
    target = project.target()
    target.secrets.load(state)  # a store that keeps its values in the state: whether each is there is drift
    try:
        target.preflight()
        return make_plan(
            state,
            [] if destroy else target.desired(),
            target.providers(state.lineage),
            operation="destroy" if destroy else "apply",
        )
    finally:
        target.close()


def save_plan(p: Plan, path: str | Path) -> None:
    try:
        Path(path).write_text(json.dumps(p.to_json(), sort_keys=True, indent=2) + "\n")
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot write the plan there ({exc.strerror}); nothing was changed") from None


def load_plan(path: str | Path) -> Plan:
    from ..engine.plan import Plan

    try:
        return Plan.from_json(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise ConfigError(f"{path}: plan file not found") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a plan file saved by `airflow-infra plan --out` ({exc})") from None


def _run(
    project: Project,
    operation: str,
    *,
    saved: Plan | None = None,
    confirm: Callable[[Plan], bool] | None = None,
    force_delete_data: bool = False,
    lock_timeout: float = 0.0,
    on_event: Event | None = None,
    **target_options: Any,
) -> tuple[Plan, ApplyResult | None]:
    from ..state.base import transaction

    project.check_locations()
    backend, target = project.backend(), project.target(lock_timeout=lock_timeout, **target_options)
    try:
        with transaction(backend, operation, timeout=lock_timeout) as txn:
            return _run_in(
                txn,
                project,
                target,
                operation,
                saved=saved,
                confirm=confirm,
                force_delete_data=force_delete_data,
                on_event=on_event,
            )
    finally:
        target.close()


def _run_in(
    txn: Transaction,
    project: Project,
    target: Target,
    operation: str,
    *,
    saved: Plan | None,
    confirm: Callable[[Plan], bool] | None,
    force_delete_data: bool,
    on_event: Event | None,
) -> tuple[Plan, ApplyResult | None]:
    from ..engine.apply import ApplyResult, apply_plan, check_data_loss
    from ..engine.plan import make_plan

    stored = project.claim(txn.state)
    target.preflight()
    target.secrets.load(stored)
    # a saved plan made from no state at all chose the lineage its creates are marked with
    providers = target.providers(saved.lineage if saved is not None else stored.lineage)
    if saved is None:
        p = make_plan(stored, [] if operation == "destroy" else target.desired(), providers, operation=operation)
    else:
        p = saved
        if p.serial != stored.serial or (stored.serial > 0 and p.lineage != stored.lineage):
            raise StalePlan(
                f"the saved plan was made from state serial {p.serial} (lineage {p.lineage}) but the state is now "
                f"serial {stored.serial} (lineage {stored.lineage}): run `airflow-infra plan` again"
            )
    p.refuse_conflicts()
    if not p.has_changes and not p.state_outdated:
        return p, ApplyResult(stored, [], [])
    check_data_loss(p, force_delete_data=force_delete_data)
    if confirm is not None and p.has_changes and not confirm(p):
        return p, None
    target.secrets.bind(txn.commit)
    result = apply_plan(
        p, txn, providers, backup_dir=project.backup_dir, force_delete_data=force_delete_data, on_event=on_event
    )
    if operation == "destroy":
        _forget_pushed(txn, project)
    return p, result


def _forget_pushed(txn: Transaction, project: Project) -> None:
    """After a destroy: the connection secrets `connections push` wrote go too (recoverable for 7 days)."""
    import logging
    from dataclasses import replace

    from ..airflow.push import delete_pushed
    from ..ownership import project_tags

    names = sorted(txn.state.pushed)
    if not names:
        return
    txn.check_held()
    p = project.config.project
    for why in delete_pushed(names, region=project.config.secrets.region, tags=project_tags(p.name, p.environment)):
        logging.getLogger(__name__).warning(f"{why}: not deleted")
    txn.commit(lambda s: replace(s, pushed={}))
    logging.getLogger(__name__).warning(
        f"the connection secrets `connections push` wrote are scheduled for deletion "
        f"(recoverable for 7 days): {', '.join(names)}"
    )


def apply(
    project: Project,
    *,
    plan: Plan | None = None,
    confirm: Callable[[Plan], bool] | None = None,
    force_delete_data: bool = False,
    lock_timeout: float = 0.0,
    on_event: Event | None = None,
    encrypt_storage: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> tuple[Plan, ApplyResult | None]:
    """Plan (or take the saved plan) and apply it under the state lock.

    confirm(plan) -> bool is asked before anything changes; None means approved.
    encrypt_storage (aws): encrypt an unencrypted RDS instance by a snapshot-copy-restore.
    on_progress(message) hears about long waits (an RDS instance becoming available).
    Returns (plan, ApplyResult), the result None when confirm declined.
    """
    return _run(
        project,
        "apply",
        saved=plan,
        confirm=confirm,
        force_delete_data=force_delete_data,
        lock_timeout=lock_timeout,
        on_event=on_event,
        encrypt_storage=encrypt_storage,
        on_progress=on_progress,
    )


def destroy(
    project: Project,
    *,
    confirm: Callable[[Plan], bool] | None = None,
    force_delete_data: bool = False,
    lock_timeout: float = 0.0,
    on_event: Event | None = None,
    skip_final_snapshot: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> tuple[Plan, ApplyResult | None]:
    """Delete every resource in the state, in reverse dependency order.

    skip_final_snapshot (aws, environment "dev" only): delete the RDS instance without a final snapshot.
    """
    return _run(
        project,
        "destroy",
        confirm=confirm,
        force_delete_data=force_delete_data,
        lock_timeout=lock_timeout,
        on_event=on_event,
        skip_final_snapshot=skip_final_snapshot,
        on_progress=on_progress,
    )


def up(
    project_dir: str | Path = ".",
    *,
    vars: Sequence[str] = (),
    var_files: Sequence[str | Path] = (),
    lock_timeout: float = 0.0,
    on_event: Event | None = None,
) -> tuple[Project, Plan, ApplyResult | None]:
    """init (when no config exists) + apply without asking. Returns (project, plan, result)."""
    if not (Path(project_dir) / CONFIG_FILE).exists():
        name = project_name(Path(project_dir))  # checked before anything is made
        if not vars and not var_files and not any(k.startswith("AIRFLOW_INFRA_TARGET__") for k in os.environ):
            # Surely the local default: start its server (initdb is most of a first `up`)
            # while the config, the engine and psycopg load.
            from ..localserver.server import LocalServer

            LocalServer(home_dir()).start_in_background()
        init(project_dir, name=name)
    project = open_project(project_dir, vars=vars, var_files=var_files, create_home=True)
    p, result = apply(project, lock_timeout=lock_timeout, on_event=on_event)
    return project, p, result


def import_resource(project: Project, address: str, resource_id: str, *, lock_timeout: float = 0.0) -> Resource:
    """Adopt something that exists (a bucket, a database, a role, a schema) into the state at
    address, after checking that it exists. The next plan shows what apply would change on it."""
    from ..engine.plan import import_id
    from ..providers.base import read_back
    from ..resources import Observed, Resource
    from ..state.base import transaction

    project.check_locations()  # adopting a place is making it ours: the same rule as a plan's
    target = project.target(lock_timeout=lock_timeout)
    try:
        desired = {r.address: r for r in target.desired()}
        if address not in desired:
            raise AirflowInfraError(
                f"ADDRESS {address!r} is not in the configuration (addresses: {', '.join(sorted(desired))})"
            )
        r = desired[address]
        if import_id(r) != resource_id:
            raise AirflowInfraError(
                f"ID {resource_id!r} is not what the configuration names {address} "
                f"({import_id(r)!r}): change airflow-infra.toml first, so that apply would not replace it"
            )
        with transaction(project.backend(), "import", timeout=lock_timeout) as txn:
            state = project.claim(txn.state)
            if address in state.resources:
                raise AirflowInfraError(f"ADDRESS {address!r} is already in the state")
            r = r.resolved(lambda a: state.resources[a].attrs if a in state.resources else None, unknown=None)
            provider = target.providers(state.lineage)[r.type]
            if provider.read(r, None) is None:
                raise AirflowInfraError(f"ID {resource_id!r}: no such {r.type} exists, so there is nothing to import")
            provider.mark(r)  # ours from now on: the marker names this project and state
            observed = read_back(provider, r, Observed({}))
            adopted = Resource(r.type, r.name, dict(observed.attrs), r.depends_on)
            return txn.commit(lambda s: project.claim(s).with_resource(adopted)).resources[address]
    finally:
        target.close()


def outputs(project: Project, *, reveal: bool = False, check_secrets: bool = False) -> dict[str, dict[str, Any]]:
    """{name: {"value": ..., "sensitive": bool}} from the state. With reveal=False the values of
    sensitive outputs are None and no secret store is asked for a value; check_secrets then asks
    whether it holds each (SecretMissing naming the role when not)."""
    from ..outputs import check_passwords

    target = project.target()
    state = project.claim(project.backend().read())
    target.secrets.load(state)
    if check_secrets and not reveal:
        check_passwords(state, target.secrets)
    return target.outputs(state, reveal=reveal)


def output(project: Project, name: str, *, reveal: bool = False) -> dict[str, Any]:
    """One output, {"value": ..., "sensitive": bool}; a sensitive one only with reveal."""
    outs = outputs(project, reveal=reveal)
    if name not in outs:
        raise AirflowInfraError(f"NAME {name!r} is not an output (outputs: {', '.join(outs) or 'none, apply first'})")
    if outs[name]["sensitive"] and not reveal:
        raise AirflowInfraError(f"output {name!r} is sensitive: pass --show-secrets to print it")
    return outs[name]
