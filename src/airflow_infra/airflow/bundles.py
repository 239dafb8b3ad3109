"""Airflow 3 DAG bundles for the registry's projects: one per project, so that Airflow itself
versions and refreshes each. A repository on this machine is a LocalDagBundle on its working tree
(edits show at the next parse, as a developer expects); any other is a GitDagBundle on its URL and
branch (apache-airflow-providers-git), cloned by Airflow. Path narrows either to the DAGs' folder."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..registry import Entry, read

LOCAL = "airflow.dag_processing.bundles.local.LocalDagBundle"
GIT = "airflow.providers.git.bundles.git.GitDagBundle"


def local_directory(url: str) -> Path | None:
    """The directory a URL names on this machine (a path or file://), if it is one."""
    if url.startswith("file://"):
        path = Path(unquote(urlsplit(url).path))
    elif "://" in url or url.startswith("ext::") or ":" in url.split("/", 1)[0]:
        return None
    else:
        path = Path(url).expanduser()
    return path.resolve() if path.is_dir() else None


def bundle(e: Entry) -> dict:
    here = local_directory(e.clone_url)
    if here is not None:
        return {"name": e.project, "classpath": LOCAL, "kwargs": {"path": str(here / e.path if e.path else here)}}
    kwargs: dict = {"repo_url": e.clone_url, "tracking_ref": e.ref or "main"}
    if e.path:
        kwargs["subdir"] = e.path
    return {"name": e.project, "classpath": GIT, "kwargs": kwargs}


def bundles(registry: str | Path) -> list[dict]:
    return [bundle(e) for e in read(registry)]


def render(items: list[dict], fmt: str) -> str:
    """json: the list itself; env: the variable Airflow reads; toml: airflow.cfg's lines."""
    value = json.dumps(items, sort_keys=True)
    if fmt == "json":
        return json.dumps(items, indent=2, sort_keys=True) + "\n"
    if fmt == "env":
        return "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST='" + value.replace("'", "'\\''") + "'\n"
    return "[dag_processor]\ndag_bundle_config_list = " + value + "\n"
