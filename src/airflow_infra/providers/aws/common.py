"""What the AWS providers share: the clients, the owner's tags as the marker, the refusal of another's resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import ForeignResource
from ...ownership import Owner, Verdict, judge
from ...resources import Observed, Resource

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
