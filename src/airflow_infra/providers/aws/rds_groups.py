"""The RDS instance's DB subnet group and parameter group: found by name, made when missing, no data in them."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from ...aws.clients import NotFound, aws, translated
from ...resources import Observed, Resource
from ..base import Provider, read_back
from .common import _Aws, _tags


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
