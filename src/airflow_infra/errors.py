"""The whole error hierarchy of airflow-infra.

Foreign exceptions (psycopg, OSError, pydantic) are translated once, where they cross
into our code, with ``raise X(...) from exc``. The CLI prints ``str(error)`` as one line
and exits 1; messages therefore name the file, key or argument and what is allowed, and
never carry a secret.

    AirflowInfraError
    ├── ConfigError            airflow-infra.toml, --var, --var-file, environment overrides
    ├── StateError
    │   ├── StateCorrupt       state.json unreadable; left as it is
    │   ├── StateTooNew        written by a newer release; left as it is
    │   ├── StateNotOurs       another tool's state (Terraform's) at the state's place; never read nor overwritten
    │   ├── StateLocked        another writer holds the lock (.holder is its LockInfo)
    │   ├── LockMismatch       force-unlock with an ID that is not the lock's
    │   ├── StateConflict      a write whose serial/lineage is stale
    │   ├── LeaseLost          this run's lease on the lock ran out (it was paused): it does and writes nothing more
    │   └── StalePlan          a saved plan whose state changed since
    ├── ProviderError          a resource could not be read, created, updated or deleted
    │   ├── ForeignResource    exists, but was not made by airflow-infra
    │   ├── NotYetReachable    its server does not exist yet (an RDS instance to be created): it is absent
    │   └── Unreadable         its server exists but cannot be asked yet: it is taken to be as the state says
    ├── LockTimeout            a file lock of this machine's (secret store, local server) not free within its bound
    ├── LocalServerError       the managed local PostgreSQL
    │   ├── BinariesNotFound
    │   └── PortInUse
    ├── SecretMissing          a password the outputs need is not in the secret store (apply sets a new one)
    ├── DataLossRefused        destroy/replace of something holding data without --force-delete-data
    ├── ConfirmationRequired   apply/destroy with no terminal to ask on and no --auto-approve
    └── ApplyFailed            one or more steps failed; finished steps are in the state
"""

from __future__ import annotations


class AirflowInfraError(Exception):
    """Base of every error airflow-infra raises on purpose."""


class ConfigError(AirflowInfraError):
    pass


class StateError(AirflowInfraError):
    pass


class StateCorrupt(StateError):
    pass


class StateTooNew(StateError):
    pass


class StateNotOurs(StateError):
    pass


class StateLocked(StateError):
    def __init__(self, message: str, holder=None):
        super().__init__(message)
        self.holder = holder


class LockMismatch(StateError):
    pass


class StateConflict(StateError):
    pass


class LeaseLost(StateError):
    pass


class StalePlan(StateError):
    pass


class ProviderError(AirflowInfraError):
    pass


class ForeignResource(ProviderError):
    pass


class NotYetReachable(ProviderError):
    pass


class Unreadable(ProviderError):
    pass


class LockTimeout(AirflowInfraError):
    pass


class LocalServerError(AirflowInfraError):
    pass


class BinariesNotFound(LocalServerError):
    pass


class PortInUse(LocalServerError):
    pass


class SecretMissing(AirflowInfraError):
    pass


class DataLossRefused(AirflowInfraError):
    pass


class ConfirmationRequired(AirflowInfraError):
    pass


class ApplyFailed(AirflowInfraError):
    pass


class PlatformError(AirflowInfraError):
    """The local Airflow platform could not be brought up (a port taken, a process that died, a migration)."""


class InstallFailed(PlatformError):
    """Airflow's virtualenv could not be made; the one in use, if any, is left as it was."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what it left behind said in one line (exit status 130)."""
