"""The RDS instance: safe defaults read back on refresh (public accessibility, encryption, deletion
protection, backups), a final snapshot before it goes, enhanced monitoring and Performance Insights.
Above 450 lines: one provider, whose create, update, restore and snapshot are one lifecycle."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...aws.clients import AwsError, NotFound, aws, translated
from ...errors import ProviderError
from ...resources import Observed, Resource
from ..base import Provider, read_back
from .common import PORT, _Aws, _refuse_foreign, _tags

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
