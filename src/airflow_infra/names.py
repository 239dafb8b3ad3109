"""Project names: an importable Python name, [a-z][a-z0-9_]{1,39}. Kept free of pydantic so that
`up` and `init` can check a name before anything heavy is loaded or anything is made."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import ConfigError

NAME_RE = r"^[a-z][a-z0-9_]{1,39}$"
CONFIG_FILE = "airflow-infra.toml"  # the project's config, in the project directory


def default_name(project_dir: Path) -> str:
    """The folder's name made into a project name: lower case, '-', '.' and ' ' as '_'."""
    return re.sub(r"[-. ]", "_", Path(project_dir).resolve().name.lower())


def project_name(project_dir: Path, name: str | None = None) -> str:
    """The name given, else the folder's; either checked."""
    if name is not None:
        return check_name(name)
    folder = Path(project_dir).resolve().name
    return check_name(default_name(project_dir), source=f"project folder name {folder!r} (pass --name)")


def check_name(name: str, *, source: str = "--name") -> str:
    if not re.fullmatch(NAME_RE, name):
        raise ConfigError(
            f"{source}: {name!r} is not a valid project name: it must match {NAME_RE} "
            "(an importable Python name: lower case, starts with a letter)"
        )
    why = reserved(name)
    if why:
        raise ConfigError(f"{source}: {name!r} is not a valid project name: {why}")
    return name


def reserved(name: str) -> str | None:
    """Why PostgreSQL refuses the roles a project of this name has, if it does."""
    if name.startswith("pg_"):
        return "PostgreSQL reserves role names starting with pg_ (its roles would be pg_…_owner); choose another"
    return None
