"""State: what airflow-infra has made, and the backends that keep it (see base.py)."""

from .base import LockInfo, State, StateBackend

__all__ = ["LockInfo", "State", "StateBackend"]
