"""Whose a resource is. Everything we make carries a marker (a PostgreSQL COMMENT, S3 or AWS tags,
a marker file or object) naming the project, its environment and the lineage of the state that
manages it. A resource is ours only when all three match: a second project pointed at it, a copy
of the project folder with a new state, or another environment never takes it over.

Markers written before lineages were recorded (`project P (E)`) count as ours only for a state
that records the resource already (the release that wrote them managed it), and are rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

MANAGED_BY = "airflow-infra"


def project_tags(project: str, environment: str) -> dict[str, str]:
    """The tags that name a project's things where a state lineage is not theirs to carry (its secrets,
    its Airflow connections' secrets); markers add the lineage (Owner.tags)."""
    return {"ManagedBy": MANAGED_BY, "Project": project, "Environment": environment}


_MARKER = re.compile(r"managed by airflow-infra: project (?P<p>\S+), environment (?P<e>\S+), state lineage (?P<l>\S+)")
_LEGACY = re.compile(r"(?:managed by airflow-infra: )?project (?P<p>\S+)(?: \((?P<e>[^)]*)\))?\s*$")


@dataclass(frozen=True)
class Owner:
    project: str
    environment: str
    lineage: str | None  # None: a marker from before lineages were recorded

    def marker(self) -> str:
        return f"managed by airflow-infra: project {self.project}, environment {self.environment}, state lineage {self.lineage}"

    def tags(self) -> dict[str, str]:
        return {**project_tags(self.project, self.environment), "Lineage": str(self.lineage)}

    def describe(self) -> str:
        lineage = f", state lineage {self.lineage[:8]}…" if self.lineage else " (an older release's marker)"
        return f"project {self.project}, environment {self.environment}{lineage}"

    @classmethod
    def from_marker(cls, text: str | None) -> Owner | None:
        if not text:
            return None
        found = _MARKER.search(text)
        if found:
            return cls(found["p"], found["e"], found["l"])
        legacy = _LEGACY.search(text.strip())
        if legacy and text.strip().startswith(("managed by airflow-infra", "project ")):
            return cls(legacy["p"], legacy["e"] or "", None)
        return None

    @classmethod
    def from_tags(cls, tags: Mapping[str, str] | None) -> Owner | None:
        tags = tags or {}
        if tags.get("ManagedBy") != MANAGED_BY or "Project" not in tags:
            return None
        return cls(tags["Project"], tags.get("Environment", ""), tags.get("Lineage"))


@dataclass(frozen=True)
class Verdict:
    """ours: the resource is this project's; marked: its marker is exactly ours (else apply rewrites
    it); whose: for a resource not ours, whose it is, in words."""

    ours: bool
    marked: bool
    whose: str = ""


def judge(me: Owner, found: Owner | None, *, recorded: bool) -> Verdict:
    """found: the marker read on the resource (None: none, or not ours in form); recorded: the
    state already holds the resource."""
    if found == me:
        return Verdict(True, True)
    if found is None:
        # in our state and unmarked: an import (which marks it) cut short, or a marker removed by hand
        return Verdict(True, False) if recorded else Verdict(False, False, "not made by airflow-infra")
    same_project = (found.project, found.environment) == (me.project, me.environment)
    if same_project and found.lineage is None and recorded:
        return Verdict(True, False)
    if found.project == me.project and found.environment != me.environment:
        return Verdict(False, False, f"{SIBLING} {found.environment!r}")
    return Verdict(False, False, f"made by {found.describe()}")


# whose, for what another environment of the same project made: never to be imported (names carry
# no environment, so the two environments would share one database and one set of roles)
SIBLING = "made by this project's environment"


def sibling_advice(environment: str) -> str:
    return (
        f"two environments of one project cannot share a server or bucket (the names of its roles, "
        f"database and bucket carry no environment): give environment {environment!r} a server of its own "
        "(another [target] or AIRFLOW_INFRA_HOME)"
    )
