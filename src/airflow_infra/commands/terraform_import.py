"""Moving to airflow-infra from the seed's Terraform module: import-terraform."""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import AirflowInfraError, ConfigError
from ..home import home_dir
from ..names import CONFIG_FILE
from .project import Project

# what the seed's bucket, security group and instance become here
ADOPTED = ("s3_bucket.workfiles", "aws_security_group.db", "aws_db_instance.main")


@dataclass(frozen=True)
class TerraformImport:
    name: str
    config_path: Path
    adopted: list[str]
    dropped_rules: list[str]  # what the narrowed security group will no longer allow
    warnings: list[str]


def import_terraform(
    tfstate: str | Path,
    project_dir: str | Path = ".",
    *,
    name: str | None = None,
    environment: str = "prod",
    module: str | None = None,
    region: str | None = None,
    allow_security_groups: Sequence[str] = (),
    allow_cidrs: Sequence[str] = (),
    connect_through: str | None = None,
    lock_timeout: float = 0.0,
) -> TerraformImport:
    """Write airflow-infra.toml for what the seed module's Terraform state describes and adopt the
    bucket, security group, RDS instance and its database into our state. Nothing is changed in
    AWS; the first plan shows the hardening that apply would do. All or nothing: on any error no
    file is written."""
    from ..config import validate_config
    from ..resources import Resource
    from ..state.base import State, transaction
    from ..terraform import printable, read_seed_state, render_adoption_config

    project_dir = Path(project_dir).resolve()
    config_path = project_dir / CONFIG_FILE
    if config_path.exists():
        raise ConfigError(f"{config_path}: already exists; import-terraform writes a new one (move it away first)")
    seed = read_seed_state(tfstate, module=module)  # all checked before anything is looked up or written
    src = printable(str(tfstate))  # in messages: one line, whatever the file's name
    name, text = render_adoption_config(
        seed,
        name=name,
        environment=environment,
        region=region,
        allow_security_groups=list(allow_security_groups),
        allow_cidrs=list(allow_cidrs),
        connect_through=connect_through,
    )
    project = Project(project_dir, validate_config(tomllib.loads(text), f"{CONFIG_FILE} (for {src})"), home_dir())
    target = project.target()
    try:
        desired = {r.address: r for r in target.desired()}
        providers = target.providers("")  # reads only: what Terraform made carries no marker of ours
        adopted: dict[str, Resource] = {}
        for address in ADOPTED:
            r = desired[address].resolved(lambda a: adopted[a].attrs if a in adopted else None, unknown=None)
            found = providers[r.type].read(r, None)
            if found is None:
                raise AirflowInfraError(
                    f"{src}: {r.type} {r.attrs.get('name') or r.attrs.get('identifier')!r} is in "
                    f"the Terraform state but not in AWS ({project.config.region}): nothing adopted"
                )
            adopted[address] = Resource(r.type, r.name, dict(found.attrs), r.depends_on)
        if seed.security_group_id and adopted["aws_security_group.db"].attrs["id"] != seed.security_group_id:
            raise AirflowInfraError(
                f"{src}: security group {seed.security_group_name!r} is "
                f"{adopted['aws_security_group.db'].attrs['id']} in AWS, not {seed.security_group_id}"
            )
        db = desired.get("postgres_database.main")
        if db is not None and seed.database == db.attrs["name"]:
            # Unreadable until RDS manages the master password (the first apply turns it on):
            # recorded as Terraform made it, so that plan updates it and never creates it again.
            adopted[db.address] = Resource(
                db.type,
                db.name,
                {"name": seed.database, "owner": seed.instance.get("username"), "connect": [], "public_access": True},
                db.depends_on,
            )
        backend = project.backend()
        with transaction(backend, "import-terraform", timeout=lock_timeout) as txn:
            if txn.state.resources:
                raise AirflowInfraError(
                    f"the state at {backend.location} already holds resources; "
                    "import-terraform starts a project's state"
                )
            project_dir.mkdir(parents=True, exist_ok=True)
            config_path.write_text(text)
            try:
                txn.commit(lambda s: functools.reduce(State.with_resource, adopted.values(), project.claim(s)))
            except BaseException:
                config_path.unlink()
                raise
    finally:
        target.close()
    warnings = []
    rds = project.config.aws.rds
    if not rds.allowed_security_groups and not rds.allowed_cidrs:
        warnings.append(
            "nothing will be allowed to reach PostgreSQL: name the Airflow workers in [aws.rds] "
            "allowed_security_groups (or --allow-security-group) before you apply"
        )
    return TerraformImport(name, config_path, sorted(adopted), seed.dropped_rules, warnings)
