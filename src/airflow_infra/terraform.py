"""Reading a Terraform state file (format version 4, Terraform 0.12 to 1.x) made by the seed's
Airflow-Infrastructure module, and the airflow-infra.toml that adopts what it describes.

Only what is needed to adopt is read; the seed's master password (sensitive, in the state file)
is never read at all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .names import NAME_RE

# the seed module's resources, by role: (type, name in the module)
SEED = {"bucket": ("aws_s3_bucket", "airflow_workbucket"),
        "security_group": ("aws_security_group", "db_security_group"),
        "instance": ("aws_db_instance", "db_database")}
PORT = 5432


@dataclass(frozen=True)
class SeedInfrastructure:
    """What the seed module made, as its Terraform state describes it."""

    source: str
    region: str | None          # from the instance's ARN or the bucket; --region when neither says
    bucket: str
    bucket_region: str | None
    security_group_name: str
    security_group_id: str
    instance: dict[str, Any]
    allowed_security_groups: list[str] = field(default_factory=list)
    allowed_cidrs: list[str] = field(default_factory=list)   # on 5432, not /0
    dropped_rules: list[str] = field(default_factory=list)    # what the narrowed group no longer allows

    @property
    def database(self) -> str | None:
        return self.instance.get("db_name") or self.instance.get("name") or None


def _attributes(resources: list[dict], role: str, path: str | Path, module: str | None) -> dict:
    rtype, rname = SEED[role]
    found = [r for r in resources if r.get("mode") == "managed" and r.get("type") == rtype
             and (module is None or r.get("module") == module)]
    named = [r for r in found if r.get("name") == rname]
    pick = named or found
    where = f" in {module}" if module else ""
    if not pick:
        raise ConfigError(f"{path}: no {rtype} resource{where} (the seed module's {rtype}.{rname})")
    if len(pick) > 1:
        mods = ", ".join(sorted(r.get("module", "(root)") for r in pick))
        raise ConfigError(f"{path}: several {rtype} resources ({mods}): name the module with --module")
    instances = pick[0].get("instances") or []
    if len(instances) != 1:
        raise ConfigError(f"{path}: {rtype}.{pick[0].get('name')} has {len(instances)} instances; "
                          "import-terraform takes one (no count or for_each)")
    return instances[0].get("attributes") or {}


def _region_of(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 4 and parts[3] else None


def _read(path: str | Path) -> str:
    """A state file's text: a local file, or s3://bucket/key where Terraform's S3 backend keeps it."""
    if not str(path).startswith("s3://"):
        return Path(path).read_text()
    import os

    from .aws_clients import aws_client, error_code, translate

    bucket, _, key = str(path)[5:].partition("/")
    try:
        body = aws_client("s3", region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1")).get_object(Bucket=bucket, Key=key)
        return body["Body"].read().decode()
    except Exception as exc:
        if error_code(exc) in ("NoSuchKey", "NoSuchBucket", "404"):
            raise FileNotFoundError(path) from None
        raise ConfigError(str(translate(str(path), "read", exc))) from None


def read_seed_state(path: str | Path, *, module: str | None = None) -> SeedInfrastructure:
    """Parse and check the state file; ConfigError naming the file on anything unexpected."""
    try:
        doc = json.loads(_read(path))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (`terraform state pull > terraform.tfstate` writes it)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a Terraform state file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("version") != 4:
        version = doc.get("version") if isinstance(doc, dict) else None
        raise ConfigError(f"{path}: state format version {version!r}; import-terraform reads version 4 "
                          "(Terraform 0.12 and later: `terraform state pull` with a current Terraform writes it)")
    resources = doc.get("resources") or []
    bucket = _attributes(resources, "bucket", path, module)
    sg = _attributes(resources, "security_group", path, module)
    db = _attributes(resources, "instance", path, module)
    if db.get("engine") != "postgres":
        raise ConfigError(f"{path}: aws_db_instance engine is {db.get('engine')!r}; airflow-infra manages postgres")
    for key, value in (("bucket", bucket.get("bucket")), ("identifier", db.get("identifier")),
                       ("db_subnet_group_name", db.get("db_subnet_group_name")), ("name", sg.get("name"))):
        if not value:
            raise ConfigError(f"{path}: a resource has no {key!r} attribute; is this the seed module's state?")
    allowed_sgs, allowed_cidrs, dropped = set(), set(), []
    for rule in sg.get("ingress") or []:
        ports = (rule.get("from_port") or 0, rule.get("to_port") or 0)
        on_pg = rule.get("protocol") in ("tcp", "6") and ports[0] <= PORT <= ports[1]
        for cidr in [*(rule.get("cidr_blocks") or []), *(rule.get("ipv6_cidr_blocks") or [])]:
            if on_pg and not cidr.endswith("/0"):
                allowed_cidrs.add(cidr)
            else:
                dropped.append(f"{rule.get('protocol')} {ports[0]}-{ports[1]} from {cidr}")
        for group in rule.get("security_groups") or []:
            if on_pg:
                allowed_sgs.add(group)
            else:
                dropped.append(f"{rule.get('protocol')} {ports[0]}-{ports[1]} from {group}")
    return SeedInfrastructure(
        source=str(path), region=_region_of(db.get("arn")) or bucket.get("region"), bucket=bucket["bucket"], bucket_region=bucket.get("region"),
        security_group_name=sg["name"], security_group_id=sg.get("id", ""),
        instance={k: v for k, v in db.items() if k != "password"},  # never kept, even in memory
        allowed_security_groups=sorted(allowed_sgs), allowed_cidrs=sorted(allowed_cidrs), dropped_rules=dropped)


def _toml(value: Any) -> str:
    return json.dumps(value)  # strings, numbers, booleans and lists of strings: JSON is valid TOML here


def render_adoption_config(seed: SeedInfrastructure, *, name: str | None, environment: str,
                           allow_security_groups: list[str], allow_cidrs: list[str],
                           connect_through: str | None, region: str | None) -> tuple[str, str]:
    """(project name, airflow-infra.toml text) that describes what exists, hardened where that
    changes nothing that must be replaced: the first plan then holds only hardening changes."""
    db = seed.instance
    if name is None and not seed.database:
        raise ConfigError(f"--name: {seed.source} names no database on the instance: pass the project's name")
    source = "--name" if name else f"the instance's database {seed.database!r}"
    name = name or seed.database or ""
    if not re.fullmatch(NAME_RE, name):
        raise ConfigError(f"{source}: {name!r} is not a valid project name (must match {NAME_RE}); pass --name")
    major = str(db.get("engine_version") or "").split(".")[0]
    if not re.fullmatch(r"\d{2}", major):
        raise ConfigError(f"{seed.source}: engine_version {db.get('engine_version')!r}: airflow-infra manages "
                          "PostgreSQL 10 and later; upgrade the instance first")
    region = region or seed.region
    if not region:
        raise ConfigError(f"--region: {seed.source} says no region (the instance's ARN, the bucket): pass --region")
    groups = sorted(set(seed.allowed_security_groups) | set(allow_security_groups))
    cidrs = sorted(set(seed.allowed_cidrs) | set(allow_cidrs))
    lines = [
        f"# written by `airflow-infra import-terraform {Path(seed.source).name}`: it describes what the seed's",
        "# Terraform made, hardened where nothing has to be replaced; review it, then `airflow-infra plan`.",
        "[project]", f"name = {_toml(name)}", f"environment = {_toml(environment)}", "",
        "[target]", 'kind = "aws"', f"region = {_toml(region)}", "",
        "[database]",
    ]
    if seed.database and seed.database != name:
        lines.append(f"name = {_toml(seed.database)}")
    lines += ["schemas = []            # the seed's tables are in public; add schemas here as you need them", "",
              "[bucket]", f"name = {_toml(seed.bucket)}"]
    if seed.bucket_region and seed.bucket_region != region:
        lines.append(f"region = {_toml(seed.bucket_region)}")
    lines += ["", "[airflow]               # the connection ids the seed's projects used",
              f"postgres_conn_id = {_toml(name + '_postgres')}", f"bucket_conn_id = {_toml(name + '-workbucket')}", "",
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
              "# `airflow-infra apply --encrypt-storage` (a snapshot-copy-restore; stop writers first)"]
    if db.get("kms_key_id"):
        lines.append(f"kms_key_id = {_toml(db['kms_key_id'])}")
    lines += [f"allowed_security_groups = {_toml(groups)}   # the Airflow workers",
              f"allowed_cidrs = {_toml(cidrs)}"]
    if connect_through:
        lines.append(f"connect_through = {_toml(connect_through)}")
    return name, "\n".join(lines) + "\n"
