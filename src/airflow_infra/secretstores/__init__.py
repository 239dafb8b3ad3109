"""Where generated passwords live. The config and the state only ever hold a reference.

Every store keeps one small contract: get(ref) -> str | None (None: missing, or unreadable, which
is the same to a caller: a new value is set); get_or_create(ref) -> str (made with `secrets` on
first use, and kept before it is used); put(ref, value) (a new value: rotation, or a move to a new
reference); delete(ref). A role's reference names its project, environment and role only
(role_ref), never how the server is reached. [secrets] store chooses:
- "file" (default): a 0600 file under AIRFLOW_INFRA_HOME, for one machine;
- "state": each value encrypted inside the state (AES-GCM, key from a passphrase through scrypt),
  so that a team sharing remote state shares the passwords, never in plaintext;
- "aws-secrets-manager": one secret per role.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config

import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

MASK = "<sensitive>"  # how a secret is shown when it is not revealed


# What every secret airflow-infra makes looks like: secrets.token_urlsafe(32) (43 characters), a
# Fernet key (44, base64 with "="). Anything else in a store (blank, the mask pasted back, "null",
# "None", "********", a word typed by hand) was never generated here and is never used as one.
GENERATED_RE = re.compile(r"[A-Za-z0-9_=-]{32,}")


def usable(value: object) -> str | None:
    """value as a secret, or None: only a value of the shape airflow-infra generates is one; a store
    holding anything else under a reference is missing it (apply sets a new one)."""
    return value if isinstance(value, str) and GENERATED_RE.fullmatch(value) else None


def role_ref(project: str, environment: str, role: str) -> str:
    """Where a role's password is kept: the same whichever way the admin DSN spells the server."""
    return f"{project}/{environment}/{role}"


def new_password() -> str:
    return secrets.token_urlsafe(32)  # URL-safe: goes into URIs and env files as it is


class SecretStore(ABC):
    @classmethod
    @abstractmethod
    def from_config(cls, config: Config, home: Path) -> SecretStore:
        """The store as [secrets] configures it, for a project under home."""

    @abstractmethod
    def get(self, ref: str) -> str | None: ...

    @abstractmethod
    def get_or_create(self, ref: str) -> str: ...

    @abstractmethod
    def put(self, ref: str, value: str) -> None: ...

    @abstractmethod
    def delete(self, ref: str) -> None: ...

    def prefetch(self, refs: list[str]) -> None:  # noqa: B027 (nothing to do for a store that is at hand)
        """Read refs now, in as few calls as the store allows: a refresh then asks for each from memory."""

    def holds(self, ref: str) -> bool:
        """Whether a value is kept under ref, without needing what reads it (a passphrase)."""
        return self.get(ref) is not None

    def findings(self, ref: str) -> list[str]:
        """What is wrong with how ref's secret is kept, beside its value (a store of secrets with
        settings of their own: its encryption key, its access policy, a scheduled deletion); [] when
        nothing is. Drift on the role that uses it; repair(ref) puts it right."""
        return []

    def age_days(self, ref: str) -> float | None:
        """Days since ref's value last changed, where the store keeps that (None: it does not)."""
        return None

    def repair(self, ref: str) -> None:  # noqa: B027 (a hook with nothing to do by default)
        """Put right what findings(ref) names."""

    def locate(self, ref: str) -> str | None:
        """Where the secret lives, for the state (a Secrets Manager ARN); None for a store that
        keeps its secrets itself."""
        return None

    def load(self, state: Any) -> None:  # noqa: B027 (a hook with nothing to do by default)
        """The state as read under the lock (a store that keeps its values in the state reads them)."""

    def bind(self, commit: Callable[[Callable[[Any], Any]], Any]) -> None:  # noqa: B027 (likewise)
        """The transaction's commit, for a store that must keep a new value in the state before it
        is used."""


def make_store(config: Config, home: Path) -> SecretStore:
    """The store [secrets] store names (default: Secrets Manager on the aws target, else the file)."""
    from ..plugins import SECRET_STORES

    kind = config.secrets.store or ("aws-secrets-manager" if config.target.kind == "aws" else "file")
    store: SecretStore = SECRET_STORES.load(kind).from_config(config, home)
    return store
