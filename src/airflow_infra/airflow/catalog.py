"""What the secrets backend serves, read at each lookup from the registry, each project's config and state
(a `rotate` holds from the next lookup). Kept free of Airflow, so that it is tested without it.

It fails small and loud: a row of the registry that does not read, or a project whose config or state does
not, costs that project's names only, and is said once in the component's log; a name two projects claim
is served to nobody, with the reason said once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_said: set[str] = set()


def say_once(message: str) -> None:
    """A warning in the component's log, once per process: a lookup runs often, its reasons seldom change."""
    if message not in _said:
        _said.add(message)
        log.warning("airflow-infra: %s", message)


class Catalog:
    def __init__(self, registry: str | Path, say: Callable[[str], None] = say_once):
        self.registry = Path(registry)
        self.say = say

    def read(self) -> tuple[dict[str, Any], Any]:
        """({project: its registry row}, Claims) as the files say now: one read serves one lookup."""
        from ..claims import claims
        from ..registry import read_each

        entries, errors = read_each(self.registry)
        for line in errors:
            self.say(f"{line}: that row's names are not served")
        found = claims(self.registry, entries)
        for project, why in sorted(found.unreadable.items()):
            self.say(f"{self.registry}: project {project}: {why}: its names are not served")
        for line in found.conflicts():
            self.say(f"{self.registry}: {line}: served to nobody")
        return {e.project: e for e in entries}, found

    def owner(self, namespace: str, name: str, read: tuple | None = None) -> str | None:
        return (read or self.read())[1].owner(namespace, name)

    def connection(self, conn_id: str, read: tuple | None = None) -> tuple[str, dict[str, Any]] | None:
        """(the owning project, Airflow's JSON form) of conn_id, or None when no one project owns it."""
        from ..claims import CONNECTION
        from .bundles import git_conn_id, git_connection

        entries, found = read or self.read()
        owner = found.owner(CONNECTION, conn_id)
        if owner is None:
            return None
        if conn_id == git_conn_id(owner) and (git := git_connection(entries[owner])) is not None:
            return owner, git
        conns, _ = self._built(owner, entries)
        return (owner, conns[conn_id]) if conn_id in conns else None

    def variable(self, key: str, read: tuple | None = None) -> tuple[str, str] | None:
        from ..claims import VARIABLE

        entries, found = read or self.read()
        owner = found.owner(VARIABLE, key)
        if owner is None:
            return None
        _, variables = self._built(owner, entries)
        return (owner, variables[key]) if key in variables else None

    def _built(self, project: str, entries) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        from ..claims import project_dir
        from ..commands import open_project, outputs
        from .connections import build

        d = project_dir(self.registry, entries[project])
        try:
            if d is None:  # it had claims, so its config was there a moment ago
                raise FileNotFoundError("its airflow-infra.toml is gone")
            p = open_project(d)
            conns, variables = build(p.config, outputs(p, reveal=True))
        except Exception as exc:  # one project's trouble never hides the others' names
            self.say(f"project {project} ({d}): {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            return {}, {}
        return {c.conn_id: c.fields(show_secrets=True) for c in conns}, variables

    def roots(self, read: tuple | None = None) -> dict[str, list[Path]]:
        """Where each project's DAG files are on this machine, when a working tree: {project: [folders]}."""
        from .bundles import local_directory

        out: dict[str, list[Path]] = {}
        entries, _ = read or self.read()
        for name, e in entries.items():
            here = local_directory(e.clone_url)
            out[name] = [here] if here is not None else []
        return out
