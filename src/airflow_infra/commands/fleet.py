"""Many projects: the registry (projects.csv), `dags sync` and the `--all` fleet commands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AirflowInfraError, ConfigError
from .project import Project, apply, open_project, outputs, plan

if TYPE_CHECKING:
    from ..dags.sync import SyncResult
    from ..engine.plan import Plan
    from ..registry import Entry


def projects_list(registry: str | Path) -> list[Entry]:
    from .. import registry as reg

    return reg.read(registry)


def projects_show(registry: str | Path, project: str) -> Entry:
    entries = {e.project: e for e in projects_list(registry)}
    if project not in entries:
        raise AirflowInfraError(f"PROJECT {project!r} is not in {registry} (projects: {', '.join(entries) or 'none'})")
    return entries[project]


def projects_add(
    registry: str | Path, *, project: str, url: str, repo: str = "", branch: str = "", path: str = "", config: str = ""
) -> list[Entry]:
    from .. import registry as reg
    from ..claims import claims

    entry = reg.Entry(project, repo or project, url, branch, path, config)
    entries = reg.read(registry) if Path(registry).exists() else []
    reg.check_rows([*entries, entry], str(registry), transports=False)  # the row first: its own one-line errors
    reg.check_rows([entry], str(registry), [len(entries) + 2])  # and a new row's URL must be one git may use
    clash = claims(registry, [*entries, entry]).conflicts(project)
    if clash:  # the second claim is refused, and nothing is written
        raise ConfigError(f"{registry}: {clash[0]}; {project} was not added")
    return reg.add(registry, entry)


def projects_remove(registry: str | Path, project: str) -> list[Entry]:
    from .. import registry as reg

    return reg.remove(registry, project)


def dags_sync(
    registry: str | Path,
    dags_folder: str | Path,
    *,
    jobs: int = 4,
    check: bool = False,
    recheck: bool = False,
    timeout: float = 300.0,
) -> list[SyncResult]:
    """Publish every registered project's DAGs at dags_folder/<Project>; a list of SyncResult. With check,
    a published revision is checked again when the Airflow it passed with changed; with recheck, always."""
    from .. import registry as reg
    from ..dags.sync import DagSync

    return DagSync(dags_folder, check=check, recheck=recheck, timeout=timeout).run(reg.read(registry), jobs=jobs)


def dags_install_importer(
    dags_folder: str | Path, *, registry: str | Path, schedule: str = "*/5 * * * *", jobs: int = 4, check: bool = True
) -> Path:
    from ..dags.sync import install_importer

    reg_path = Path(registry)
    if not reg_path.exists():
        raise ConfigError(f"--registry {registry}: not found")
    return install_importer(dags_folder, registry=reg_path, schedule=schedule, jobs=jobs, check=check)


@dataclass
class FleetResult:
    project: str
    plan: Plan | None = None  # the Plan, when planning worked
    outputs: dict[str, dict[str, Any]] | None = None
    error: str = ""
    applied: bool = False

    def to_json(self, *, show_secrets: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "project": self.project,
            "result": "error" if self.error else ("applied" if self.applied else "ok"),
        }
        if self.error:
            doc["error"] = self.error
        if self.plan is not None:
            doc["summary"] = self.plan.counts()
            doc["changes"] = self.plan.has_changes
        if self.outputs is not None:
            doc["outputs"] = {
                k: (o if show_secrets or not o["sensitive"] else {"sensitive": True}) for k, o in self.outputs.items()
            }
        return doc


def _fleet(registry: str | Path, work: Callable[[str, Project], FleetResult], *, jobs: int = 4) -> list[FleetResult]:
    """work() on every registered project that has a Config, in parallel; one's error stops no other."""
    from concurrent.futures import ThreadPoolExecutor

    from .. import registry as reg
    from ..claims import claims

    entries = reg.read(registry)
    refused = claims(registry, entries).refused()
    entries = [e for e in entries if e.config]

    def one(e: Entry) -> FleetResult:
        if e.project in refused:  # a name an earlier row's project claims: not this project's to use
            return FleetResult(e.project, error=f"{registry}: {refused[e.project]}")
        directory = reg.config_dir(registry, e)
        assert directory is not None  # only entries with a Config are here
        if not (directory / "airflow-infra.toml").is_file():
            return FleetResult(
                e.project,
                error=f"{registry}: Config {e.config!r} of {e.project}: no "
                f"{directory / 'airflow-infra.toml'} (fix the row, or "
                f"`airflow-infra init` in {directory})",
            )
        try:
            return work(e.project, open_project(directory))
        except AirflowInfraError as exc:
            return FleetResult(e.project, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - reported per project, never lost
            return FleetResult(e.project, error=f"unexpected {type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, entries))


def fleet_plan(registry: str | Path, *, jobs: int = 4) -> list[FleetResult]:
    return _fleet(registry, lambda name, p: FleetResult(name, plan=plan(p)), jobs=jobs)


def fleet_apply(
    registry: str | Path,
    *,
    plans: dict[str, Plan] | None = None,
    confirm: Callable[[list[FleetResult]], bool] | None = None,
    jobs: int = 4,
    lock_timeout: float = 0.0,
) -> list[FleetResult] | None:
    """Apply every project. With plans (the reviewed ones), each project applies its own plan (a changed
    state refuses it), and a project without one is not applied at all: nobody reviewed it. With
    confirm (and no plans), every project is planned first and confirm(results) -> bool asked, as a
    single apply asks; None when it declined."""
    if confirm is not None and plans is None:
        planned = fleet_plan(registry, jobs=jobs)
        if any(r.plan is not None and r.plan.has_changes for r in planned) and not confirm(planned):
            return None
        plans = {r.project: r.plan for r in planned if r.plan is not None}

    def work(name: str, p: Project) -> FleetResult:
        if plans is not None and name not in plans:
            return FleetResult(name, error="not applied: it had no reviewed plan (planning it failed)")
        planned, result = apply(p, plan=None if plans is None else plans[name], lock_timeout=lock_timeout)
        return FleetResult(name, plan=planned, applied=result is not None and planned.has_changes)

    return _fleet(registry, work, jobs=jobs)


def fleet_outputs(registry: str | Path, *, jobs: int = 4, reveal: bool = False) -> list[FleetResult]:
    return _fleet(registry, lambda name, p: FleetResult(name, outputs=outputs(p, reveal=reveal)), jobs=jobs)
