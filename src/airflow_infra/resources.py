"""Resource (what the config wants) and Observed (what a provider found), both values.

An address is ``<type>.<name>``, e.g. ``postgres_schema.raw``; attributes are plain JSON values
and never hold a secret (passwords are referenced through ``password_ref``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    attrs: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"

    def to_json(self) -> dict:
        return {"type": self.type, "name": self.name, "attrs": dict(self.attrs), "depends_on": list(self.depends_on)}

    @classmethod
    def from_json(cls, data: Mapping) -> Resource:
        return cls(data["type"], data["name"], dict(data["attrs"]), tuple(data.get("depends_on", ())))


@dataclass(frozen=True)
class Observed:
    """What exists. ``foreign`` means it exists but carries no airflow-infra marker."""

    attrs: Mapping[str, Any]
    foreign: bool = field(default=False)
