"""Resource (what the config wants) and Observed (what a provider found), both values.

An address is ``<type>.<name>``, e.g. ``postgres_schema.raw``; attributes are plain JSON values
and never hold a secret (passwords are referenced through ``password_ref``). A desired attribute
may be a Ref to another resource's attribute (an RDS instance's security group id): the engine
resolves it from the refreshed or just-applied resource, so no provider reaches into another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ref:
    """The attribute `attr` of the resource at `address`, known once that one exists."""

    address: str
    attr: str

    def __str__(self) -> str:
        return f"(known after apply: {self.address}.{self.attr})"

    def to_json(self) -> dict[str, list[str]]:
        return {"$ref": [self.address, self.attr]}


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$ref"}:
        return Ref(*value["$ref"])
    return value


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    attrs: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"

    def refs(self) -> set[str]:
        """The addresses this resource's Refs name."""
        return {v.address for v in self.attrs.values() if isinstance(v, Ref)}

    def resolved(self, attrs_of: Callable[[str], Mapping[str, Any] | None], *, unknown: Any = Ref) -> Resource:
        """Each Ref replaced by its value where attrs_of(address) knows it; else kept (unknown=Ref) or
        replaced by `unknown` (None for a read: what does not exist yet has no id)."""
        if not self.refs():
            return self
        out = {}
        for k, v in self.attrs.items():
            if isinstance(v, Ref):
                found = attrs_of(v.address)
                v = (
                    found[v.attr]
                    if found is not None and found.get(v.attr) is not None
                    else (v if unknown is Ref else unknown)
                )
            out[k] = v
        return Resource(self.type, self.name, out, self.depends_on)

    def to_json(self) -> dict:
        attrs = {k: v.to_json() if isinstance(v, Ref) else v for k, v in self.attrs.items()}
        return {"type": self.type, "name": self.name, "attrs": attrs, "depends_on": list(self.depends_on)}

    @classmethod
    def from_json(cls, data: Mapping) -> Resource:
        """ValueError (a corrupt state) for anything but a resource's shape: attrs an object, type, name
        and each dependency a string."""
        if not isinstance(data, Mapping) or not isinstance(data.get("attrs"), Mapping):
            raise ValueError("a resource without an attrs object")
        kind, name, deps = data.get("type"), data.get("name"), data.get("depends_on", [])
        if not (
            isinstance(kind, str)
            and isinstance(name, str)
            and isinstance(deps, list)
            and all(isinstance(d, str) for d in deps)
            and all(isinstance(k, str) for k in data["attrs"])
        ):
            raise ValueError(f"resource {name!r} of type {kind!r} is not a resource (type, name, depends_on)")
        attrs = {k: _from_json(v) for k, v in data["attrs"].items()}
        return cls(kind, name, attrs, tuple(deps))


@dataclass(frozen=True)
class Observed:
    """What exists. ``foreign`` means it exists but is not this project's (ownership.judge); then
    ``whose`` says whose it is, in words."""

    attrs: Mapping[str, Any]
    foreign: bool = field(default=False)
    whose: str = field(default="", compare=False)
