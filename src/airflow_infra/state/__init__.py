"""State: what airflow-infra has made, and the backends that keep it (see base.py for the contract;
plugins.STATE_BACKENDS lists them)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import LockInfo, State, StateBackend

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["LockInfo", "State", "StateBackend", "get_backend"]


def get_backend(config: Config, project_dir: Path) -> StateBackend:
    """The backend [state] names; each imports only what it needs."""
    from ..plugins import STATE_BACKENDS

    backend: StateBackend = STATE_BACKENDS.load(config.state.backend).from_config(config, Path(project_dir))
    return backend
