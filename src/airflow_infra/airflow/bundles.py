"""Airflow 3 DAG bundles for the registry's projects: one per project, so that Airflow itself
versions and refreshes each. A working tree on this machine (a plain path) is a LocalDagBundle (edits
show at the next parse, as a developer expects); any other repository (a remote, a file:// URL, a bare
one) is a GitDagBundle on its URL and branch (apache-airflow-providers-git), cloned by Airflow. Path narrows either to the DAGs' folder.
Credentials in a repository URL never reach airflow.cfg: the bundle names the connection `<project>_git`,
which the secrets backend serves from the registry (GitHook hands them to git through a credential helper)."""

from __future__ import annotations

import json
from pathlib import Path

from ..dags.gitcmd import Remote, check_transport
from ..registry import Entry, read

LOCAL = "airflow.dag_processing.bundles.local.LocalDagBundle"
GIT = "airflow.providers.git.bundles.git.GitDagBundle"


def local_directory(url: str) -> Path | None:
    """The working tree a registry URL names on this machine (a plain path), if it is one; a file:// URL
    or a bare repository is a repository to clone, as a remote one is."""
    if "://" in url or url.startswith("ext::") or ":" in url.split("/", 1)[0]:  # URLs and scp-like host:path
        return None
    path = Path(url).expanduser()
    bare = (path / "HEAD").is_file() and (path / "objects").is_dir() and not (path / ".git").exists()
    return path.resolve() if path.is_dir() and not bare else None


def git_conn_id(project: str) -> str:
    """The connection holding the credentials a project's repository URL carries."""
    return f"{project}_git"


def git_connection(e: Entry) -> dict | None:
    """Airflow's JSON form of that connection (conn_type git), or None when the URL carries none."""
    remote = Remote.parse(e.clone_url)
    if not (remote.username or remote.password) or local_directory(e.clone_url) is not None:
        return None
    return {"conn_type": "git", "host": remote.url, "login": remote.username, "password": remote.password}


def bundle(e: Entry) -> dict:
    here = local_directory(e.clone_url)
    if here is not None:
        return {"name": e.project, "classpath": LOCAL, "kwargs": {"path": str(here / e.path if e.path else here)}}
    remote = Remote.parse(e.clone_url)
    kwargs: dict = {"repo_url": remote.url, "tracking_ref": e.ref or "main"}
    if remote.username or remote.password:  # never in airflow.cfg: a connection the secrets backend serves
        kwargs["git_conn_id"] = git_conn_id(e.project)
    if e.path:
        kwargs["subdir"] = e.path
    return {"name": e.project, "classpath": GIT, "kwargs": kwargs}


def bundles(registry: str | Path) -> list[dict]:
    """One bundle per project whose URL git may use; one that git may not is left out, said in a warning."""
    import logging

    out = []
    for e in read(registry):
        why = check_transport(e.clone_url)
        if why:
            logging.getLogger(__name__).warning(f"{registry}: project {e.project}: {why}: it has no DAG bundle")
            continue
        out.append(bundle(e))
    return out


def render(items: list[dict], fmt: str) -> str:
    """json: the list itself; env: the variable Airflow reads; cfg: airflow.cfg's lines (a % doubled: Airflow
    interpolates); toml: the same setting as TOML (the value a JSON string)."""
    value = json.dumps(items, sort_keys=True)
    if fmt == "json":
        return json.dumps(items, indent=2, sort_keys=True) + "\n"
    if fmt == "env":
        return "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST='" + value.replace("'", "'\\''") + "'\n"
    if fmt == "cfg":
        return "[dag_processor]\ndag_bundle_config_list = " + value.replace("%", "%%") + "\n"
    return "[dag_processor]\ndag_bundle_config_list = " + json.dumps(value) + "\n"
