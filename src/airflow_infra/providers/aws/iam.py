"""IAM for the aws target: the role RDS enhanced monitoring assumes, and the workers' policy on the bucket."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...aws.clients import NotFound, aws, translated
from ...resources import Observed, Resource
from ..base import Provider, read_back
from .common import _Aws, _refuse_foreign, _tags


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
