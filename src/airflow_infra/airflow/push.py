"""Pushing connections where Airflow reads them: AWS Secrets Manager (as SecretsManagerBackend reads
`<prefix>/<conn_id>`, JSON form; variables under `<variables_prefix>/<name>`), or a local Airflow through
`airflow connections import --overwrite` and `airflow variables set`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from .. import children
from ..errors import AirflowInfraError
from .connections import Connection


def _not_ours(sm, name: str, tags: dict[str, str]) -> str | None:
    """Why the existing secret name is not this project's to write or delete (None: it is, or it is not
    there). Ours: it carries the project's ManagedBy, Project and Environment tags."""
    from ..aws.clients import NotFound, aws

    try:
        with aws(f"Secrets Manager secret {name}", "read"):
            found = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=name).get("Tags", [])}
    except NotFound:
        return None
    if all(found.get(k) == v for k, v in tags.items() if k in ("ManagedBy", "Project", "Environment")):
        return None
    if found.get("ManagedBy") == "airflow-infra" and found.get("Project"):
        return (
            f"Secrets Manager secret {name} belongs to project {found['Project']} "
            f"({found.get('Environment', '?')}), not to {tags.get('Project')} ({tags.get('Environment')})"
        )
    return f"Secrets Manager secret {name} exists and was not made by airflow-infra for project {tags.get('Project')}"


def push_secrets_manager(
    conns: list[Connection],
    variables: dict[str, str],
    *,
    prefix: str,
    variables_prefix: str,
    region: str,
    tags: dict[str, str],
    kms_key_id: str | None = None,
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """([(name, created|updated|unchanged)], {name: ARN}): tagged like the project's other secrets,
    encrypted with kms_key_id when given. A secret there that is not this project's (another project's
    tags, or none) is never overwritten: that is refused before anything is written."""
    from ..aws.clients import NotFound, aws, aws_client

    sm = aws_client("secretsmanager", region=region)
    items = [
        (f"{prefix.rstrip('/')}/{c.conn_id}", json.dumps(c.fields(show_secrets=True), sort_keys=True)) for c in conns
    ]
    items += [(f"{variables_prefix.rstrip('/')}/{k}", v) for k, v in sorted(variables.items())]
    tagged = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    for name, _ in items:
        why = _not_ours(sm, name, tags)
        if why:
            raise AirflowInfraError(
                f"{why}: nothing was pushed (choose another id in [airflow] of the "
                "project's airflow-infra.toml, or another --prefix)"
            )
    done, arns = [], {}
    for name, value in items:
        with aws(f"Secrets Manager secret {name}", "write"):
            try:
                with aws(f"Secrets Manager secret {name}", "read"):
                    found = sm.get_secret_value(SecretId=name)
            except NotFound:
                key = {"KmsKeyId": kms_key_id} if kms_key_id else {}
                arns[name] = sm.create_secret(Name=name, SecretString=value, Tags=tagged, **key)["ARN"]
                done.append((name, "created"))
                continue
            arns[name] = found["ARN"]
            if found["SecretString"] == value:
                done.append((name, "unchanged"))
            else:
                sm.put_secret_value(SecretId=name, SecretString=value)
                done.append((name, "updated"))
    return done, arns


def delete_pushed(names: list[str], *, region: str, tags: dict[str, str]) -> list[str]:
    """Schedule the deletion of pushed secrets, with AWS's recovery window (7 days): never forced, and never
    one that is not this project's (its tags say another's, or none). The names left alone, each said why."""
    from ..aws.clients import Conflict, NotFound, aws, aws_client

    sm = aws_client("secretsmanager", region=region)
    left = []
    for name in names:
        why = _not_ours(sm, name, tags)
        if why:
            left.append(why)
            continue
        try:
            with aws(f"Secrets Manager secret {name}", "delete"):
                sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
        except NotFound:
            pass  # gone already
        except Conflict as exc:
            if exc.code != "InvalidRequestException":  # InvalidRequestException: already scheduled for deletion
                raise
    return left


def push_airflow(
    conns: list[Connection], variables: dict[str, str], *, airflow_bin: str = "airflow"
) -> list[tuple[str, str]]:
    exe = shutil.which(airflow_bin)
    if exe is None:
        raise AirflowInfraError(
            f"--to airflow: no `{airflow_bin}` command here (install Airflow, or pass --airflow-bin)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "connections.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({c.conn_id: c.fields(show_secrets=True) for c in conns}, f)
        _run([exe, "connections", "import", "--overwrite", path])
    for k, v in sorted(variables.items()):
        _run([exe, "variables", "set", k, v])
    return [(c.conn_id, "imported") for c in conns] + [(k, "set") for k in sorted(variables)]


def _run(args: list[str]) -> None:
    # Airflow's own environment (AIRFLOW_HOME, its config): the connections go where it keeps them
    children.run(
        args,
        what=f"`airflow {' '.join(args[1:3])}`",
        env=dict(os.environ),
        timeout=300,
        error=AirflowInfraError,
        reason=lambda p: children.last_line(p.stderr or p.stdout) or str(p.returncode),
    )
