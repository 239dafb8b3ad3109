"""What every target is: the resources a project wants, the providers that make them, the outputs
it gives. A target assembles parts (targets/database.py, targets/bucket.py); none subclasses another.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from ..config import Config
from ..ownership import Owner
from ..providers.base import Provider
from ..resources import Resource
from ..secretstores import SecretStore, make_store
from ..state.base import State


class Target(ABC):
    OPTIONS: ClassVar[frozenset[str]] = frozenset()  # the apply/destroy flags it takes (get_target checks them)

    def __init__(self, config: Config, home: Path, *, lock_timeout: float = 0.0):
        """lock_timeout: the command's --lock-timeout, which bounds database lock waits too."""
        self.config = config
        self.home = home
        self.lock_timeout = lock_timeout
        self.secrets: SecretStore = make_store(config, home)

    @abstractmethod
    def desired(self) -> list[Resource]:
        """What the project wants, in dependency order of no importance (the engine sorts)."""

    @abstractmethod
    def providers(self, lineage: str) -> dict[str, Provider]:
        """type -> the provider of that type, marking what it makes as the project's and the state
        of that lineage's (ownership.py); may check the servers are usable first."""

    def preflight(self) -> None:  # noqa: B027 (nothing to check by default)
        """Before plan and apply: what the target reads from this machine is usable (a bad one stops
        the plan before anything is made). Not run by commands that connect nowhere."""

    def owner(self, lineage: str) -> Owner:
        return Owner(self.config.project.name, self.config.project.environment, lineage)

    @abstractmethod
    def outputs(self, state: State, *, reveal: bool = True) -> dict[str, dict[str, Any]]:
        """Terraform's output shape: {name: {"value": ..., "sensitive": bool}}; empty before apply."""

    def bucket_client(self) -> Any | None:
        """The S3 client of the project's bucket (doctor checks it); None when the bucket is no S3 one."""
        return None

    def close(self) -> None:  # noqa: B027 (nothing to close by default)
        """Release sessions; the target is not used after."""
