"""airflow-infra: infrastructure for Airflow ELT projects, planned and applied with locked state.

The public API is the names in __all__: one function per CLI command (commands.py) and the
error hierarchy (errors.py). Submodules are private. Names load lazily, so that importing the
CLI for `--help` does not pay for pydantic or psycopg.
"""

__version__ = "0.1.0"

_COMMANDS = (  # commands.__all__, written out so that `import airflow_infra` imports nothing more
    "Project",
    "apply",
    "backend_bootstrap",
    "destroy",
    "force_unlock",
    "import_resource",
    "init",
    "load",
    "load_plan",
    "local_install_service",
    "local_server",
    "local_start",
    "local_status",
    "local_stop",
    "lock_info",
    "output",
    "outputs",
    "plan",
    "save_plan",
    "state_list",
    "state_migrate",
    "state_restore",
    "state_show",
    "state_versions",
    "up",
    "FleetResult",
    "dags_install_importer",
    "dags_sync",
    "fleet_apply",
    "fleet_outputs",
    "fleet_plan",
    "projects_add",
    "projects_list",
    "projects_remove",
    "projects_show",
    "connections",
    "connections_push",
    "doctor",
    "new",
    "TerraformImport",
    "import_terraform",
    "Restored",
    "restore",
    "rotate",
    "PlatformStatus",
    "dags_bundles",
    "platform_down",
    "platform_logs",
    "platform_status",
    "platform_up",
)
_ERRORS = (
    "AirflowInfraError",
    "ConfigError",
    "StateError",
    "StateCorrupt",
    "StateNotOurs",
    "StateLocked",
    "LockMismatch",
    "StateConflict",
    "StalePlan",
    "ProviderError",
    "ForeignResource",
    "NotYetReachable",
    "Unreadable",
    "LeaseLost",
    "LockTimeout",
    "LocalServerError",
    "BinariesNotFound",
    "PortInUse",
    "DataLossRefused",
    "ConfirmationRequired",
    "ApplyFailed",
    "PlatformError",
    "InstallFailed",
)
__all__ = [*_COMMANDS, *_ERRORS]


def __getattr__(name: str):
    import importlib

    if name in _COMMANDS:
        return getattr(importlib.import_module(".commands", __name__), name)
    if name in _ERRORS:
        return getattr(importlib.import_module(".errors", __name__), name)
    raise AttributeError(f"module 'airflow_infra' has no attribute {name!r}")
