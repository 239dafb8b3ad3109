"""airflow-infra: infrastructure for Airflow ELT projects, planned and applied with locked state.

The public API is the names in __all__: one function per CLI command (commands.py) and the
error hierarchy (errors.py). Submodules are private. Names load lazily, so that importing the
CLI for `--help` does not pay for pydantic or psycopg.
"""

__version__ = "0.1.0"

_COMMANDS = (
    "Project", "apply", "backend_bootstrap", "destroy", "force_unlock", "import_resource", "init", "load", "load_plan",
    "local_start", "local_status", "local_stop", "lock_info", "outputs", "plan", "save_plan", "state_list",
    "state_migrate", "state_show", "up", "projects_list", "projects_add", "projects_remove", "dags_sync",
    "dags_install_importer", "fleet_plan", "fleet_apply", "fleet_outputs", "connections", "connections_push",
    "doctor", "new", "import_terraform",
)
_ERRORS = (
    "AirflowInfraError", "ConfigError", "StateError", "StateCorrupt", "StateLocked", "LockMismatch",
    "StateConflict", "StalePlan", "ProviderError", "ForeignResource", "NotYetReachable", "Unreadable",
    "LocalServerError", "BinariesNotFound",
    "PortInUse", "DataLossRefused", "ConfirmationRequired", "ApplyFailed",
)
__all__ = [*_COMMANDS, *_ERRORS]


def __getattr__(name: str):
    import importlib

    if name in _COMMANDS:
        return getattr(importlib.import_module(".commands", __name__), name)
    if name in _ERRORS:
        return getattr(importlib.import_module(".errors", __name__), name)
    raise AttributeError(f"module 'airflow_infra' has no attribute {name!r}")
