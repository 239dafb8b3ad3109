"""The provider contract, after pulumi's dynamic providers: every step says how it fails.

- read(r, prior) never mutates anything; it returns None when the resource is gone, and an
  Observed with foreign=True (and whose: whose it is) when what exists is not this project's:
  its marker names another project, environment or state lineage, or it has none and prior is
  None (ownership.judge). Observed attrs hold `marked` (or `tagged`): our marker is exactly there,
  and may hold `unsupported`: the settings the server cannot keep (plan never counts them changed).
- mark(r) writes our marker on what exists (import: ours from now on); a no-op where the
  resource can hold none.
- create(r) is all-or-nothing: if it raises, the resource was not created. Creating one that
  exists with our marker (an apply killed before it could record it) converges it instead.
- update(r, prior) changes in place only fields not in ``force_new``; if it raises, the
  resource is as it was or partly updated, and the next plan shows what is left.
- delete(r, prior, force=...) of an absent resource succeeds; if it raises, the resource is
  assumed to still exist. With force=False it must never destroy data.
- holds_data(r, observed) says what data would be lost by a delete (None when nothing);
  backup(r, observed, dest) writes a copy under dest (under a temporary name, renamed when whole)
  and returns its path; restore(r, source, replace=...) puts such a copy back and returns
  (items, skipped); with replace=False only into an empty resource, and an unreadable copy
  changes nothing.

Optional (Provider has a default for each), read by plan: ``notes`` (field -> what changing it means, shown beside the change),
``warnings(observed)`` (risks to show, e.g. a public instance), ``check_change(r, prior)`` (raises
ProviderError for a change the provider can never make, e.g. a major-version downgrade), ``check_delete(prior)``
(the same for a delete, e.g. deletion protection on); read by
apply: ``cancel()`` (Ctrl-C: a step that is waiting stops and fails; the next apply resumes) and
``deleted_with`` (types of container whose delete in the same plan takes this resource along: its own
delete is then skipped, e.g. a schema in a database that goes). read may
raise NotYetReachable (its server does not exist yet: absent) or Unreadable (its server cannot be
asked yet: taken as the state says).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar

from ..errors import ProviderError
from ..resources import Observed, Resource


class Provider(ABC):
    """One resource type: the four lifecycle steps are abstract, every optional hook has a default."""

    type: ClassVar[str]
    force_new: ClassVar[frozenset[str]] = frozenset()
    deleted_with: ClassVar[frozenset[str]] = frozenset()  # container types whose delete takes this along
    # create makes the resource and its marker in one step (one transaction): a kill leaves it marked
    # or absent, so apply need not record a pending create before it (one state write fewer)
    marks_atomically: ClassVar[bool] = False

    @abstractmethod
    def read(self, r: Resource, prior: Observed | None) -> Observed | None: ...

    @abstractmethod
    def create(self, r: Resource) -> Observed: ...

    @abstractmethod
    def update(self, r: Resource, prior: Observed) -> Observed: ...

    @abstractmethod
    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None: ...

    @property
    def notes(self) -> Mapping[str, str]:
        """field -> what changing it means, shown beside the change."""
        return {}

    def holds_data(self, r: Resource, observed: Observed) -> str | None:
        return None

    def backup(self, r: Resource, observed: Observed, dest: Path) -> Path | str:
        raise ProviderError(f"{r.address}: holds no data to back up")

    def restore(self, r: Resource, source: str, *, replace: bool = False) -> tuple[int, list[str]]:
        raise ProviderError(f"{r.address}: nothing can be restored into it")

    def warnings(self, observed: Observed) -> list[str]:
        return []

    def check_change(self, r: Resource, prior: Observed) -> None:
        return None

    def check_delete(self, prior: Observed) -> None:
        """At plan time: a delete the provider can never do now (deletion protection on) raises
        ProviderError, so that nothing else of the plan is done first."""
        return None

    def cancel(self) -> None:
        return None

    def mark(self, r: Resource) -> None:
        """Our marker on an existing resource (`import`); nothing for a type that holds none."""
        return None


def converged(r: Resource, done: Observed, keys: Iterable[str], *, who: str = "a superuser") -> Observed:
    """done, when each of keys reads back as r wants it; else ProviderError naming what is left and
    who can put it right. For a change the server accepts and only warns about (a REVOKE of another
    grantor's grant): an update must never report what it did not do."""
    left = sorted(k for k in keys if k in r.attrs and done.attrs.get(k) != r.attrs[k])
    if left:
        raise ProviderError(
            f"{r.address}: the admin could not put this right ("
            + "; ".join(f"{k} is {done.attrs.get(k)!r}" for k in left)
            + f"): {who} must"
        )
    return done


def read_back(provider: Provider, r: Resource, prior: Observed | None = None) -> Observed:
    """How create and update end: read what they made. Absent right after it was written means it
    did not converge, never "deleted" (the engine would drop it from the state)."""
    obs = provider.read(r, prior)
    if obs is None:
        raise ProviderError(
            f"{r.address}: reads back as absent right after it was written; "
            "it was not recorded: run plan to see what is there"
        )
    return Observed(obs.attrs)
