"""The Airflow integration: connections and variables, pushing them, `new`, `doctor`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import AirflowInfraError
from .project import Project, outputs

if TYPE_CHECKING:
    from ..doctor import Check


def connections(project: Project, *, fmt: str = "env", reveal: bool = False, output: str | Path | None = None) -> str:
    """The project's connections and variables in Airflow's format fmt (env, json, yaml, uri). Written to
    output (created with mode 0600, secrets included) when given, else returned (secrets only with reveal)."""
    from ..airflow.connections import build, render

    reveal = reveal or output is not None
    conns, variables = build(project.config, outputs(project, reveal=reveal, check_secrets=True))
    if not conns:
        raise AirflowInfraError("no connections yet: run `airflow-infra apply` first")
    text = render(conns, variables, fmt, show_secrets=reveal)
    if output is not None:
        import os

        path = Path(output)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)  # also when it existed with another mode
    return text


def connections_push(
    project: Project,
    *,
    to: str,
    prefix: str = "airflow/connections",
    variables_prefix: str = "airflow/variables",
    region: str | None = None,
    airflow_bin: str = "airflow",
    lock_timeout: float = 0.0,
) -> list[tuple[str, str]]:
    """Push the connections (and variables) where Airflow reads them; [(name, created|updated|unchanged)].
    Secrets Manager secrets are recorded in the state, under its lock, so that destroy removes them."""
    from dataclasses import replace

    from ..airflow.connections import build

    conns, variables = build(project.config, outputs(project, reveal=True))
    if not conns:
        raise AirflowInfraError("no connections yet: run `airflow-infra apply` first")
    if to == "aws-secrets-manager":
        from ..airflow.push import push_secrets_manager
        from ..ownership import project_tags
        from ..state.base import transaction

        p, sc = project.config.project, project.config.secrets
        with transaction(project.backend(), "connections push", timeout=lock_timeout) as txn:
            state = project.claim(txn.state)
            done, arns = push_secrets_manager(
                conns,
                variables,
                prefix=prefix,
                variables_prefix=variables_prefix,
                region=region or sc.region,
                tags=project_tags(p.name, p.environment),
                kms_key_id=sc.kms_key_id,
            )
            if {**state.pushed, **arns} != state.pushed:
                txn.commit(lambda s: replace(project.claim(s), pushed={**s.pushed, **arns}))
            return done
    from ..airflow.push import push_airflow

    return push_airflow(conns, variables, airflow_bin=airflow_bin)


def doctor(project: Project) -> list[Check]:
    """Check from here that the project's connections work; a list of doctor.Check."""
    from ..doctor import run
    from ..secretstores import role_ref
    from .local import local_server

    target = project.target()
    p = project.config.project
    try:
        ages = {
            role: days
            for role in ("etl", "reader")
            if (days := target.secrets.age_days(role_ref(p.name, p.environment, f"{p.name}_{role}"))) is not None
        }
        stopped = project.config.target.kind == "local" and local_server().running_pid() is None
        return run(
            outputs(project, reveal=True),
            s3=target.bucket_client(),
            secret_ages=ages,
            max_age_days=project.config.secrets.max_age_days,
            local_stopped=stopped,
        )
    finally:
        target.close()


def new(name: str, directory: str | Path | None = None) -> Path:
    """Scaffold a workflows repository (the seed's layout) with an example ELT DAG; returns its path."""
    from ..airflow.scaffold import new as scaffold

    return scaffold(name, directory)
