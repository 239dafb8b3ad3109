"""The seed module's resources found in a Terraform state, and the airflow-infra.toml that adopts them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..names import NAME_RE
from .schema import _BucketAttributes, _GroupAttributes, _InstanceAttributes, _State, _validated
from .strictjson import _jpath, _parse, _read, _shown, printable

SEED = {
    "bucket": ("aws_s3_bucket", "airflow_workbucket"),
    "security_group": ("aws_security_group", "db_security_group"),
    "instance": ("aws_db_instance", "db_database"),
}
PORT = 5432


@dataclass(frozen=True)
class SeedInfrastructure:
    """What the seed module made, as its Terraform state describes it."""

    source: str
    region: str | None  # from the instance's ARN or the bucket; --region when neither says
    bucket: str
    bucket_region: str | None
    security_group_name: str
    security_group_id: str
    instance: dict[str, Any]
    allowed_security_groups: list[str] = field(default_factory=list)
    allowed_cidrs: list[str] = field(default_factory=list)  # on 5432, not /0
    dropped_rules: list[str] = field(default_factory=list)  # what the narrowed group no longer allows
    instance_at: str = ""  # the JSON path of the instance's attributes in the state, for messages

    @property
    def database(self) -> str | None:
        return self.instance.get("db_name") or self.instance.get("name") or None


# -- reading the JSON text: bounded, and refusing what JSON lets through but no state holds -----------


def _attributes(state: _State, role: str, src: str, module: str | None) -> tuple[dict[str, Any], str]:
    """The attributes of the seed's resource in role, and their JSON path."""
    rtype, rname = SEED[role]
    found = [
        (i, r)
        for i, r in enumerate(state.resources)
        if r.mode == "managed" and r.type == rtype and (module is None or r.module == module)
    ]
    named = [(i, r) for i, r in found if r.name == rname]
    pick = named or found
    where = f" in {printable(module)}" if module else ""
    if not pick:
        raise ConfigError(f"{src}: resources: no {rtype} resource{where} (the seed module's {rtype}.{rname})")
    if len(pick) > 1:
        mods = ", ".join(sorted(printable(r.module or "(root)") for _, r in pick))  # for_each keys: any text
        raise ConfigError(f"{src}: resources: several {rtype} resources ({mods}): name the module with --module")
    i, resource = pick[0]
    if len(resource.instances) != 1:
        raise ConfigError(
            f"{src}: resources[{i}].instances: {rtype}.{resource.name} has {len(resource.instances)} "
            "instances; import-terraform takes one (no count or for_each)"
        )
    at = f"resources[{i}].instances[0].attributes"
    attributes = resource.instances[0].attributes
    if attributes is None:
        raise ConfigError(f"{src}: {at}: missing; it must be an object of the resource's attributes")
    return attributes, at


def _region_of(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 4 and parts[3] else None


def read_seed_state(path: str | Path, *, module: str | None = None) -> SeedInfrastructure:
    """Parse and check the state file; a ConfigError of one line naming the file and the field on anything
    unexpected, before anything else is done."""
    src = printable(str(path))
    state = _validated(_State, _parse(_read(path, src), src), src)
    bucket_attrs, bucket_at = _attributes(state, "bucket", src, module)
    bucket = _validated(_BucketAttributes, bucket_attrs, src, bucket_at)
    sg_attrs, sg_at = _attributes(state, "security_group", src, module)
    sg = _validated(_GroupAttributes, sg_attrs, src, sg_at)
    db_attrs, db_at = _attributes(state, "instance", src, module)
    db = _validated(_InstanceAttributes, db_attrs, src, db_at)
    allowed_sgs, allowed_cidrs, dropped = set(), set(), []
    for rule in sg.ingress:
        ports = (rule.from_port or 0, rule.to_port or 0)
        on_pg = rule.protocol in ("tcp", "6") and ports[0] <= PORT <= ports[1]
        for cidr in [*rule.cidr_blocks, *rule.ipv6_cidr_blocks]:
            if on_pg and not cidr.endswith("/0"):
                allowed_cidrs.add(cidr)
            else:
                dropped.append(f"{rule.protocol} {ports[0]}-{ports[1]} from {cidr}")
        for group in rule.security_groups:
            if on_pg:
                allowed_sgs.add(group)
            else:
                dropped.append(f"{rule.protocol} {ports[0]}-{ports[1]} from {group}")
    return SeedInfrastructure(
        source=str(path),
        region=_region_of(db.arn) or bucket.region or None,
        bucket=bucket.bucket,
        bucket_region=bucket.region or None,
        security_group_name=sg.name,
        security_group_id=sg.id or "",
        instance=db.model_dump(),  # what was checked, and only that: the password never was
        allowed_security_groups=sorted(allowed_sgs),
        allowed_cidrs=sorted(allowed_cidrs),
        dropped_rules=dropped,
        instance_at=db_at,
    )


def _toml(value: Any) -> str:
    return json.dumps(value)  # strings, numbers, booleans and lists of strings: JSON is valid TOML here


def render_adoption_config(
    seed: SeedInfrastructure,
    *,
    name: str | None,
    environment: str,
    allow_security_groups: list[str],
    allow_cidrs: list[str],
    connect_through: str | None,
    region: str | None,
) -> tuple[str, str]:
    """(project name, airflow-infra.toml text) that describes what exists, hardened where that
    changes nothing that must be replaced: the first plan then holds only hardening changes."""
    db, src = seed.instance, printable(seed.source)
    if name is None and not seed.database:
        raise ConfigError(f"--name: {src} names no database on the instance: pass the project's name")
    source = "--name" if name else f"the instance's database {seed.database!r}"
    name = name or seed.database or ""
    if not re.fullmatch(NAME_RE, name):
        raise ConfigError(f"{source}: {name!r} is not a valid project name (must match {NAME_RE}); pass --name")
    major = str(db.get("engine_version") or "").split(".")[0]
    if not re.fullmatch(r"\d{2}", major):
        raise ConfigError(
            f"{src}: {_jpath(seed.instance_at, ['engine_version'])}: {_shown(db.get('engine_version'))}: "
            "airflow-infra manages PostgreSQL 10 and later; upgrade the instance first"
        )
    if not db.get("instance_class"):  # the reader lets it be absent (nothing else needs it); the config cannot
        raise ConfigError(
            f"{src}: {_jpath(seed.instance_at, ['instance_class'])}: missing; it must be an instance "
            "class such as db.t4g.micro"
        )
    region = region or seed.region
    if not region:
        raise ConfigError(f"--region: {src} says no region (the instance's ARN, the bucket): pass --region")
    groups = sorted(set(seed.allowed_security_groups) | set(allow_security_groups))
    cidrs = sorted(set(seed.allowed_cidrs) | set(allow_cidrs))
    lines = [
        # the file's name escaped: a newline in it would end the comment and start TOML of its own
        f"# written by `airflow-infra import-terraform {printable(Path(seed.source).name)}`: it describes what the seed's",
        "# Terraform made, hardened where nothing has to be replaced; review it, then `airflow-infra plan`.",
        "[project]",
        f"name = {_toml(name)}",
        f"environment = {_toml(environment)}",
        "",
        "[target]",
        'kind = "aws"',
        f"region = {_toml(region)}",
        "",
        "[database]",
    ]
    if seed.database and seed.database != name:
        lines.append(f"name = {_toml(seed.database)}")
    lines += [
        "schemas = []            # the seed's tables are in public; add schemas here as you need them",
        "",
        "[bucket]",
        f"name = {_toml(seed.bucket)}",
    ]
    if seed.bucket_region and seed.bucket_region != region:
        lines.append(f"region = {_toml(seed.bucket_region)}")
    lines += [
        "",
        "[airflow]               # the connection ids the seed's projects used",
        f"postgres_conn_id = {_toml(name + '_postgres')}",
        f"bucket_conn_id = {_toml(name + '-workbucket')}",
        "",
        "[aws.rds]",
        f"identifier = {_toml(db['identifier'])}",
        f"db_subnet_group = {_toml(db['db_subnet_group_name'])}   # the existing one, not managed here",
        f"security_group_name = {_toml(seed.security_group_name)}",
        f"instance_class = {_toml(db.get('instance_class'))}",
        f"engine_major = {_toml(major)}",
        f"allocated_storage = {_toml(db.get('allocated_storage') or 20)}",
        f"max_allocated_storage = {_toml(db.get('max_allocated_storage') or 0)}",
        f"backup_retention_days = {_toml(max(1, db.get('backup_retention_period') or 7))}",
        f"multi_az = {_toml(bool(db.get('multi_az')))}",
        # as the instance has it: Performance Insights depends on its class and engine version
        f"performance_insights = {_toml(bool(db.get('performance_insights_enabled')))}",
        "deletion_protection = true",
        "publicly_accessible = false",
        "# storage_encrypted = true (the default): an unencrypted instance is encrypted only by",
        "# `airflow-infra apply --encrypt-storage` (a snapshot-copy-restore; stop writers first)",
    ]
    if db.get("kms_key_id"):
        lines.append(f"kms_key_id = {_toml(db['kms_key_id'])}")
    lines += [f"allowed_security_groups = {_toml(groups)}   # the Airflow workers", f"allowed_cidrs = {_toml(cidrs)}"]
    if connect_through:
        lines.append(f"connect_through = {_toml(connect_through)}")
    return name, "\n".join(lines) + "\n"
