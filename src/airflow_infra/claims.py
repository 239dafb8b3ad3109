"""Names in places the registry's projects share, and which project owns each.

One registry serves many projects through shared namespaces: Airflow's connection ids and variables (the
secrets backend, Secrets Manager under one prefix), DAG bundles and DAG folder entries, databases on one
server. Every name a project puts there is claimed by exactly one project: a name claimed twice belongs to
no one (the secrets backend serves it to nobody, `projects add` refuses the second claim), and the line
that says so names both projects.

Roles need no claim: they are the project's name and a fixed suffix (_owner, _etl, _reader), and names
are unique, so two projects' roles never meet. Bundle and folder names are project names, unique by the
registry's own rule.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .registry import Entry, config_dir

CONNECTION = "connection id"
VARIABLE = "Airflow variable"
DATABASE = "database"
RESERVED = {(DATABASE, "local airflow_platform"): "the platform's metadata database"}


def row_names(entry: Entry) -> set[tuple[str, str]]:
    """What a registry row claims by itself: the connection holding its URL's credentials."""
    from .airflow.bundles import git_conn_id, git_connection

    return {(CONNECTION, git_conn_id(entry.project))} if git_connection(entry) is not None else set()


def names(config) -> set[tuple[str, str]]:
    """(namespace, name) of everything the project's config puts where other projects are."""
    from .airflow.connections import connection_ids

    p = config.project.name
    out = {(CONNECTION, c) for c in connection_ids(config)} | {(VARIABLE, f"{p}_workfiles_url")}
    kind = config.target.kind
    if kind == "local":  # one server per home: every local project's database is on it
        out.add((DATABASE, f"local {config.database_name}"))
    elif kind == "server":  # a server named by the same admin DSN variable is taken to be one server
        out.add((DATABASE, f"server {config.database.admin_dsn_env} {config.database_name}"))
    return out


def _key(namespace: str, name: str) -> tuple[str, str]:
    """Connection ids and variables as Airflow's environment backend reads them (AIRFLOW_CONN_<ID>,
    AIRFLOW_VAR_<KEY>, upper case): `B_postgres` and `b_postgres` are one name there."""
    return (namespace, name.upper()) if namespace in (CONNECTION, VARIABLE) else (namespace, name)


def project_dir(registry: str | Path, entry: Entry) -> Path | None:
    """Where the entry's airflow-infra.toml is: its Config, else the working tree its URL names."""
    from .airflow.bundles import local_directory

    d = config_dir(registry, entry) or local_directory(entry.clone_url)
    return d if d is not None and (d / "airflow-infra.toml").is_file() else None


@dataclass
class Claims:
    """Who claims what among a registry's projects; projects whose config cannot be read claim nothing."""

    owners: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    spelled: dict[tuple[str, str], str] = field(default_factory=dict)  # a key as its first claim wrote it
    configs: dict[str, object] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)

    def add(self, project: str, claimed: set[tuple[str, str]]) -> None:
        for namespace, name in sorted(claimed):
            key = _key(namespace, name)
            self.spelled.setdefault(key, name)
            if project not in self.owners[key]:
                self.owners[key].append(project)

    def owner(self, namespace: str, name: str) -> str | None:
        """The one project that claims name, or None (no one, or more than one)."""
        key = _key(namespace, name)
        found = self.owners.get(key, [])
        return found[0] if len(found) == 1 and key not in RESERVED else None

    def conflicts(self, project: str | None = None) -> list[str]:
        """One line per name claimed twice or reserved for the platform (those of project, when given)."""
        out = []
        for (namespace, name), projects in sorted(self.owners.items()):
            if project is not None and project not in projects:
                continue
            shown = self.spelled.get((namespace, name), name).split(" ")[-1]
            if (namespace, name) in RESERVED:
                out.append(f"{namespace} {shown!r} of project {projects[0]} is {RESERVED[namespace, name]}")
            elif len(projects) > 1:
                out.append(
                    f"{namespace} {shown!r} is claimed by projects {' and '.join(projects)}: "
                    "it belongs to neither until one of them names another"
                )
        return out

    def refused(self) -> dict[str, str]:
        """{project: why} for each project that claims a name an earlier row claims (or a reserved one):
        the first claim stands, the later ones are refused."""
        out: dict[str, str] = {}
        for (namespace, name), projects in sorted(self.owners.items()):
            later = projects if (namespace, name) in RESERVED else projects[1:]
            for project in later:
                out.setdefault(project, self.conflicts(project)[0])
        return out


def claims(registry: str | Path, entries: list[Entry]) -> Claims:
    """Every entry's claims; a project whose config does not load is recorded as unreadable."""
    from .config import load_config

    found = Claims()
    for e in entries:
        found.add(e.project, row_names(e))
        d = project_dir(registry, e)
        if d is None:
            continue
        try:
            config = load_config(d)
        except Exception as exc:  # one project's broken config costs its own names only
            found.unreadable[e.project] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            continue
        found.configs[e.project] = config
        found.add(e.project, names(config))
    return found
