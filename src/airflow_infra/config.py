"""airflow-infra.toml: pydantic models, the override order, and load_config(). Above 450 lines: the
whole file's schema is one concept, read best in one place.

Overrides, lowest to highest precedence (later wins):
  1. airflow-infra.toml in the project directory
  2. environment variables AIRFLOW_INFRA_<SECTION>__<KEY> (e.g. AIRFLOW_INFRA_PROJECT__ENVIRONMENT=prod)
  3. --var-file FILE (a TOML file of the same shape), in the order given
  4. --var KEY=VALUE (KEY dotted, e.g. database.schemas=["raw"]), in the order given
A value is read as a TOML value when it parses as one, else as a plain string.
Validation happens once, on the merged result, so a bad override is reported like a bad file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .names import CONFIG_FILE, NAME_RE, check_name, reserved
from .plugins import SECRET_STORES, STATE_BACKENDS, TARGETS

# The allowed values come from the plugin registries (plugins.py); a type checker sees plain strings.
if TYPE_CHECKING:
    from typing import TypeAlias

    TargetKind: TypeAlias = str
    StateBackendName: TypeAlias = str
    SecretStoreName: TypeAlias = str
else:
    TargetKind = Literal[TARGETS.names]
    StateBackendName = Literal[STATE_BACKENDS.names]
    SecretStoreName = Literal[SECRET_STORES.names]

SCHEMA_RE = r"^[a-z_][a-z0-9_]{0,62}$"
ENV_PREFIX = "AIRFLOW_INFRA_"


def no_control_characters(value: Any) -> Any:
    """Every string that becomes a name, key or path: no control character (NUL, a newline, ...); a
    pydantic validator for every field of a section, here and in [platform]."""
    if isinstance(value, str) and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"{value!r} holds a control character")
    if isinstance(value, list):
        for v in value:
            no_control_characters(v)
    if isinstance(value, dict):
        for k, v in value.items():
            no_control_characters(k)
            no_control_characters(v)
    return value


class _Section(BaseModel):
    # strict: `port = true` is not 1, `"5432"` in TOML is not a number
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("*")
    @classmethod
    def _check_text(cls, value: Any) -> Any:
        return no_control_characters(value)


class ProjectConfig(_Section):
    name: str = Field(pattern=NAME_RE)
    environment: str = Field(default="dev", pattern=r"^[a-z][a-z0-9_-]{0,31}$")

    @field_validator("name")
    @classmethod
    def _check_reserved(cls, name: str) -> str:
        why = reserved(name)
        if why:
            raise ValueError(f"{name!r}: {why}")
        return name


class TargetConfig(_Section):
    # local: a directory + the managed local PostgreSQL; server: any S3-compatible store + an existing
    # PostgreSQL; aws: S3 + an RDS instance of the project's own
    kind: TargetKind = "local"
    region: str | None = None  # aws: required here or in AWS_REGION / AWS_DEFAULT_REGION
    # Where the local PostgreSQL binaries are; default: the system's, else the pgserver wheel's.
    pg_bindir: str | None = None


class DatabaseConfig(_Section):
    # the database's name; default: the project's name (roles are always <project>_owner/_etl/_reader)
    name: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    schemas: list[str] = Field(default_factory=lambda: ["raw", "staging", "analytics"])
    # server: the name of the environment variable holding the admin connection string (never the DSN itself)
    admin_dsn_env: str = Field(default="AIRFLOW_INFRA_ADMIN_DSN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # server: what Airflow workers use to reach it, when it differs from the admin DSN's host/port
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)

    @field_validator("schemas")
    @classmethod
    def _check_schemas(cls, schemas: list[str]) -> list[str]:
        seen: set[str] = set()
        for s in schemas:
            if not re.fullmatch(SCHEMA_RE, s):
                raise ValueError(f"schema name {s!r} must match {SCHEMA_RE}")
            if s.startswith("pg_") or s in ("information_schema", "public"):
                raise ValueError(f"schema name {s!r} is reserved (pg_*, information_schema, public)")
            if s in seen:
                raise ValueError(f"schema name {s!r} is listed twice")
            seen.add(s)
        return schemas


BUCKET_RE = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
SAFE_KEY_RE = r"^[A-Za-z0-9!_.*'()/-]*$"  # S3's characters safe in any key and URL


class BucketConfig(_Section):
    # local target: a directory; default AIRFLOW_INFRA_HOME/buckets/<name>
    path: str | None = None
    # server target: an S3 bucket; default "<name with - for _>-<environment>-workfiles"
    name: str | None = None
    region: str | None = None  # default: [target] region on aws, else us-east-1
    prefix: str = ""  # non-empty: the project lives under this prefix of a shared bucket
    endpoint_url: str | None = None  # default: the boto3 chain (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL)
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    sse: Literal["AES256", "aws:kms"] | None = (
        None  # default: aws:kms on the aws target outside dev (S3.17), else AES256
    )
    kms_key_id: str | None = None
    # deny every request not made over TLS (a bucket policy); false only for a store reached over plain http
    tls_only: bool = True
    noncurrent_days: int = Field(default=30, ge=1)
    tmp_expire_days: int | None = Field(default=None, ge=1)  # expire objects under tmp/ after N days
    backup: str | None = None  # where --force-delete-data copies objects first: s3://bucket/prefix or a directory
    # aws: the bucket server access logs go to (FSBP S3.9), one the organisation keeps, which lets
    # logging.s3.amazonaws.com write (a policy); the logs go under "<bucket>/"
    access_log_bucket: str | None = None

    @field_validator("name")
    @classmethod
    def _check_bucket_name(cls, name: str | None) -> str | None:
        if name is None:
            return name
        if not re.fullmatch(BUCKET_RE, name) or ".." in name or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
            raise ValueError(
                f"{name!r} is not a valid S3 bucket name: 3-63 characters of a-z, 0-9, '.' and '-', "
                "starting and ending with a letter or digit, not an IP address"
            )
        return name

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, prefix: str) -> str:
        if prefix.startswith("/") or ".." in prefix.split("/"):
            raise ValueError(f"prefix {prefix!r} must be relative, without '..'")
        if not re.fullmatch(SAFE_KEY_RE, prefix):
            raise ValueError(f"prefix {prefix!r}: only letters, digits and !-_.*'()/ (S3's safe characters)")
        return prefix.strip("/") + "/" if prefix.strip("/") else ""


class StateConfig(_Section):
    backend: StateBackendName = "local"
    # local: the state file, relative to the project directory
    path: str = ".airflow-infra/state.json"
    # postgres: the environment variable holding the DSN (never the DSN itself)
    dsn_env: str = Field(default="AIRFLOW_INFRA_STATE_DSN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # s3: credentials and endpoints only from boto3's chain
    bucket: str | None = None
    key: str | None = None  # default "<name>/<environment>/airflow-infra.json"
    region: str = "us-east-1"
    lock: Literal["s3", "dynamodb", "both"] = "s3"
    dynamodb_table: str = "terraform"
    lease_seconds: int = Field(default=300, ge=2, le=86400)

    @property
    def locks(self) -> str:
        """The locks taken: lock, but both where lock = "s3" and dynamodb_table is named on purpose
        (Terraform locks this bucket's keys there: never leave it out)."""
        return "both" if self.lock == "s3" and "dynamodb_table" in self.model_fields_set else self.lock

    @field_validator("key")
    @classmethod
    def _check_key(cls, key: str | None) -> str | None:
        if key is not None and not re.fullmatch(SAFE_KEY_RE, key):
            raise ValueError(f"key {key!r}: only letters, digits and !-_.*'()/ (S3's safe characters)")
        # names the S3 backend keeps beside a state: another state there would be overwritten by them
        if key is not None and (
            key.rsplit("/", 1)[-1] == ".airflow-infra-probe"
            or key.endswith((".lock", "-md5"))
            or ".states/" in key
            or ".kept/" in key
        ):
            raise ValueError(
                f"key {key!r} is a name the S3 backend keeps for itself (.airflow-infra-probe, "
                "<key>.lock, <key>-md5 in the lock table, <key>.states/, <key>.kept/): choose another"
            )
        return key


class AirflowConfig(_Section):
    # the seed's projects used "<project>_postgres" and "<project>-workbucket": set these to keep them
    postgres_conn_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    bucket_conn_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")


class RdsConfig(_Section):
    # default "<name>-<environment>"; set it to adopt an existing instance (import-terraform writes it)
    identifier: str | None = Field(default=None, pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,61}[a-zA-Z0-9]$")
    # an existing DB subnet group to use instead of one of our own made from subnet_ids
    db_subnet_group: str | None = None
    security_group_name: str | None = None  # default "<identifier>-postgres"
    instance_class: str = Field(default="db.t4g.micro", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")  # RDS checks the rest
    engine_major: str = Field(default="16", pattern=r"^\d{2}$")  # the major only: minor upgrades are AWS's
    allocated_storage: int = Field(default=20, ge=20)
    max_allocated_storage: int = Field(default=100, ge=0)  # 0: no storage autoscaling
    backup_retention_days: int = Field(default=7, ge=1, le=35)
    multi_az: bool | None = None  # default: true unless environment = "dev" (FSBP RDS.5)
    deletion_protection: bool | None = None  # default: true unless environment = "dev"
    publicly_accessible: bool = False
    storage_encrypted: bool = True
    kms_key_id: str | None = None
    subnet_ids: list[str] = Field(default_factory=list)
    allowed_security_groups: list[str] = Field(default_factory=list)  # the Airflow workers
    allowed_cidrs: list[str] = Field(default_factory=list)
    allow_public_cidr: bool = False  # 0.0.0.0/0 in allowed_cidrs only with this set
    connect_through: str | None = Field(default=None, pattern=r"^[^:\s]+:\d{1,5}$")  # host:port of a tunnel
    # the authorities RDS certificates are verified against (sslmode=verify-full): a file or a URL, fetched
    # once into the home; default AWS's global bundle (see rdsca.py). ca_bundle_sha256 pins its content
    ca_bundle: str | None = None
    ca_bundle_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    port: int = Field(default=5432, ge=1150, le=65535)  # FSBP RDS.23 asks for another than the engine's default
    auto_minor_version_upgrade: bool = True  # FSBP RDS.13
    # changes of class, storage and Multi-AZ now, or in the instance's next maintenance window. Default: now
    # for environment = "dev" only. Security settings, a major version upgrade and a new port always apply now
    apply_immediately: bool | None = None
    # enhanced monitoring every N seconds, through an IAM role of the instance's own (FSBP RDS.6); 0 turns it
    # off. Default: 60, or 0 for environment = "dev"
    monitoring_interval: Literal[0, 1, 5, 10, 15, 30, 60] | None = None
    # Performance Insights, 7 days (AWS's free retention), encrypted with kms_key_id or AWS's key for RDS.
    # Default: on unless environment = "dev"
    performance_insights: bool | None = None
    log_exports: list[Literal["postgresql", "upgrade"]] = Field(
        default=["postgresql", "upgrade"]
    )  # RDS.9; [] turns off
    # more settings of the parameter group, beside (or over) ours: rds.force_ssl = 1, password_encryption =
    # scram-sha-256, log_connections = 1, log_disconnections = 1
    parameters: dict[str, str | int | bool] = Field(default_factory=dict)

    @field_validator("identifier")
    @classmethod
    def _check_identifier(cls, identifier: str | None) -> str | None:
        if identifier and "--" in identifier:
            raise ValueError(f"{identifier!r}: RDS identifiers cannot hold two hyphens in a row")
        return identifier

    @field_validator("parameters")
    @classmethod
    def _check_parameters(cls, parameters: dict[str, str | int | bool]) -> dict[str, str | int | bool]:
        for k in parameters:
            if not re.fullmatch(r"[a-z][a-z0-9_.]*", k):
                raise ValueError(f"{k!r} is not a PostgreSQL parameter name (lower case, digits, '_' and '.')")
        return parameters

    @field_validator("allowed_cidrs")
    @classmethod
    def _check_cidrs(cls, cidrs: list[str]) -> list[str]:
        import ipaddress

        for c in cidrs:
            try:
                ipaddress.ip_network(c)
            except ValueError:
                raise ValueError(f"{c!r} is not a CIDR like 10.0.0.0/16") from None
        return cidrs

    @model_validator(mode="after")
    def _public_only_on_purpose(self):
        import ipaddress

        if any(ipaddress.ip_network(c).prefixlen == 0 for c in self.allowed_cidrs) and not self.allow_public_cidr:
            raise ValueError(
                "a /0 CIDR opens PostgreSQL to the whole internet: set allow_public_cidr = true to mean it"
            )
        return self


class IamConfig(_Section):
    # the Airflow workers' role: the project's bucket policy is attached to it; otherwise it is only an output
    attach_to_role: str | None = None


class AwsConfig(_Section):
    rds: RdsConfig = RdsConfig()
    iam: IamConfig = IamConfig()


class SecretsConfig(_Section):
    # file: AIRFLOW_INFRA_HOME/secrets.json (one machine); state: encrypted inside the state (teams);
    # aws-secrets-manager: a secret per role
    store: SecretStoreName | None = None  # default: aws-secrets-manager on aws, else file
    passphrase_env: str = Field(default="AIRFLOW_INFRA_PASSPHRASE", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # state: wrap the state's data key with this AWS KMS key instead of deriving a key from a passphrase
    kms_key_id: str | None = None
    region: str = "us-east-1"
    prefix: str = "airflow-infra"  # aws-secrets-manager: secrets are <prefix>/<name>/<environment>/<ref>
    max_age_days: int = Field(default=90, ge=0)  # doctor fails a role secret older than this (SecretsManager.4)


class Config(_Section):
    project: ProjectConfig
    target: TargetConfig = TargetConfig()
    database: DatabaseConfig = DatabaseConfig()
    bucket: BucketConfig = BucketConfig()
    state: StateConfig = StateConfig()
    secrets: SecretsConfig = SecretsConfig()
    airflow: AirflowConfig = AirflowConfig()
    aws: AwsConfig = AwsConfig()

    @property
    def database_name(self) -> str:
        return self.database.name or self.project.name

    @property
    def region(self) -> str | None:
        """The AWS region of the aws target: the config's, else boto3's environment variables."""
        return self.target.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")

    @property
    def bucket_region(self) -> str:
        return self.bucket.region or (self.region if self.target.kind == "aws" else None) or "us-east-1"

    @property
    def bucket_sse(self) -> str:
        """[bucket] sse, else KMS (AWS's own key unless kms_key_id names one) for an aws project outside
        dev, else SSE-S3: not every S3-compatible store has a KMS."""
        if self.bucket.sse:
            return self.bucket.sse
        return "aws:kms" if self.target.kind == "aws" and self.project.environment != "dev" else "AES256"

    @property
    def bucket_name(self) -> str:
        p = self.project
        return self.bucket.name or f"{p.name.replace('_', '-')}-{p.environment.replace('_', '-')}-workfiles"


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _set_dotted(data: dict, dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"{source}: {dotted!r} is not a dotted key like section.key")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _deep_merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def _read_toml(path: Path, *, missing: str | None = None) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(missing or f"{path}: not found (run `airflow-infra init` to write one)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _describe(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "(top level)"
    if err["type"] == "extra_forbidden":
        model: type[BaseModel] = Config
        for part in err["loc"][:-1]:
            ann = model.model_fields[str(part)].annotation
            model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else model
        allowed = ", ".join(model.model_fields)
        return f"{source}: unknown key {loc!r} (allowed here: {allowed})"
    if err["type"] == "missing":
        return f"{source}: missing required key {loc!r}"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "string_pattern_mismatch":
        msg = f"{err['input']!r} is not allowed: must match {err['ctx']['pattern']}"
    return f"{source}: {loc}: {msg}"


def load_config(
    project_dir: Path,
    *,
    vars: Sequence[str] = (),
    var_files: Sequence[str | Path] = (),
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, merge and validate the project's configuration. Raises ConfigError."""
    path = Path(project_dir) / CONFIG_FILE
    data = _read_toml(path)
    origins: dict[str, str] = {}  # dotted key -> what set it last, when not the file: errors name it
    environ = os.environ if environ is None else environ
    for key in sorted(environ):
        if key.startswith(ENV_PREFIX) and "__" in key:
            dotted = key[len(ENV_PREFIX) :].lower().replace("__", ".")
            _set_dotted(data, dotted, _parse_value(environ[key]), f"environment variable {key}")
            origins[dotted] = f"environment variable {key}"
    for vf in var_files:
        layer = _read_toml(Path(vf), missing=f"--var-file {vf}: not found")
        data = _deep_merge(data, layer)
        origins.update({k: f"--var-file {vf}" for k in _dotted_keys(layer)})
    for item in vars:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--var {item!r}: expected KEY=VALUE, e.g. project.environment=prod")
        _set_dotted(data, key.strip(), _parse_value(raw), f"--var {key.strip()}")
        origins[key.strip()] = f"--var {key.strip()}"
    rds = data.get("aws", {}).get("rds", {}) if isinstance(data.get("aws"), dict) else {}
    bundle = rds.get("ca_bundle") if isinstance(rds, dict) else None
    if isinstance(bundle, str) and bundle and "://" not in bundle and not Path(bundle).expanduser().is_absolute():
        # the project's file, wherever the command runs from (outputs and connections name it)
        rds["ca_bundle"] = str((Path(project_dir) / bundle).resolve())
    section = data.get("bucket")
    for key in ("path", "backup"):  # the project's directories, wherever the command runs from
        value = section.get(key) if isinstance(section, dict) else None
        if isinstance(section, dict) and isinstance(value, str) and value and not value.startswith("s3://"):
            expanded = Path(value).expanduser()
            section[key] = str(expanded if expanded.is_absolute() else Path(project_dir).resolve() / expanded)
    return validate_config(data, str(path), origins)


def validate_config(data: Mapping, source: str, origins: Mapping[str, str] | None = None) -> Config:
    """The merged settings as a Config; ConfigError naming the key on bad input and where it was set:
    source, or what origins says set it (an environment variable, --var, --var-file)."""

    def setter(loc: str) -> str:
        return (
            next(
                (
                    o
                    for k, o in sorted((origins or {}).items(), key=lambda kv: -len(kv[0]))
                    if loc == k or loc.startswith(k + ".")
                ),
                None,
            )
            or source
        )

    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        loc = ".".join(str(p) for p in exc.errors()[0]["loc"] if not isinstance(p, int))
        raise ConfigError(_describe(exc, setter(loc))) from None
    for section, keys in _UNUSED[config.target.kind].items():
        given = data.get(section)
        if not isinstance(given, Mapping):
            continue
        for key in sorted(given):
            if keys == "*" or key in keys:
                where = section if keys == "*" else f"{section}.{key}"
                raise ConfigError(
                    f"{setter(where)}: [{section}] {'' if keys == '*' else key + ' '}is not used by the "
                    f'{config.target.kind} target ([target] kind = "{config.target.kind}"): remove '
                    'it, or choose the target that uses it (kind = "server" or "aws")'
                )
    if config.target.kind == "local" and (config.bucket.backup or "").startswith("s3://"):
        raise ConfigError(
            f"{setter('bucket.backup')}: bucket.backup: the local target keeps its backups in a "
            f"directory, not in {config.bucket.backup!r}: name a directory"
        )
    return config


# Settings a target kind never reads: set, they would be silently ignored (a user believing the bucket
# encrypted, or under a prefix), so they are refused. "*": the whole section.
_UNUSED: dict[str, dict[str, frozenset[str] | str]] = {
    "local": {
        "bucket": frozenset(
            {
                "name",
                "region",
                "prefix",
                "endpoint_url",
                "addressing_style",
                "sse",
                "kms_key_id",
                "tls_only",
                "noncurrent_days",
                "tmp_expire_days",
                "access_log_bucket",
            }
        ),
        "database": frozenset({"admin_dsn_env", "host", "port"}),
        "aws": "*",
    },
    "server": {"bucket": frozenset({"path"})},
    "aws": {"bucket": frozenset({"path"})},
}


def _dotted_keys(table: Mapping, prefix: str = "") -> list[str]:
    out = []
    for k, v in table.items():
        out += _dotted_keys(v, f"{prefix}{k}.") if isinstance(v, Mapping) and v else [f"{prefix}{k}"]
    return out


def render_config(name: str, environment: str = "dev") -> str:
    """The airflow-infra.toml that `init` writes. It never holds a secret."""
    check_name(name)
    return f"""\
# airflow-infra configuration; reference: README.md#configuration
[project]
name = "{name}"
environment = "{environment}"

[target]
kind = "local"            # the embedded default: a directory as bucket, a PostgreSQL run by airflow-infra

[database]
schemas = ["raw", "staging", "analytics"]

[bucket]                  # local: a directory under AIRFLOW_INFRA_HOME unless `path` is given

[state]
backend = "local"         # .airflow-infra/state.json in this directory
"""
