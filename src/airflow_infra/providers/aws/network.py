"""The database's security group: its ingress only from the workers' groups, read back on refresh."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...aws.clients import NotFound, translated
from ...resources import Observed, Resource
from ..base import Provider, read_back
from .common import PORT, _Aws, _refuse_foreign, _tags


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
