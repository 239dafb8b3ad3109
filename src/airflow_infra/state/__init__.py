"""State: what airflow-infra has made, and the backends that keep it (see base.py for the contract)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import LockInfo, State, StateBackend

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["LockInfo", "State", "StateBackend", "get_backend"]


def get_backend(config: Config, project_dir: Path) -> StateBackend:
    """The backend [state] names; each imports only what it needs."""
    if config.state.backend == "postgres":
        from .postgres import PostgresStateBackend

        return PostgresStateBackend.from_env(
            config.state.dsn_env, project=config.project.name, environment=config.project.environment
        )
    if config.state.backend == "s3":
        st = config.state
        if not st.bucket:
            from ..errors import ConfigError

            raise ConfigError(
                '[state] bucket: backend = "s3" needs the state bucket\'s name '
                "(`airflow-infra backend bootstrap` makes it)"
            )
        try:
            from .s3 import S3StateBackend
        except ImportError:
            from ..errors import ConfigError

            raise ConfigError("[state] backend = \"s3\" needs boto3: pip install 'airflow-infra[s3]'") from None
        key = st.key or f"{config.project.name}/{config.project.environment}/airflow-infra.json"
        return S3StateBackend(
            bucket=st.bucket,
            key=key,
            region=st.region,
            lock=st.locks,
            dynamodb_table=st.dynamodb_table,
            lease_seconds=st.lease_seconds,
        )
    from .local import LocalStateBackend

    return LocalStateBackend(Path(project_dir) / config.state.path)
