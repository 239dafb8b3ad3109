"""The aws target: an S3 bucket and the project's database on an RDS instance of its own
(security group, DB subnet group, parameter group), reached for the in-database setup at its
endpoint or through `connect_through` (an SSH tunnel or SSM port forward), as its master user,
whose password RDS keeps in Secrets Manager and we read at apply time, never store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..aws.rdsca import bundle_path, ca_bundle
from ..config import Config
from ..errors import ConfigError, NotYetReachable, Unreadable
from ..outputs import shaped
from ..ownership import project_tags
from ..providers.base import Provider
from ..resources import Ref, Resource
from ..state.base import State
from .base import Target
from .bucket import S3Workfiles
from .database import DsnServer


def _chosen(value: Any, default: Any) -> Any:
    """The config's value, or the environment's default where it names none."""
    return default if value is None else value


class AwsTarget(Target):
    OPTIONS = frozenset({"encrypt_storage", "skip_final_snapshot", "on_progress"})

    def __init__(
        self,
        config: Config,
        home: Path,
        *,
        encrypt_storage: bool = False,
        skip_final_snapshot: bool = False,
        on_progress: Callable[[str], None] | None = None,
        lock_timeout: float = 0.0,
    ):
        super().__init__(config, home, lock_timeout=lock_timeout)
        rds, p = config.aws.rds, config.project
        if not config.region:
            raise ConfigError(
                '[target] region: required for kind = "aws" (or set AWS_REGION), e.g. region = "us-east-1"'
            )
        if not rds.subnet_ids and not rds.db_subnet_group:
            raise ConfigError(
                "[aws.rds] subnet_ids: name the private subnets (two availability zones at least), "
                "or an existing DB subnet group in db_subnet_group"
            )
        if skip_final_snapshot and p.environment != "dev":
            raise ConfigError(
                f'--skip-final-snapshot: only for environment = "dev" (this is {p.environment!r}); '
                "the final snapshot is what makes a destroy undoable"
            )
        self.identifier = rds.identifier or f"{p.name}-{p.environment}".replace("_", "-")
        self.tags = project_tags(p.name, p.environment)
        self.options: dict[str, Any] = {
            "encrypt_storage": encrypt_storage,
            "skip_final_snapshot": skip_final_snapshot,
            "on_progress": on_progress,
        }
        self._clients: dict[str, Any] = {}
        self._vpc: str | None = None
        self._master_dsn: str | None = None  # in memory only, for this command
        self._ca: Path | None = None
        self._dsn_lock = threading.Lock()
        self.bucket = S3Workfiles(config)
        through = rds.connect_through
        self.server = DsnServer(
            self._dsn,
            name=f"the master secret of the RDS instance {self.identifier}",
            label=f"the RDS instance {self.identifier}" + (f" through {through}" if through else ""),
            pg_bindir=config.target.pg_bindir,
            stale=lambda: self._master_dsn is not None,
            forget=self._forget_dsn,
        )
        self.database = self.server.database(
            config,
            self.secrets,
            lock_timeout=lock_timeout,
            server_key=lambda: f"aws:{config.region}:{self.identifier}",
            depends_on=("aws_db_instance.main",),
        )

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from ..aws.clients import aws_client

            self._clients[service] = aws_client(service, region=self.config.region or "us-east-1")
        return self._clients[service]

    # -- the network the instance lives in -----------------------------------------------------
    def vpc_id(self) -> str:
        """The subnets' VPC; they must span two availability zones (RDS asks it of a subnet group)."""
        if self._vpc is None and self.config.aws.rds.db_subnet_group:
            self._vpc = self._existing_subnet_group()["VpcId"]
        if self._vpc is None:
            from ..aws.clients import AwsError, aws

            try:
                with aws("[aws.rds] subnet_ids", "lookup"):
                    subnets = self.client("ec2").describe_subnets(SubnetIds=self.config.aws.rds.subnet_ids)["Subnets"]
            except AwsError as exc:  # the config names them: its error
                raise ConfigError(str(exc)) from None
            if len({s["AvailabilityZone"] for s in subnets}) < 2:
                raise ConfigError(
                    "[aws.rds] subnet_ids: the subnets are all in one availability zone; RDS needs them in two at least"
                )
            vpcs = {s["VpcId"] for s in subnets}
            if len(vpcs) != 1:
                raise ConfigError(f"[aws.rds] subnet_ids: the subnets are in several VPCs ({', '.join(sorted(vpcs))})")
            self._vpc = vpcs.pop()
        return self._vpc

    def _existing_subnet_group(self) -> dict[str, Any]:
        from ..aws.clients import AwsError, NotFound, aws

        name = self.config.aws.rds.db_subnet_group
        try:
            with aws("[aws.rds] db_subnet_group", "lookup"):
                groups = self.client("rds").describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"]
        except NotFound:
            groups = []
        except AwsError as exc:  # the config names it: its error
            raise ConfigError(str(exc)) from None
        if not groups:
            raise ConfigError(f"[aws.rds] db_subnet_group: no DB subnet group {name!r} in {self.config.region}")
        found: dict[str, Any] = groups[0]
        return found

    # -- the admin connection: the instance's master user ---------------------------------------
    def _instance(self) -> dict[str, Any]:
        from ..aws.clients import NotFound, aws

        try:
            with aws(f"RDS instance {self.identifier}", "describe"):
                db: dict[str, Any] = self.client("rds").describe_db_instances(DBInstanceIdentifier=self.identifier)[
                    "DBInstances"
                ][0]
        except NotFound:
            raise NotYetReachable(f"the RDS instance {self.identifier} does not exist yet") from None
        if not db.get("Endpoint"):
            raise NotYetReachable(f"the RDS instance {self.identifier} is not available yet")
        if not db.get("MasterUserSecret"):  # adopted from Terraform: apply turns ManageMasterUserPassword on
            raise Unreadable(f"the RDS instance {self.identifier} has no master password in Secrets Manager yet")
        return db

    def _dsn(self) -> str:
        """The master user's DSN, read once per command (not once per admin session); read again
        when a connection fails, since the password may have changed meanwhile (RDS rotates it,
        and an apply may turn ManageMasterUserPassword on or restore the instance)."""
        with self._dsn_lock:
            if self._master_dsn is None:
                self._master_dsn = self._read_master_dsn()
            return self._master_dsn

    def _forget_dsn(self) -> None:
        with self._dsn_lock:
            self._master_dsn = None

    def _read_master_dsn(self) -> str:
        db = self._instance()
        secret = json.loads(
            self.client("secretsmanager").get_secret_value(SecretId=db["MasterUserSecret"]["SecretArn"])["SecretString"]
        )
        rds = self.config.aws.rds
        host, port, hostaddr = db["Endpoint"]["Address"], db["Endpoint"]["Port"], ""
        if rds.connect_through:  # through a tunnel, but the certificate is still checked against the endpoint's name
            through, port = rds.connect_through.rsplit(":", 1)
            hostaddr = f"&hostaddr={self._address_of(through)}"
        ca = self.ca_bundle()
        return (
            f"postgresql://{quote(secret['username'], safe='')}:{quote(secret['password'], safe='')}"
            f"@{host}:{port}/postgres?sslmode=verify-full&sslrootcert={quote(str(ca))}{hostaddr}"
        )

    def preflight(self) -> None:
        self.ca_bundle()

    def ca_bundle(self) -> Path:
        """Read (fetched the first time) and checked once per command, at plan: a bad bundle stops
        before anything is made."""
        if self._ca is None:
            rds = self.config.aws.rds
            self._ca = ca_bundle(rds.ca_bundle, rds.ca_bundle_sha256, self.home)
        return self._ca

    @staticmethod
    def _address_of(host: str) -> str:
        """libpq's hostaddr takes an address only: the tunnel's name resolved."""
        import socket

        try:
            return str(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0])
        except OSError as exc:
            raise ConfigError(f"[aws.rds] connect_through: cannot resolve {host!r} ({exc.strerror or exc})") from None

    # -- what the project wants ------------------------------------------------------------------
    def desired(self) -> list[Resource]:
        from ..providers.aws import MONITORING_POLICY, parameters, workers_policy

        c, rds = self.config, self.config.aws.rds
        ident = self.identifier
        hardened = c.project.environment != "dev"  # the defaults outside dev: safer and dearer
        # one address per major version: an upgrade makes the new group before the old one goes
        pg, pg_address = f"{ident}-pg{rds.engine_major}", f"aws_db_parameter_group.pg{rds.engine_major}"
        subnet_group = rds.db_subnet_group or ident
        infra = [
            Resource(
                "aws_security_group",
                "db",
                {
                    "name": rds.security_group_name or f"{ident}-postgres",
                    "vpc_id": self.vpc_id(),
                    "tagged": True,
                    "ingress": {
                        "cidrs": sorted(rds.allowed_cidrs),
                        "security_groups": sorted(rds.allowed_security_groups),
                        "other_rules": [],
                    },
                    "egress": [],
                    "port": rds.port,
                },
            ),
            Resource(
                "aws_db_parameter_group",
                pg_address.split(".")[1],
                {"name": pg, "family": f"postgres{rds.engine_major}", "parameters": parameters(rds.parameters)},
            ),
        ]
        if not rds.db_subnet_group:
            infra.append(Resource("aws_db_subnet_group", "main", {"name": ident, "subnet_ids": sorted(rds.subnet_ids)}))
        interval = _chosen(rds.monitoring_interval, 60 if hardened else 0)
        if interval:
            infra.append(
                Resource(
                    "aws_iam_role",
                    "monitoring",
                    {
                        "name": f"{ident}-rds-monitoring"[:64],
                        "service": "monitoring.rds.amazonaws.com",  # IAM's limit
                        "policies": [MONITORING_POLICY],
                        "tagged": True,
                    },
                )
            )
        infra += [
            Resource(
                "aws_db_instance",
                "main",
                {
                    "identifier": ident,
                    "engine": "postgres",
                    "engine_major": rds.engine_major,
                    "instance_class": rds.instance_class,
                    "allocated_storage": rds.allocated_storage,
                    "max_allocated_storage": rds.max_allocated_storage,
                    "storage_encrypted": rds.storage_encrypted,
                    "kms_key_id": rds.kms_key_id,
                    "publicly_accessible": rds.publicly_accessible,
                    "deletion_protection": _chosen(rds.deletion_protection, hardened),
                    "backup_retention_days": rds.backup_retention_days,
                    "multi_az": _chosen(rds.multi_az, hardened),
                    "copy_tags_to_snapshot": True,
                    "db_subnet_group": subnet_group,
                    "parameter_group": pg,
                    "master_password_managed": True,
                    "tagged": True,
                    "other_security_groups": [],
                    "auto_minor_version_upgrade": rds.auto_minor_version_upgrade,
                    "log_exports": sorted(set(rds.log_exports)),
                    "monitoring_interval": interval,
                    "port": rds.port,
                    "performance_insights": _chosen(rds.performance_insights, hardened),
                    "apply_immediately": _chosen(rds.apply_immediately, not hardened),
                    "monitoring_role_arn": Ref("aws_iam_role.monitoring", "arn") if interval else None,
                    "security_group_id": Ref("aws_security_group.db", "id"),
                },
                (
                    "aws_security_group.db",
                    pg_address,
                    *(() if rds.db_subnet_group else ("aws_db_subnet_group.main",)),
                    *(("aws_iam_role.monitoring",) if interval else ()),
                ),
            ),
            Resource(
                "aws_iam_policy",
                "workers",
                {
                    "name": f"airflow-infra-{ident}-workfiles",
                    "document": workers_policy(c.bucket_name, c.bucket.prefix),
                    "attached_to": [c.aws.iam.attach_to_role] if c.aws.iam.attach_to_role else [],
                },
            ),
        ]
        return [*self.bucket.resources(), *infra, *self.database.resources()]

    def providers(self, lineage: str) -> dict[str, Provider]:
        from ..providers.aws import (
            DbInstanceProvider,
            IamPolicyProvider,
            IamRoleProvider,
            ParameterGroupProvider,
            SecurityGroupProvider,
            SubnetGroupProvider,
            _Aws,
        )

        owner = self.owner(lineage)
        aws = _Aws(self.client, owner)
        ps = [
            *self.bucket.providers(owner),
            SecurityGroupProvider(aws),
            SubnetGroupProvider(aws),
            ParameterGroupProvider(aws),
            DbInstanceProvider(aws, **self.options),
            IamPolicyProvider(aws),
            IamRoleProvider(aws),
            *self.database.providers(owner),
        ]
        return {pr.type: pr for pr in ps}

    def bucket_client(self) -> Any:
        return self.bucket.client()

    def close(self) -> None:
        self.database.close()

    # -- what it gives ---------------------------------------------------------------------------
    def outputs(self, state: State, *, reveal: bool = True) -> dict[str, dict[str, Any]]:
        db = state.resources.get("aws_db_instance.main")
        if db is None:
            return {}
        out = self.database.outputs(
            state, host=str(db.attrs.get("endpoint") or ""), port=db.attrs.get("port"), reveal=reveal
        )
        # RDS speaks TLS: the generated connections insist on it and check the certificate's name
        ca = str(bundle_path(self.config.aws.rds.ca_bundle, self.home))
        if out.get("postgres_uri", (None,))[0]:
            out["postgres_uri"] = (out["postgres_uri"][0] + f"?sslmode=verify-full&sslrootcert={quote(ca)}", True)
        out["postgres_sslmode"] = ("verify-full", False)
        out["postgres_sslrootcert"] = (ca, False)
        out.update(self.bucket.outputs(state))
        out["rds_instance"] = (self.identifier, False)
        policy = state.resources.get("aws_iam_policy.workers")
        if policy is not None:
            out["worker_policy_arn"] = (policy.attrs.get("arn"), False)
            out["worker_policy_json"] = (policy.attrs["document"], False)
        return shaped(out)
