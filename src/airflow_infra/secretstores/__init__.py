"""Where generated passwords live. The config and the state only ever hold a reference.

Every store keeps one small contract: get(ref) -> str | None; get_or_create(ref) -> str (made with
`secrets` on first use, and kept before it is used); delete(ref). [secrets] store chooses:
- "file" (default): a 0600 file under AIRFLOW_INFRA_HOME, for one machine;
- "state": each value encrypted inside the state (AES-GCM, key from a passphrase through scrypt),
  so that a team sharing remote state shares the passwords, never in plaintext;
- "aws-secrets-manager": one secret per role.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any


class SecretStore(ABC):
    @abstractmethod
    def get(self, ref: str) -> str | None: ...

    @abstractmethod
    def get_or_create(self, ref: str) -> str: ...

    @abstractmethod
    def delete(self, ref: str) -> None: ...

    def locate(self, ref: str) -> str | None:
        """Where the secret lives, for the state (a Secrets Manager ARN); None for a store that
        keeps its secrets itself."""
        return None

    def load(self, state: Any) -> None:  # noqa: B027 (a hook with nothing to do by default)
        """The state as read under the lock (a store that keeps its values in the state reads them)."""

    def bind(self, commit: Callable[[Callable[[Any], Any]], Any]) -> None:  # noqa: B027 (likewise)
        """The transaction's commit, for a store that must keep a new value in the state before it
        is used."""


def make_store(config, home: Path):
    kind = config.secrets.store or ("aws-secrets-manager" if config.target.kind == "aws" else "file")
    if kind == "state":
        from .state import StateSecretStore

        return StateSecretStore(passphrase_env=config.secrets.passphrase_env, kms_key_id=config.secrets.kms_key_id,
                                region=config.secrets.region)
    if kind == "aws-secrets-manager":
        from .aws import AwsSecretsManagerStore

        p = config.project
        return AwsSecretsManagerStore(region=config.region if config.target.kind == "aws" else config.secrets.region,
                                      prefix=f"{config.secrets.prefix.rstrip('/')}/{p.name}/{p.environment}/",
                                      tags={"ManagedBy": "airflow-infra", "Project": p.name, "Environment": p.environment})
    from .file import FileSecretStore

    return FileSecretStore(home)
