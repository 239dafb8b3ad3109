"""`airflow-infra rotate`: new passwords for the project's login roles, and Airflow told of them."""

from __future__ import annotations

from ..errors import AirflowInfraError
from .project import Project

ROLES = ("etl", "reader")


def rotate(
    project: Project,
    roles: tuple[str, ...] = ROLES,
    *,
    lock_timeout: float = 0.0,
    push: str | None = None,
    airflow_bin: str = "airflow",
) -> list[tuple[str, str]]:
    """Set a new password for each of roles ("etl", "reader"), under the state lock, each stored
    before the role gets it. push ("aws-secrets-manager" or "airflow") then writes Airflow's
    connections with the new password in the same run. Returns [(what, what happened)]."""
    from ..providers.postgres import RoleProvider
    from ..state.base import transaction
    from .airflow import connections_push

    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise AirflowInfraError(f"ROLE {unknown[0]!r}: only {' and '.join(ROLES)} log in with a password of ours")
    target = project.target(lock_timeout=lock_timeout)
    done: list[tuple[str, str]] = []
    try:
        with transaction(project.backend(), "rotate", timeout=lock_timeout) as txn:
            state = project.claim(txn.state)
            missing = [f"postgres_role.{label}" for label in roles if f"postgres_role.{label}" not in state.resources]
            if missing:
                raise AirflowInfraError(f"{missing[0]} is not in the state: run `airflow-infra apply` first")
            target.secrets.load(state)
            target.secrets.bind(txn.commit)
            provider = target.providers(state.lineage)["postgres_role"]
            assert isinstance(provider, RoleProvider)
            for label in roles:
                txn.check_held()  # a holder whose lease ran out sets nothing more
                r = state.resources[f"postgres_role.{label}"]
                provider.rotate(r)
                done.append((r.attrs["name"], "new password set and stored"))
    finally:
        target.close()
    if push:
        done += connections_push(project, to=push, airflow_bin=airflow_bin, lock_timeout=lock_timeout)
    return done
