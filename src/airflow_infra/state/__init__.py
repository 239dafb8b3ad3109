"""State: what airflow-infra has made, and the backends that keep it (see base.py for the contract)."""

from __future__ import annotations

from pathlib import Path

from .base import LockInfo, State, StateBackend

__all__ = ["LockInfo", "State", "StateBackend", "get_backend"]


def get_backend(config, project_dir: Path) -> StateBackend:
    """The backend [state] names; each imports only what it needs."""
    if config.state.backend == "postgres":
        from .postgres import PostgresStateBackend

        return PostgresStateBackend.from_env(config.state.dsn_env, project=config.project.name,
                                             environment=config.project.environment)
    from .local import LocalStateBackend

    return LocalStateBackend(Path(project_dir) / config.state.path)
