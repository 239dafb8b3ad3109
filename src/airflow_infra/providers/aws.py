"""AWS resources of the aws target: the database's security group, DB subnet group, parameter group
and the RDS instance, each with safe defaults read back on refresh (drift on what matters for
security: public accessibility, encryption, deletion protection, security-group rules).

Every one is tagged ManagedBy/Project/Environment: the tags are the marker that tells ours from
someone else's.
"""

from __future__ import annotations

import secrets
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..aws_clients import AwsError, NotFound, aws, translated
from ..errors import ForeignResource, ProviderError
from ..ownership import Owner, Verdict, judge
from ..resources import Observed, Resource
from .base import Provider, read_back

PORT = 5432


def _tags(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Key": k, "Value": v} for k, v in sorted(d.items())]


def _refuse_foreign(r: Resource, found: Observed | None) -> None:
    if found is not None and found.foreign:
        raise ForeignResource(
            f"{r.address}: {r.attrs.get('name') or r.attrs.get('identifier')!r} exists, {found.whose}: "
            "it is never taken over silently"
        )


class _Aws:
    """The clients, and whose what we make is: its tags are the marker (ownership.py)."""

    def __init__(self, client: Callable[[str], Any], owner: Owner):
        self._client = client
        self.owner = owner
        self.tags = owner.tags()

    def judge(self, tags: list[dict[str, Any]] | None, prior: Observed | None) -> Verdict:
        return judge(
            self.owner, Owner.from_tags({t["Key"]: t["Value"] for t in tags or []}), recorded=prior is not None
        )

    def __getattr__(self, service: str) -> Any:
        return self._client(service)


class SecurityGroupProvider(Provider):
    """5432 open only to the named security groups and CIDRs, and no egress rule at all (PostgreSQL
    answers connections; it opens none): a rule added by hand either way is drift."""

    type = "aws_security_group"
    force_new = frozenset({"name", "vpc_id"})
    notes = {
        "tagged": "adds the tags ManagedBy, Project, Environment, Lineage",
        "ingress": "only 5432, only from those named",
        "egress": "none: the database opens no connections (answers to those it accepts still flow)",
    }

    def __init__(self, aws: _Aws):
        self.aws = aws

    def _find(self, r: Resource) -> dict[str, Any] | None:
        groups = self.aws.ec2.describe_security_groups(
            Filters=[
                {"Name": "group-name", "Values": [r.attrs["name"]]},
                {"Name": "vpc-id", "Values": [r.attrs["vpc_id"]]},
            ]
        )
        found: dict[str, Any] | None = (groups["SecurityGroups"] or [None])[0]
        return found

    @staticmethod
    def _is_ours(perm: dict[str, Any], port: int) -> bool:
        return perm.get("IpProtocol") == "tcp" and perm.get("FromPort") == port and perm.get("ToPort") == port

    @staticmethod
    def _peers(perm: dict[str, Any]) -> list[str]:
        """Whom a rule lets in (or out): CIDRs, IPv6 CIDRs, groups and prefix lists."""
        return (
            [x["CidrIp"] for x in perm.get("IpRanges", [])]
            + [x["CidrIpv6"] for x in perm.get("Ipv6Ranges", [])]
            + [x["GroupId"] for x in perm.get("UserIdGroupPairs", [])]
            + [x["PrefixListId"] for x in perm.get("PrefixListIds", [])]
        )

    @staticmethod
    def _ports(perm: dict[str, Any]) -> str:
        return "all" if perm.get("FromPort") in (None, -1) else f"{perm['FromPort']}-{perm.get('ToPort')}"

    @classmethod
    def _ingress(cls, group: dict[str, Any], port: int) -> dict[str, Any]:
        """The database port's CIDRs (IPv4 and IPv6) and groups; every other rule, as text, is an unexpected one."""
        cidrs, sgs, other = set(), set(), set()
        for perm in group.get("IpPermissions", []):
            if cls._is_ours(perm, port):
                cidrs |= {x["CidrIp"] for x in perm.get("IpRanges", [])} | {
                    x["CidrIpv6"] for x in perm.get("Ipv6Ranges", [])
                }
                sgs |= {x["GroupId"] for x in perm.get("UserIdGroupPairs", [])}
                other |= {f"tcp {port} from {x['PrefixListId']}" for x in perm.get("PrefixListIds", [])}
            else:
                other |= {f"{perm.get('IpProtocol')} {cls._ports(perm)} from {src}" for src in cls._peers(perm)}
        return {"cidrs": sorted(cidrs), "security_groups": sorted(sgs), "other_rules": sorted(other)}

    @classmethod
    def _egress(cls, group: dict[str, Any]) -> list[str]:
        return sorted(
            {
                f"{perm.get('IpProtocol')} {cls._ports(perm)} to {d}"
                for perm in group.get("IpPermissionsEgress", [])
                for d in cls._peers(perm)
            }
        )

    @staticmethod
    def _as_given(perms: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rules as EC2 described them, in the shape its revoke calls take back."""
        return [{k: v for k, v in perm.items() if v not in (None, [], "")} for perm in perms]

    @staticmethod
    def _ranges(cidrs: Iterable[str]) -> dict[str, Any]:
        return {
            "IpRanges": [{"CidrIp": c} for c in sorted(cidrs) if ":" not in c],
            "Ipv6Ranges": [{"CidrIpv6": c} for c in sorted(cidrs) if ":" in c],
        }

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        with translated(r.address, "read"):
            group = self._find(r)
        if group is None:
            return None
        v = self.aws.judge(group.get("Tags"), prior)
        return Observed(
            {
                "name": r.attrs["name"],
                "vpc_id": r.attrs["vpc_id"],
                "id": group["GroupId"],
                "ingress": self._ingress(group, r.attrs.get("port", PORT)),
                "egress": self._egress(group),
                "tagged": v.marked,
                **({"port": r.attrs["port"]} if "port" in r.attrs else {}),
            },
            foreign=not v.ours,
            whose=v.whose,
        )

    def mark(self, r: Resource) -> None:
        with translated(r.address, "import"):
            group = self._find(r)
            if group is not None:
                self.aws.ec2.create_tags(Resources=[group["GroupId"]], Tags=_tags(self.aws.tags))

    def _converge(
        self,
        r: Resource,
        group_id: str,
        current: dict[str, Any],
        egress: list[str],
        group: dict[str, Any] | None = None,
    ) -> None:
        """group: as described just before, if it was (else described here, once, when rules must go)."""
        want, port = r.attrs["ingress"], r.attrs.get("port", PORT)
        revoke_egress = bool(egress) and "egress" in r.attrs  # none is declared: each one there goes, as it is
        if (revoke_egress or current.get("other_rules")) and group is None:
            group = self.aws.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
        if revoke_egress and group is not None and group.get("IpPermissionsEgress"):
            self.aws.ec2.revoke_security_group_egress(
                GroupId=group_id, IpPermissions=self._as_given(group["IpPermissionsEgress"])
            )
        if current.get("other_rules") and group is not None:  # revoked as they are, whatever their shape
            unexpected = self._as_given(
                perm
                for perm in group.get("IpPermissions", [])
                if not self._is_ours(perm, port) or perm.get("PrefixListIds")
            )
            if unexpected:
                self.aws.ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=unexpected)
        # revoke what is there and not wanted, then authorize what is wanted and not there
        for change, have, lack in (
            (self.aws.ec2.revoke_security_group_ingress, current, want),
            (self.aws.ec2.authorize_security_group_ingress, want, current),
        ):
            cidrs = set(have["cidrs"]) - set(lack["cidrs"])
            groups = set(have["security_groups"]) - set(lack["security_groups"])
            if cidrs or groups:
                change(
                    GroupId=group_id,
                    IpPermissions=[
                        {
                            "IpProtocol": "tcp",
                            "FromPort": port,
                            "ToPort": port,
                            **self._ranges(cidrs),
                            "UserIdGroupPairs": [{"GroupId": g} for g in sorted(groups)],
                        }
                    ],
                )

    def create(self, r: Resource) -> Observed:
        _refuse_foreign(r, self.read(r, None))
        with translated(r.address, "create"):
            group = self._find(r)
            if group is None:
                gid = self.aws.ec2.create_security_group(
                    GroupName=r.attrs["name"],
                    VpcId=r.attrs["vpc_id"],
                    Description="airflow-infra: PostgreSQL",
                    TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(self.aws.tags)}],
                )["GroupId"]
                current: dict[str, list[str]] = {"cidrs": [], "security_groups": [], "other_rules": []}
                egress = ["-1 all to 0.0.0.0/0"]  # a new group allows all egress and no ingress
            else:
                gid, current, egress = (
                    group["GroupId"],
                    self._ingress(group, r.attrs.get("port", PORT)),
                    self._egress(group),
                )
            self._converge(r, gid, current, egress, group)
        return read_back(self, r)

    def update(self, r: Resource, prior: Observed) -> Observed:
        with translated(r.address, "update"):
            current, group = prior.attrs["ingress"], None
            if prior.attrs.get("port", PORT) != r.attrs.get("port", PORT):  # read for the old port: its rule is ours
                group = self.aws.ec2.describe_security_groups(GroupIds=[prior.attrs["id"]])["SecurityGroups"][0]
                current = self._ingress(group, r.attrs.get("port", PORT))  # now another's: revoked, the new one made
            self._converge(r, prior.attrs["id"], current, prior.attrs.get("egress", []), group)
            if not prior.attrs.get("tagged"):  # adopted (import-terraform): ours from now on
                self.aws.ec2.create_tags(Resources=[prior.attrs["id"]], Tags=_tags(self.aws.tags))
        return read_back(self, r)

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        with translated(r.address, "delete", ignore=(NotFound,)):
            self.aws.ec2.delete_security_group(GroupId=r.attrs["id"])

    def warnings(self, observed: Observed) -> list[str]:
        ingress, out = observed.attrs.get("ingress", {}), []
        if any(c.endswith("/0") for c in ingress.get("cidrs", [])):
            out.append(f"security group {observed.attrs['name']}: PostgreSQL is open to the whole internet (a /0 CIDR)")
        if any(rule.endswith("/0") for rule in ingress.get("other_rules", [])):
            out.append(f"security group {observed.attrs['name']}: other ports are open to the whole internet")
        return out


class _RdsGroup(Provider):
    """What a DB subnet group and a DB parameter group share: found by name, made when missing,
    deleted by name; no data in them."""

    LIST: str  # the describe call's result key
    ARN: str  # its ARN's key in a described group

    def __init__(self, aws: _Aws):
        self.aws = aws

    @abstractmethod
    def _describe(self, name: str) -> dict[str, Any]: ...

    @staticmethod
    @abstractmethod
    def _observe(group: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    def _create(self, r: Resource) -> None: ...

    @abstractmethod
    def _modify(self, r: Resource) -> None: ...

    @abstractmethod
    def _delete(self, name: str) -> None: ...

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        try:
            with aws(r.address, "read"):
                groups = self._describe(r.attrs["name"])[self.LIST]
        except NotFound:
            return None
        if not groups:  # moto lists none
            return None
        if prior is not None:  # recorded: ours (its tags are asked only of one not recorded yet)
            return Observed({"name": r.attrs["name"], **self._observe(groups[0])})
        with translated(r.address, "read"):
            arn = groups[0].get(self.ARN)
            tags = self.aws.rds.list_tags_for_resource(ResourceName=arn).get("TagList", []) if arn else []
        v = self.aws.judge(tags, None)
        return Observed({"name": r.attrs["name"], **self._observe(groups[0])}, foreign=not v.ours, whose=v.whose)

    def create(self, r: Resource) -> Observed:
        with translated(r.address, "create"):
            if self.read(r, None) is None:
                self._create(r)
            else:
                self._modify(r)
        return read_back(self, r)

    def update(self, r: Resource, prior: Observed) -> Observed:
        with translated(r.address, "update"):
            self._modify(r)
        return read_back(self, r)

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        with translated(r.address, "delete", ignore=(NotFound,)):
            self._delete(r.attrs["name"])


class SubnetGroupProvider(_RdsGroup):
    type = "aws_db_subnet_group"
    force_new = frozenset({"name"})
    LIST, ARN = "DBSubnetGroups", "DBSubnetGroupArn"

    def _describe(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.aws.rds.describe_db_subnet_groups(DBSubnetGroupName=name)
        return found

    @staticmethod
    def _observe(group: dict[str, Any]) -> dict[str, Any]:
        return {"subnet_ids": sorted(s["SubnetIdentifier"] for s in group["Subnets"])}

    def _create(self, r: Resource) -> None:
        self.aws.rds.create_db_subnet_group(
            DBSubnetGroupName=r.attrs["name"],
            SubnetIds=r.attrs["subnet_ids"],
            DBSubnetGroupDescription="airflow-infra",
            Tags=_tags(self.aws.tags),
        )

    def _modify(self, r: Resource) -> None:
        self.aws.rds.modify_db_subnet_group(DBSubnetGroupName=r.attrs["name"], SubnetIds=r.attrs["subnet_ids"])

    def _delete(self, name: str) -> None:
        self.aws.rds.delete_db_subnet_group(DBSubnetGroupName=name)


# What our parameter group always sets (FSBP: TLS enforced, SCRAM passwords, an audit trail of sessions);
# all four apply without a reboot. [aws.rds] parameters adds to them, or overrides them (plan then warns).
PARAMETERS = {
    "rds.force_ssl": "1",
    "password_encryption": "scram-sha-256",
    "log_connections": "1",
    "log_disconnections": "1",
}


def parameters(extra: Mapping[str, str | int | bool]) -> dict[str, str]:
    """Ours and the config's, as RDS writes values (true -> "1")."""

    def text(v: str | int | bool) -> str:
        return ("1" if v else "0") if isinstance(v, bool) else str(v)

    return dict(sorted({**PARAMETERS, **{k: text(v) for k, v in extra.items()}}.items()))


class ParameterGroupProvider(_RdsGroup):
    """A parameter group of our own, so settings can be changed without touching the default one;
    its family follows the major version (a major upgrade makes a new one). Each parameter we set is
    read back (drift: one changed by hand) and set again; others set by hand are left alone."""

    type = "aws_db_parameter_group"
    force_new = frozenset({"name", "family"})
    LIST, ARN = "DBParameterGroups", "DBParameterGroupArn"
    notes = {
        "parameters": "ours apply at once; others at the instance's next reboot (airflow-infra reboots nothing); "
        "one taken out of [aws.rds.parameters] keeps its value in AWS until reset there"
    }

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        found = super().read(r, prior)
        if found is None or "parameters" not in r.attrs:  # a state from before parameters were ours
            return found
        with translated(r.address, "read"):
            pages = self.aws.rds.get_paginator("describe_db_parameters").paginate(
                DBParameterGroupName=r.attrs["name"], Source="user"
            )
            current = {p["ParameterName"]: p.get("ParameterValue") for page in pages for p in page["Parameters"]}
        return Observed(
            {**found.attrs, "parameters": {k: current.get(k) for k in sorted(r.attrs["parameters"])}},
            foreign=found.foreign,
            whose=found.whose,
        )

    def warnings(self, observed: Observed) -> list[str]:
        values, name = observed.attrs.get("parameters") or {}, observed.attrs["name"]
        if not values:
            return []
        out = []
        if values.get("rds.force_ssl") != "1":
            out.append(f"parameter group {name}: rds.force_ssl is not 1: connections may go unencrypted")
        if values.get("password_encryption") != "scram-sha-256":
            out.append(f"parameter group {name}: password_encryption is not scram-sha-256")
        if "0" in (values.get("log_connections"), values.get("log_disconnections")):
            out.append(f"parameter group {name}: sessions are not logged (log_connections, log_disconnections)")
        return out

    def _describe(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.aws.rds.describe_db_parameter_groups(DBParameterGroupName=name)
        return found

    @staticmethod
    def _observe(group: dict[str, Any]) -> dict[str, Any]:
        return {"family": group["DBParameterGroupFamily"]}

    def _create(self, r: Resource) -> None:
        self.aws.rds.create_db_parameter_group(
            DBParameterGroupName=r.attrs["name"],
            DBParameterGroupFamily=r.attrs["family"],
            Description="airflow-infra",
            Tags=_tags(self.aws.tags),
        )
        self._modify(r)

    def _modify(self, r: Resource) -> None:
        ours = [
            {
                "ParameterName": k,
                "ParameterValue": v,
                "ApplyMethod": "immediate" if k in PARAMETERS else "pending-reboot",
            }
            for k, v in sorted(r.attrs.get("parameters", {}).items())
        ]
        for i in range(0, len(ours), 20):  # RDS takes 20 at a time
            self.aws.rds.modify_db_parameter_group(DBParameterGroupName=r.attrs["name"], Parameters=ours[i : i + 20])

    def _delete(self, name: str) -> None:
        self.aws.rds.delete_db_parameter_group(DBParameterGroupName=name)


WINDOW_NOTE = (
    "; in the next maintenance window unless [aws.rds] apply_immediately = true (the default only "
    'for environment "dev")'
)


class DbInstanceProvider(Provider):
    """The RDS PostgreSQL instance: private, encrypted, master password managed by RDS in Secrets
    Manager, deletion protection, backups, tags copied to snapshots, and a unique final snapshot.

    Failure contract: create and update wait for `available`; a wait cut short (Ctrl-C, a crash)
    leaves the instance on its way, and the next apply finds it and waits again. Encrypting an
    existing instance (a snapshot-copy-restore) runs only with encrypt_storage; the unencrypted
    instance is kept under a new name, never deleted.
    """

    type = "aws_db_instance"
    force_new = frozenset({"identifier", "engine", "db_subnet_group"})
    MUTABLE = {  # attr -> modify_db_instance argument
        "instance_class": "DBInstanceClass",
        "allocated_storage": "AllocatedStorage",
        "max_allocated_storage": "MaxAllocatedStorage",
        "publicly_accessible": "PubliclyAccessible",
        "deletion_protection": "DeletionProtection",
        "backup_retention_days": "BackupRetentionPeriod",
        "multi_az": "MultiAZ",
        "copy_tags_to_snapshot": "CopyTagsToSnapshot",
        "parameter_group": "DBParameterGroupName",
        "engine_major": "EngineVersion",
        "master_password_managed": "ManageMasterUserPassword",
        "auto_minor_version_upgrade": "AutoMinorVersionUpgrade",
        "monitoring_interval": "MonitoringInterval",
        "monitoring_role_arn": "MonitoringRoleArn",
        "port": "DBPortNumber",
        "performance_insights": "EnablePerformanceInsights",
    }
    # what RDS does with downtime: with apply_immediately off, left for the maintenance window
    # Not a major version upgrade (its parameter group moves with it and the old group goes after) nor a
    # port (RDS restarts for it whatever ApplyImmediately says): those are made now, as the plan says.
    WINDOW = ("DBInstanceClass", "AllocatedStorage", "MultiAZ")
    PENDING = {
        "DBInstanceClass": "instance_class",
        "AllocatedStorage": "allocated_storage",
        "MultiAZ": "multi_az",
    }  # how describe_db_instances names them while they wait
    FAILED = {
        "failed",
        "incompatible-parameters",
        "incompatible-restore",
        "incompatible-network",
        "storage-full",
        "inaccessible-encryption-credentials",
        "restore-error",
    }  # instances' and snapshots' dead ends

    def __init__(
        self,
        aws: _Aws,
        *,
        encrypt_storage: bool = False,
        skip_final_snapshot: bool = False,
        on_progress: Callable[[str], None] | None = None,
        poll_seconds: float = 15.0,
    ):
        self.aws = aws
        self.encrypt_storage = encrypt_storage
        self.skip_final_snapshot = skip_final_snapshot
        self._progress = on_progress or (lambda message: None)
        self._poll_seconds = poll_seconds
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop waiting (Ctrl-C): the step fails at once, and the next apply finds the instance and waits again."""
        self._cancelled.set()

    @property
    def notes(self) -> Mapping[str, str]:
        encrypt = (
            "encrypted now by a snapshot-copy-restore (--encrypt-storage): stop writers first; the unencrypted "
            "instance is kept, renamed"
            if self.encrypt_storage
            else "an existing instance is encrypted only by a snapshot-copy-restore: not done without "
            "`apply --encrypt-storage`"
        )
        return {
            "storage_encrypted": encrypt,
            "kms_key_id": encrypt,
            "master_password_managed": "RDS makes a new master password in Secrets Manager; the old one stops working",
            "engine_major": "a major version upgrade: minutes of downtime, now (then the old parameter group goes)",
            "instance_class": "minutes of downtime" + WINDOW_NOTE,
            "allocated_storage": "slower I/O for a while" + WINDOW_NOTE,
            "multi_az": "slower I/O while the standby is made" + WINDOW_NOTE,
            "port": "a restart now (RDS restarts for it whatever apply_immediately says); clients must use the "
            "new port",
            "parameter_group": "settings apply at the next reboot",
            "other_security_groups": "detached: only the project's security group reaches the instance",
            "tagged": "adds the tags ManagedBy, Project, Environment, Lineage",
        }

    def describe(self, identifier: str) -> dict[str, Any] | None:
        try:
            with aws(f"RDS instance {identifier}", "describe"):
                found: dict[str, Any] = self.aws.rds.describe_db_instances(DBInstanceIdentifier=identifier)[
                    "DBInstances"
                ][0]
            return found
        except NotFound:
            return None

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        with translated(r.address, "read"):
            db = self.describe(r.attrs["identifier"])
        if db is None:
            return None
        version = db.get("EngineVersion", "")
        v = self.aws.judge(db.get("TagList"), prior)
        # what waits for the maintenance window counts as done (planning it again would change nothing)
        pending = {self.PENDING[k]: v for k, v in (db.get("PendingModifiedValues") or {}).items() if k in self.PENDING}
        attached = sorted(g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", []))
        group = r.attrs.get("security_group_id")  # the engine's value of the Ref; None: the group does not exist
        other = [g for g in attached if g != group]
        attrs = {
            "identifier": r.attrs["identifier"],
            "engine": db["Engine"],
            "engine_major": version.split(".")[0],
            "instance_class": db["DBInstanceClass"],
            "allocated_storage": db["AllocatedStorage"],
            # autoscaling is off when the ceiling is absent or not above the storage (how RDS turns it off)
            "max_allocated_storage": (db.get("MaxAllocatedStorage") or 0)
            if (db.get("MaxAllocatedStorage") or 0) > db["AllocatedStorage"]
            else 0,
            "storage_encrypted": db.get("StorageEncrypted", False),
            # as recorded when the storage was encrypted (AWS answers with the key's ARN, the config may name an alias)
            "kms_key_id": (prior.attrs.get("kms_key_id") if prior else r.attrs.get("kms_key_id")),
            "publicly_accessible": db.get("PubliclyAccessible", False),
            "deletion_protection": db.get("DeletionProtection", False),
            "backup_retention_days": db.get("BackupRetentionPeriod"),
            "multi_az": db.get("MultiAZ", False),
            "copy_tags_to_snapshot": db.get("CopyTagsToSnapshot", False),
            "db_subnet_group": (db.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
            "security_groups": attached,
            "other_security_groups": other,
            "security_group_id": group if group in attached else None,
            "parameter_group": next((g["DBParameterGroupName"] for g in db.get("DBParameterGroups", [])), None),
            "master_password_managed": bool(db.get("MasterUserSecret")),
            "tagged": v.marked,
            "auto_minor_version_upgrade": db.get("AutoMinorVersionUpgrade", True),
            "monitoring_interval": db.get("MonitoringInterval") or 0,
            # RDS always answers it; moto (the tests' RDS) never does: then what we asked for
            "performance_insights": db.get("PerformanceInsightsEnabled", r.attrs.get("performance_insights", False)),
            "monitoring_role_arn": db.get("MonitoringRoleArn") if db.get("MonitoringInterval") else None,
            "log_exports": sorted(db.get("EnabledCloudwatchLogsExports") or []),
            # recorded, never compared: AWS's minor upgrades are not changes
            "engine_version": version,
            "endpoint": (db.get("Endpoint") or {}).get("Address"),
            "port": (db.get("Endpoint") or {}).get("Port"),
            "master_username": db.get("MasterUsername"),
            "master_secret_arn": (db.get("MasterUserSecret") or {}).get("SecretArn"),
            "arn": db.get("DBInstanceArn"),
            "apply_immediately": r.attrs.get("apply_immediately", True),  # how we change it, not what it is
        }
        attrs.update(pending)
        attrs["pending"] = sorted(pending)  # recorded, never compared
        return Observed(attrs, foreign=not v.ours, whose=v.whose)

    def mark(self, r: Resource) -> None:
        with translated(r.address, "import"):
            db = self.describe(r.attrs["identifier"])
            if db is not None:
                self.aws.rds.add_tags_to_resource(ResourceName=db["DBInstanceArn"], Tags=_tags(self.aws.tags))

    # -- waiting, with progress ------------------------------------------------------------------
    def _poll(self, what: str, status: Callable[[], str], until: str) -> None:
        """Poll status() until it says `until`, telling on_progress when it changes (and each minute)."""
        started, last, told = time.monotonic(), None, 0.0
        while (now := status()) != until:
            elapsed = time.monotonic() - started
            # "gone" while waiting for one to appear: a rename or a create not visible yet, for a while
            if now in self.FAILED or (now == "gone" and elapsed > 300):
                raise ProviderError(f"{what} is {now}, not {until}")
            if now != last or elapsed - told >= 60:
                self._progress(f"{what}: {now} ({int(elapsed)}s; waiting for {until})")
                last, told = now, elapsed
            if self._cancelled.wait(self._poll_seconds):
                raise ProviderError(f"{what}: the wait was interrupted; the next apply carries on from here")

    def _wait(self, identifier: str, *, until: str = "available") -> None:
        """Until the instance is `until` ("gone": deleted)."""

        def status() -> str:
            db = self.describe(identifier)
            return "gone" if db is None else db["DBInstanceStatus"]

        self._poll(f"RDS instance {identifier}", status, until)

    def _until_role_usable(self, address: str, step: str, call: Callable[[], Any], tries: int = 12) -> Any:
        """call, again while RDS does not yet see a monitoring role just made (IAM takes seconds to
        propagate): InvalidParameterCombination naming ENHANCED_MONITORING."""
        for attempt in range(tries):
            try:
                with aws(address, step):
                    return call()
            except AwsError as exc:
                if (
                    exc.code != "InvalidParameterCombination"
                    or "MONITORING" not in str(exc).upper()
                    or (attempt == tries - 1)
                ):
                    raise
                self._progress("RDS does not see the monitoring role yet (IAM propagates it); trying again")
                if self._cancelled.wait(min(5.0, self._poll_seconds)):
                    raise
        return None

    def _wait_snapshot(self, name: str) -> None:
        self._poll(
            f"RDS snapshot {name}",
            lambda: self.aws.rds.describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"][0]["Status"],
            "available",
        )

    # -- lifecycle -------------------------------------------------------------------------------
    def create(self, r: Resource) -> Observed:
        a = r.attrs
        _refuse_foreign(r, self.read(r, None))
        with translated(r.address, "create"):
            if self.describe(a["identifier"]) is None:
                kwargs = dict(
                    DBInstanceIdentifier=a["identifier"],
                    Engine="postgres",
                    EngineVersion=a["engine_major"],
                    DBInstanceClass=a["instance_class"],
                    AllocatedStorage=a["allocated_storage"],
                    StorageEncrypted=a["storage_encrypted"],
                    PubliclyAccessible=a["publicly_accessible"],
                    DeletionProtection=a["deletion_protection"],
                    BackupRetentionPeriod=a["backup_retention_days"],
                    MultiAZ=a["multi_az"],
                    CopyTagsToSnapshot=a["copy_tags_to_snapshot"],
                    DBSubnetGroupName=a["db_subnet_group"],
                    VpcSecurityGroupIds=[a["security_group_id"]],
                    DBParameterGroupName=a["parameter_group"],
                    MasterUsername="airflow_infra_admin",
                    ManageMasterUserPassword=True,
                    Tags=_tags(self.aws.tags),
                    AutoMinorVersionUpgrade=a.get("auto_minor_version_upgrade", True),
                    EnableCloudwatchLogsExports=a.get("log_exports", []),
                    Port=a.get("port", PORT),
                    **_monitoring(a),
                    **_insights(a),
                )
                if a["max_allocated_storage"]:
                    kwargs["MaxAllocatedStorage"] = a["max_allocated_storage"]
                if a.get("kms_key_id"):
                    kwargs["KmsKeyId"] = a["kms_key_id"]
                self._until_role_usable(r.address, "create", lambda: self.aws.rds.create_db_instance(**kwargs))
            self._wait(a["identifier"])  # an interrupted wait: the next apply finds the instance and waits again
        return read_back(self, r)

    def check_change(self, r: Resource, prior: Observed) -> None:
        """At plan time: what RDS cannot do is refused before anything is planned."""
        a, p = r.attrs, prior.attrs
        if int(a["engine_major"]) < int(p["engine_major"]):
            raise ProviderError(
                f"[aws.rds] engine_major: {a['engine_major']} is older than the instance's "
                f'{p["engine_major"]}; RDS cannot downgrade (set engine_major = "{p["engine_major"]}")'
            )
        if p["storage_encrypted"] and not a["storage_encrypted"]:
            raise ProviderError(
                "[aws.rds] storage_encrypted: the instance is encrypted and cannot be decrypted "
                "(set storage_encrypted = true)"
            )

    def check_delete(self, prior: Observed) -> None:
        if prior.attrs.get("deletion_protection"):
            raise ProviderError(
                f"aws_db_instance.main: RDS instance {prior.attrs.get('identifier')} has deletion "
                "protection on: set [aws.rds] deletion_protection = false, apply, then destroy; "
                "nothing was deleted"
            )

    def update(self, r: Resource, prior: Observed) -> Observed:
        a, p = r.attrs, prior.attrs
        self.check_change(r, prior)
        changes = {
            arg: a[k] for k, arg in self.MUTABLE.items() if p.get(k, a.get(k)) != a.get(k) and a.get(k) is not None
        }
        if "EngineVersion" in changes:
            changes["AllowMajorVersionUpgrade"] = True
        if "EnablePerformanceInsights" in changes:
            changes.update(_insights(a))
        if changes.get("MaxAllocatedStorage") == 0:
            changes["MaxAllocatedStorage"] = a["allocated_storage"]  # RDS's way to turn autoscaling off
        if changes.get("ManageMasterUserPassword") is False:
            del changes["ManageMasterUserPassword"]  # never hand the password back to a file
        if sorted(p.get("security_groups", [])) != [a["security_group_id"]]:
            changes["VpcSecurityGroupIds"] = [a["security_group_id"]]
        want, have = set(a.get("log_exports", [])), set(p.get("log_exports", []))
        if want != have:
            changes["CloudwatchLogsExportConfiguration"] = {
                "EnableLogTypes": sorted(want - have),
                "DisableLogTypes": sorted(have - want),
            }
        with translated(r.address, "update"):
            restore = a["storage_encrypted"] and (
                not p["storage_encrypted"] or a.get("kms_key_id") != p.get("kms_key_id")
            )
            if restore and self.encrypt_storage:  # a new key, too, takes an encrypted copy
                self._encrypt_by_restore(r)
            later = (
                {}
                if a.get("apply_immediately", True)
                else {arg: changes.pop(arg) for arg in self.WINDOW if arg in changes}
            )
            if later:  # no wait: the instance stays available until its window
                self.aws.rds.modify_db_instance(DBInstanceIdentifier=a["identifier"], ApplyImmediately=False, **later)
            if changes:
                self._until_role_usable(
                    r.address,
                    "update",
                    lambda: self.aws.rds.modify_db_instance(
                        DBInstanceIdentifier=a["identifier"], ApplyImmediately=True, **changes
                    ),
                )
                self._wait(a["identifier"])
            if not p.get("tagged"):  # adopted (import-terraform): ours from now on
                self.aws.rds.add_tags_to_resource(ResourceName=p["arn"], Tags=_tags(self.aws.tags))
        return read_back(self, r, None if restore and self.encrypt_storage else prior)

    def _encrypt_by_restore(self, r: Resource) -> None:
        """Snapshot, copy the snapshot encrypted, restore it, swap the names. Writes made after the
        snapshot are not in the new instance: the plan note says to stop writers first."""
        a, rds = r.attrs, self.aws.rds
        ident, stamp = a["identifier"], datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        plain, encrypted, fresh = f"{ident}-plain-{stamp}", f"{ident}-encrypted-{stamp}", f"{ident}-new-{stamp}"
        kept = f"{ident}-unencrypted-{stamp}"
        rds.create_db_snapshot(DBInstanceIdentifier=ident, DBSnapshotIdentifier=plain, Tags=_tags(self.aws.tags))
        self._wait_snapshot(plain)
        rds.copy_db_snapshot(
            SourceDBSnapshotIdentifier=plain,
            TargetDBSnapshotIdentifier=encrypted,
            KmsKeyId=a.get("kms_key_id") or "alias/aws/rds",
            Tags=_tags(self.aws.tags),
        )
        self._wait_snapshot(encrypted)
        rds.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=fresh,
            DBSnapshotIdentifier=encrypted,
            DBInstanceClass=a["instance_class"],
            DBSubnetGroupName=a["db_subnet_group"],
            VpcSecurityGroupIds=[a["security_group_id"]],
            MultiAZ=a["multi_az"],
            PubliclyAccessible=a["publicly_accessible"],
            DeletionProtection=a["deletion_protection"],
            Port=a.get("port", PORT),
            CopyTagsToSnapshot=True,
            DBParameterGroupName=a["parameter_group"],
            ManageMasterUserPassword=True,
            Tags=_tags(self.aws.tags),
            AutoMinorVersionUpgrade=a.get("auto_minor_version_upgrade", True),
            EnableCloudwatchLogsExports=a.get("log_exports", []),
        )
        self._wait(fresh)
        if _monitoring(a):  # a restore takes no monitoring settings: given to the restored instance after
            rds.modify_db_instance(DBInstanceIdentifier=fresh, ApplyImmediately=True, **_monitoring(a))
            self._wait(fresh)
        rds.modify_db_instance(DBInstanceIdentifier=ident, NewDBInstanceIdentifier=kept, ApplyImmediately=True)
        self._wait(kept)
        rds.modify_db_instance(DBInstanceIdentifier=fresh, NewDBInstanceIdentifier=ident, ApplyImmediately=True)
        self._wait(ident)
        self._progress(
            f"RDS instance {ident} is now encrypted; the unencrypted one is kept as {kept} "
            "(not managed by airflow-infra): delete it once you have checked the new one"
        )

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        db = self.describe(r.attrs["identifier"])
        if db is None:
            return
        if db.get("DeletionProtection"):
            raise ProviderError(
                f"{r.address}: deletion protection is on: set [aws.rds] deletion_protection = false, "
                "apply, then destroy"
            )
        final = f"final-{r.attrs['identifier']}-{secrets.token_hex(4)}"
        snapshot = (
            {"SkipFinalSnapshot": True}
            if self.skip_final_snapshot
            else {"SkipFinalSnapshot": False, "FinalDBSnapshotIdentifier": final}
        )
        with translated(r.address, "delete"):
            self.aws.rds.delete_db_instance(DBInstanceIdentifier=r.attrs["identifier"], **snapshot)
            self._wait(r.attrs["identifier"], until="gone")  # its subnet and security groups are free only then
        if not self.skip_final_snapshot:
            self._progress(f"RDS instance {r.attrs['identifier']}: final snapshot {final}")

    def warnings(self, observed: Observed) -> list[str]:
        out = []
        ident = observed.attrs["identifier"]
        if observed.attrs.get("publicly_accessible"):
            out.append(f"RDS instance {ident} is publicly accessible")
        if not observed.attrs.get("storage_encrypted"):
            out.append(
                f"RDS instance {ident} is not encrypted at rest; encrypting it takes a snapshot-copy-restore, "
                "which `apply --encrypt-storage` does (stop writers first)"
            )
        if observed.attrs.get("pending"):
            out.append(
                f"RDS instance {ident}: {', '.join(observed.attrs['pending'])} changed, waiting for the "
                "maintenance window ([aws.rds] apply_immediately = true and apply to make it now)"
            )
        if self.aws.owner.environment != "dev":  # what a dev instance may do without
            if "postgresql" not in observed.attrs.get("log_exports", ["postgresql"]):
                out.append(
                    f"RDS instance {ident} exports no PostgreSQL log to CloudWatch ([aws.rds] log_exports): "
                    "no audit trail"
                )
            if (observed.attrs.get("backup_retention_days") or 7) < 7:
                out.append(f"RDS instance {ident} keeps backups fewer than 7 days ([aws.rds] backup_retention_days)")
            if observed.attrs.get("auto_minor_version_upgrade") is False:
                out.append(
                    f"RDS instance {ident} takes no minor version upgrades ([aws.rds] auto_minor_version_upgrade)"
                )
            if observed.attrs.get("monitoring_interval") == 0:
                out.append(f"RDS instance {ident} has no enhanced monitoring ([aws.rds] monitoring_interval)")
            if observed.attrs.get("performance_insights") is False:
                out.append(f"RDS instance {ident} has no Performance Insights ([aws.rds] performance_insights)")
            if observed.attrs.get("multi_az") is False:
                out.append(f"RDS instance {ident} runs in one availability zone ([aws.rds] multi_az)")
        return out

    def holds_data(self, r: Resource, observed: Observed) -> str | None:
        if self.skip_final_snapshot:
            return "a PostgreSQL instance (no final snapshot: --skip-final-snapshot)"
        return "a PostgreSQL instance (a final snapshot is taken when it is deleted)"

    def backup(self, r: Resource, observed: Observed, dest: Path) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        snap = f"backup-{r.attrs['identifier']}-{stamp}"
        with translated(r.address, "backup"):
            self.aws.rds.create_db_snapshot(
                DBInstanceIdentifier=r.attrs["identifier"], DBSnapshotIdentifier=snap, Tags=_tags(self.aws.tags)
            )
        return f"rds snapshot {snap}"


MONITORING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


def _monitoring(a: Mapping[str, Any]) -> dict[str, Any]:
    """Enhanced monitoring's arguments to a create or restore: none when it is off."""
    if not a.get("monitoring_interval"):
        return {}
    return {"MonitoringInterval": a["monitoring_interval"], "MonitoringRoleArn": a["monitoring_role_arn"]}


def _insights(a: Mapping[str, Any]) -> dict[str, Any]:
    """Performance Insights' arguments: on, 7 days (free), under the instance's own key when it names one."""
    if not a.get("performance_insights"):
        return {"EnablePerformanceInsights": False}
    return {
        "EnablePerformanceInsights": True,
        "PerformanceInsightsRetentionPeriod": 7,
        **({"PerformanceInsightsKMSKeyId": a["kms_key_id"]} if a.get("kms_key_id") else {}),
    }


class IamRoleProvider(Provider):
    """A role an AWS service assumes (RDS enhanced monitoring's), with AWS-managed policies attached;
    tagged, so ours is told from someone else's. It holds no data."""

    type = "aws_iam_role"
    force_new = frozenset({"name"})

    def __init__(self, aws: _Aws):
        self.aws = aws

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        try:
            with aws(r.address, "read"):
                role = self.aws.iam.get_role(RoleName=r.attrs["name"])["Role"]
                attached = self.aws.iam.list_attached_role_policies(RoleName=r.attrs["name"])["AttachedPolicies"]
        except NotFound:
            return None
        trust = _document(role.get("AssumeRolePolicyDocument") or {})
        # every principal it trusts, whatever its kind: another account added beside the service is drift
        services = sorted(
            {
                p
                for st in trust.get("Statement", [])
                if st.get("Effect") == "Allow"
                for kind in ("Service", "AWS", "Federated")
                for p in _list((st.get("Principal") or {}).get(kind))
            }
        )
        tags = role.get("Tags") or self.aws.iam.list_role_tags(RoleName=r.attrs["name"]).get("Tags", [])
        v = self.aws.judge(tags, prior)
        return Observed(
            {
                "name": r.attrs["name"],
                "arn": role["Arn"],
                "service": ",".join(services),
                "policies": sorted(p["PolicyArn"] for p in attached),
                "tagged": v.marked,
            },
            foreign=not v.ours,
            whose=v.whose,
        )

    def _trust(self, r: Resource) -> str:
        import json

        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": r.attrs["service"]}, "Action": "sts:AssumeRole"}
                ],
            }
        )

    def _converge(self, r: Resource, current: Mapping[str, Any]) -> None:
        if current.get("service") != r.attrs["service"]:
            self.aws.iam.update_assume_role_policy(RoleName=r.attrs["name"], PolicyDocument=self._trust(r))
        for arn in sorted(set(r.attrs["policies"]) - set(current.get("policies", []))):
            self.aws.iam.attach_role_policy(RoleName=r.attrs["name"], PolicyArn=arn)
        for arn in sorted(set(current.get("policies", [])) - set(r.attrs["policies"])):
            self.aws.iam.detach_role_policy(RoleName=r.attrs["name"], PolicyArn=arn)

    def create(self, r: Resource) -> Observed:
        found = self.read(r, None)
        _refuse_foreign(r, found)
        with translated(r.address, "create"):
            if found is None:
                self.aws.iam.create_role(
                    RoleName=r.attrs["name"],
                    AssumeRolePolicyDocument=self._trust(r),
                    Description="airflow-infra: RDS enhanced monitoring",
                    Tags=_tags(self.aws.tags),
                )
                self._converge(r, {"service": r.attrs["service"]})
            else:
                self._converge(r, found.attrs)
        return read_back(self, r, Observed(dict(r.attrs)))

    def update(self, r: Resource, prior: Observed) -> Observed:
        with translated(r.address, "update"):
            self._converge(r, prior.attrs)
            if not prior.attrs.get("tagged"):
                self.aws.iam.tag_role(RoleName=r.attrs["name"], Tags=_tags(self.aws.tags))
        return read_back(self, r, prior)

    def mark(self, r: Resource) -> None:
        with translated(r.address, "import"):
            self.aws.iam.tag_role(RoleName=r.attrs["name"], Tags=_tags(self.aws.tags))

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        with translated(r.address, "delete", ignore=(NotFound,)):
            for p in self.aws.iam.list_attached_role_policies(RoleName=r.attrs["name"])["AttachedPolicies"]:
                self.aws.iam.detach_role_policy(RoleName=r.attrs["name"], PolicyArn=p["PolicyArn"])
            for name in self.aws.iam.list_role_policies(RoleName=r.attrs["name"])["PolicyNames"]:  # added by hand
                self.aws.iam.delete_role_policy(RoleName=r.attrs["name"], PolicyName=name)
            self.aws.iam.delete_role(RoleName=r.attrs["name"])


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


_BROAD_MANAGED = {"AdministratorAccess", "AmazonS3FullAccess", "PowerUserAccess", "AmazonS3ReadOnlyAccess"}


def _document(doc: Any) -> Any:
    """A policy document as IAM gives it: a dict, or (some APIs, moto) URL-encoded JSON text."""
    if isinstance(doc, str):
        import json
        from urllib.parse import unquote

        return json.loads(unquote(doc))
    return doc


def _grants_all_of_s3(doc: dict[str, Any]) -> bool:
    """Whether an Allow reaches S3 on every bucket: any S3 action (IAM's names ignore case) or a
    NotAction, on every resource or every bucket."""
    statements = doc.get("Statement", [])
    for st in statements if isinstance(statements, list) else [statements]:
        if st.get("Effect") != "Allow":
            continue
        actions = [a.lower() for a in _list(st.get("Action"))]
        resources = _list(st.get("Resource"))
        s3 = "NotAction" in st or any(a == "*" or a.startswith("s3:") for a in actions)
        if s3 and any(r in ("*", "arn:aws:s3:::*", "arn:aws:s3:::*/*") for r in resources):
            return True
    return False


def workers_policy(bucket: str, prefix: str) -> dict[str, Any]:
    """Exactly the project's bucket (or prefix) for the Airflow workers."""
    arn = f"arn:aws:s3:::{bucket}"
    listing: dict[str, Any] = {
        "Sid": "ListProjectObjects",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": arn,
    }
    if prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            listing,
            {
                "Sid": "ReadWriteProjectObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{arn}/{prefix}*",
            },
        ],
    }


class IamPolicyProvider(Provider):
    """A managed policy for the workers; attached to [aws.iam] attach_to_role when given."""

    type = "aws_iam_policy"
    force_new = frozenset({"name"})

    def __init__(self, aws: _Aws):
        self.aws = aws
        self._account: str | None = None

    def _arn(self, name: str) -> str:
        if self._account is None:
            self._account = self.aws.sts.get_caller_identity()["Account"]
        return f"arn:aws:iam::{self._account}:policy/{name}"

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        try:
            with aws(r.address, "read"):
                # the ARN recorded when it was made; else worked out (STS: inside the boundary too)
                arn = (
                    prior.attrs.get("arn") if prior and prior.attrs.get("name") == r.attrs["name"] else None
                ) or self._arn(r.attrs["name"])
                policy = self.aws.iam.get_policy(PolicyArn=arn)["Policy"]
                doc = self.aws.iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])[
                    "PolicyVersion"
                ]["Document"]
                roles = sorted(
                    x["RoleName"] for x in self.aws.iam.list_entities_for_policy(PolicyArn=arn)["PolicyRoles"]
                )
        except NotFound:
            return None
        doc = _document(doc)
        with translated(r.address, "read"):
            broader = [g for role in r.attrs.get("attached_to", []) for g in self._broader(role)]
        # recorded, never compared: the role is not ours to change, only to warn about
        return Observed(
            {"name": r.attrs["name"], "document": doc, "attached_to": roles, "arn": arn, "broader_grants": broader}
        )

    def _broader(self, role: str) -> list[str]:
        """What else lets the role at S3 beyond the project's bucket: an inline policy allowing s3:* or *
        on every resource, or an AWS-managed policy that does."""
        try:
            with aws(f"IAM role {role}", "read"):
                return self._broader_grants(role)
        except NotFound:  # the role is gone: nothing it grants
            return []

    def _broader_grants(self, role: str) -> list[str]:
        out = []
        for name in self.aws.iam.list_role_policies(RoleName=role)["PolicyNames"]:
            doc = _document(self.aws.iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
            if _grants_all_of_s3(doc):
                out.append(f"role {role}: its inline policy {name} allows S3 on every bucket")
        for attached in self.aws.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            arn = attached["PolicyArn"]
            if attached["PolicyName"] in _BROAD_MANAGED:
                broad = True
            elif ":aws:policy/" in arn or attached["PolicyName"].startswith("airflow-infra-"):
                broad = False  # another AWS-managed one, or a project's own
            else:  # the organisation's own: read it
                version = self.aws.iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                broad = _grants_all_of_s3(
                    _document(
                        self.aws.iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
                    )
                )
            if broad:
                out.append(f"role {role}: the attached policy {attached['PolicyName']} allows S3 on every bucket")
        return out

    def warnings(self, observed: Observed) -> list[str]:
        return [
            f"{g} (the role is not airflow-infra's: narrow it where it is managed)"
            for g in observed.attrs.get("broader_grants", [])
        ]

    def _attach(self, r: Resource, arn: str, current: list[str]) -> None:
        for role in sorted(set(r.attrs["attached_to"]) - set(current)):
            self.aws.iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        for role in sorted(set(current) - set(r.attrs["attached_to"])):
            self.aws.iam.detach_role_policy(RoleName=role, PolicyArn=arn)

    def create(self, r: Resource) -> Observed:
        import json

        with translated(r.address, "create"):
            existing = self.read(r, None)
            if existing is None:
                arn = self.aws.iam.create_policy(
                    PolicyName=r.attrs["name"],
                    PolicyDocument=json.dumps(r.attrs["document"]),
                    Description="airflow-infra: the project's bucket, for the Airflow workers",
                    Tags=_tags(self.aws.tags),
                )["Policy"]["Arn"]
                self._attach(r, arn, [])
            else:
                return self.update(r, existing)
        return read_back(self, r)

    def update(self, r: Resource, prior: Observed) -> Observed:
        import json

        arn = prior.attrs["arn"]
        with translated(r.address, "update"):
            if prior.attrs.get("document") != r.attrs["document"]:
                versions = self.aws.iam.list_policy_versions(PolicyArn=arn)["Versions"]
                old = sorted((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
                if len(versions) >= 5:  # IAM keeps five versions
                    self.aws.iam.delete_policy_version(PolicyArn=arn, VersionId=old[0]["VersionId"])
                self.aws.iam.create_policy_version(
                    PolicyArn=arn, PolicyDocument=json.dumps(r.attrs["document"]), SetAsDefault=True
                )
            self._attach(r, arn, prior.attrs.get("attached_to", []))
        return read_back(self, r)

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        with translated(r.address, "delete", ignore=(NotFound,)):
            arn = self._arn(r.attrs["name"])
            for role in self.aws.iam.list_entities_for_policy(PolicyArn=arn)["PolicyRoles"]:
                self.aws.iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=arn)
            for v in self.aws.iam.list_policy_versions(PolicyArn=arn)["Versions"]:
                if not v["IsDefaultVersion"]:
                    self.aws.iam.delete_policy_version(PolicyArn=arn, VersionId=v["VersionId"])
            self.aws.iam.delete_policy(PolicyArn=arn)
