"""The "aws-secrets-manager" store: one secret per role, named <prefix>/<ref> (ref: project/environment/role);
the state holds only the reference and the secret's ARN. Deleting a role schedules its secret's deletion with AWS's
recovery window rather than forcing it. Secrets are encrypted with [secrets] kms_key_id when given; a secret
scheduled for deletion, under another key, or with a resource policy open to everyone is drift (findings)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config

import json
import re
from typing import Any

from ..aws.clients import AwsError, Conflict, NotFound, aws, aws_client
from . import SecretStore, new_password, usable


class AwsSecretsManagerStore(SecretStore):
    @classmethod
    def from_config(cls, config: Config, home: Path) -> AwsSecretsManagerStore:
        from ..ownership import project_tags

        p, s = config.project, config.secrets
        return cls(
            region=(config.region or "us-east-1") if config.target.kind == "aws" else s.region,  # as the target
            prefix=f"{s.prefix.rstrip('/')}/",
            current=f"{p.name}/{p.environment}/",
            legacy_prefix=f"{s.prefix.rstrip('/')}/{p.name}/{p.environment}/",
            tags=project_tags(p.name, p.environment),
            kms_key_id=s.kms_key_id,
        )

    def __init__(
        self,
        *,
        region: str,
        prefix: str,
        tags: dict[str, str] | None = None,
        current: str = "",
        legacy_prefix: str | None = None,
        kms_key_id: str | None = None,
    ):
        """current: how this project's references start (project/environment/); a reference that does
        not (an older release's, e.g. aws/<instance>/<role>) is named under legacy_prefix, where that
        release kept it, so that apply can move it."""
        self.sm = aws_client("secretsmanager", region=region)
        self.prefix = prefix
        self.current, self.legacy_prefix = current, legacy_prefix
        self.tags = [{"Key": k, "Value": v} for k, v in sorted((tags or {"ManagedBy": "airflow-infra"}).items())]
        self._arns: dict[str, str] = {}  # ref -> ARN, from the calls that return it anyway
        self._values: dict[str, str | None] = {}  # ref -> value read by this run (None: there is none)
        self.region, self.kms_key_id = region, kms_key_id
        self._key_arn: str | None = None  # kms_key_id as the ARN Secrets Manager answers with

    def name(self, ref: str) -> str:
        prefix = self.prefix if ref.startswith(self.current) or self.legacy_prefix is None else self.legacy_prefix
        return prefix + re.sub(r"[^A-Za-z0-9/_+=.@-]", "-", ref)

    def prefetch(self, refs: list[str]) -> None:
        """One BatchGetSecretValue for every role's secret (a refresh needs each value); without the
        permission for it, each is read on its own later."""
        wanted = {self.name(ref): ref for ref in refs if ref not in self._values}
        if not wanted:
            return
        try:
            with aws("Secrets Manager", "batch read"):
                found = self.sm.batch_get_secret_value(SecretIdList=sorted(wanted))
        except AwsError:  # no permission for it (or no such call on this endpoint): each is read later
            return
        for v in found.get("SecretValues", []):
            if v.get("Name") in wanted:
                self._values[wanted[v["Name"]]], self._arns[wanted[v["Name"]]] = usable(v.get("SecretString")), v["ARN"]
        for e in found.get("Errors", []):  # missing, or scheduled for deletion: none to use
            if e.get("SecretId") in wanted and e.get("ErrorCode") in (
                "ResourceNotFoundException",
                "InvalidRequestException",
            ):
                self._values[wanted[e["SecretId"]]] = None

    def get(self, ref: str, *, restore: bool = False) -> str | None:
        """restore: a secret scheduled for deletion (its role was destroyed) comes back; always asked,
        never from what this run read before."""
        if ref in self._values and not restore:
            return self._values[ref]
        name = self.name(ref)
        try:
            with aws(f"Secrets Manager secret {name}", "read"):
                found = self.sm.get_secret_value(SecretId=name)
        except NotFound:
            self._values[ref] = None
            return None
        except Conflict as exc:
            if exc.code != "InvalidRequestException":
                raise
            if not restore:  # scheduled for deletion (its role was destroyed)
                return None
            with aws(f"Secrets Manager secret {name}", "restore"):
                self.sm.restore_secret(SecretId=name)
            self._values.pop(ref, None)
            return self.get(ref)
        self._arns[ref] = found["ARN"]
        self._values[ref] = usable(found.get("SecretString"))
        return self._values[ref]

    def get_or_create(self, ref: str) -> str:
        existing = self.get(ref, restore=True)  # a role made again gets its old secret back
        if existing is not None:
            return existing
        value = new_password()
        self.put(ref, value)  # made, or a new value where the secret holds none we can use (a blank one)
        return value

    def put(self, ref: str, value: str) -> None:
        """A new value: the old one stays as AWSPREVIOUS (Secrets Manager moves the stage)."""
        if self.get(ref, restore=True) is None:
            key = {"KmsKeyId": self.kms_key_id} if self.kms_key_id else {}
            try:
                with aws(f"Secrets Manager secret {self.name(ref)}", "create"):
                    made = self.sm.create_secret(Name=self.name(ref), SecretString=value, Tags=self.tags, **key)
                self._arns[ref], self._values[ref] = made["ARN"], value
                return
            except Conflict as exc:  # made meanwhile: written below, as an existing one is
                if exc.code != "ResourceExistsException":
                    raise
        with aws(f"Secrets Manager secret {self.name(ref)}", "write"):
            self._arns[ref] = self.sm.put_secret_value(SecretId=self.name(ref), SecretString=value)["ARN"]
        self._values[ref] = value

    def findings(self, ref: str) -> list[str]:
        name, out = self.name(ref), []
        try:
            with aws(f"Secrets Manager secret {name}", "read"):
                secret = self.sm.describe_secret(SecretId=name)
                policy = self.sm.get_resource_policy(SecretId=name).get("ResourcePolicy")
        except NotFound:
            return []  # no secret at all: the role's password says so (missing)
        if secret.get("DeletedDate"):
            out.append("scheduled for deletion")
        if self.kms_key_id and not self._same_key(secret.get("KmsKeyId")):
            out.append(f"encrypted with {secret.get('KmsKeyId') or 'the AWS-managed key'}, not [secrets] kms_key_id")
        if policy:  # ours carry none: who may read a role's password is said by IAM policies, not here
            out.append(
                "it has a resource policy"
                + (" that allows everyone (Principal *)" if _open_to_everyone(json.loads(policy)) else "")
            )
        return out

    def age_days(self, ref: str) -> float | None:
        from datetime import UTC, datetime

        try:  # the current value's own date: a description, tag or key change moves LastChangedDate, not it
            with aws(f"Secrets Manager secret {self.name(ref)}", "read"):
                versions = self.sm.list_secret_version_ids(SecretId=self.name(ref))["Versions"]
        except NotFound:
            return None
        current = [
            v["CreatedDate"] for v in versions if "AWSCURRENT" in v.get("VersionStages", []) and v.get("CreatedDate")
        ]
        return (datetime.now(UTC) - current[0]).total_seconds() / 86400 if current else None

    def _key(self, key: str) -> str:
        """A KMS key as its key ARN (an alias, alias ARN or key ID is looked up)."""
        if key.startswith("arn:") and ":key/" in key:
            return key
        return str(aws_client("kms", region=self.region).describe_key(KeyId=key)["KeyMetadata"]["Arn"])

    def _same_key(self, have: str | None) -> bool:
        if not have:
            return False
        if self._key_arn is None:
            self._key_arn = self._key(self.kms_key_id or "")
        return have == self.kms_key_id or self._key(have) == self._key_arn

    def repair(self, ref: str) -> None:
        name = self.name(ref)
        found = self.findings(ref)
        with aws(f"Secrets Manager secret {name}", "repair"):
            if "scheduled for deletion" in found:
                self.sm.restore_secret(SecretId=name)
            if any(f.startswith("encrypted with") for f in found):
                self.sm.update_secret(SecretId=name, KmsKeyId=self.kms_key_id)
            if any(f.startswith("it has a resource policy") for f in found):
                self.sm.delete_resource_policy(SecretId=name)  # ours carry none: access is the roles' IAM policies

    def locate(self, ref: str) -> str:
        if ref not in self._arns:
            with aws(f"Secrets Manager secret {self.name(ref)}", "describe"):
                self._arns[ref] = self.sm.describe_secret(SecretId=self.name(ref))["ARN"]
        return self._arns[ref]

    def delete(self, ref: str) -> None:
        self._values.pop(ref, None)
        try:
            with aws(f"Secrets Manager secret {self.name(ref)}", "delete"):
                self.sm.delete_secret(SecretId=self.name(ref), RecoveryWindowInDays=7)
        except NotFound:
            pass  # gone already
        except Conflict as exc:
            if exc.code != "InvalidRequestException":  # InvalidRequestException: scheduled for deletion already
                raise


def _open_to_everyone(policy: dict[str, Any]) -> bool:
    statements = policy.get("Statement", [])
    for st in statements if isinstance(statements, list) else [statements]:
        principal = st.get("Principal")
        aws = principal.get("AWS") if isinstance(principal, dict) else principal
        if st.get("Effect") == "Allow" and "*" in (aws if isinstance(aws, list) else [aws]):
            return True
    return False
