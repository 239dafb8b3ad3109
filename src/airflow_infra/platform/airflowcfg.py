"""What the platform tells Airflow: airflow.cfg in its AIRFLOW_HOME (no secret in it, no credential of a
repository either: bundles name a connection for those), and each component's environment, which carries
the secrets it needs (the metadata database's URL, the JWT and session keys, the Fernet key) from the
home's secret store into that component only. Tasks get none of them (executor.py). Every file Airflow
writes (logs, task logs, clones) is this account's only: umask 077, and task logs made 0600."""

from __future__ import annotations

import configparser
import io
import json
import os
from pathlib import Path

from ..files import write_private
from ..secretstores.file import FileSecretStore
from .settings import PlatformSettings

ADMIN = "admin"
ADMIN_PASSWORD = "platform/admin"
SIMPLE_AUTH = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
EXECUTORS = {"LocalExecutor": "airflow_infra.platform.executor.LocalExecutor"}  # its workers hold no key
SESSION_KEY = "AIRFLOW__API__SECRET_KEY"  # signs the UI's sessions: the api-server's alone


def airflow_cfg(settings: PlatformSettings, airflow_home: Path, registry: Path, bundles: list[dict]) -> str:
    url = f"http://127.0.0.1:{settings.port}"
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_dict(
        {
            # the LocalExecutor starts `parallelism` workers at once (Airflow's default, 32, is 5 GB of them here)
            "core": {
                "executor": EXECUTORS[settings.executor],
                "load_examples": "False",
                "auth_manager": SIMPLE_AUTH,
                "parallelism": str(settings.parallelism or max(4, 2 * (os.cpu_count() or 2))),
                "simple_auth_manager_users": f"{ADMIN}:admin",
                "simple_auth_manager_passwords_file": str(airflow_home / "passwords.json"),
            },
            "api": {"host": "127.0.0.1", "port": str(settings.port), "base_url": url, "workers": "1"},
            "dag_processor": {
                "dag_bundle_config_list": json.dumps(bundles, sort_keys=True),
                "refresh_interval": "30",
                # Git bundles' clones: this home's, not /tmp/airflow shared by every home
                "dag_bundle_storage_path": str(airflow_home / "dag_bundles"),
            },
            "secrets": {
                "backend": "airflow_infra.airflow.secrets.AirflowInfraBackend",
                "backend_kwargs": json.dumps({"registry": str(registry)}),
            },
            # task logs are files on this machine, which the api-server reads: no log servers (Airflow would
            # bind them on every interface)
            "logging": {
                "base_log_folder": str(airflow_home / "logs"),
                "file_task_handler_new_file_permissions": "0o600",
                "file_task_handler_new_folder_permissions": "0o700",
            },
        }
    )
    for section in cfg.sections():  # Airflow reads airflow.cfg with % interpolation: a % in a path is %%
        for key, value in cfg[section].items():
            cfg[section][key] = value.replace("%", "%%")
    out = io.StringIO()
    out.write(
        "# written by `airflow-infra platform up`: changes here are overwritten; see [platform] in airflow-infra.toml\n"
    )
    cfg.write(out)
    return out.getvalue()


def secrets_env(store: FileSecretStore, metadata_url: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    if store.get("platform/fernet") is None:
        store.put("platform/fernet", Fernet.generate_key().decode())
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        # psycopg 3 is async too (Airflow would otherwise want asyncpg)
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_url.replace("+psycopg:", "+psycopg_async:", 1),
        "AIRFLOW__CORE__FERNET_KEY": store.get("platform/fernet") or "",
        "AIRFLOW__API_AUTH__JWT_SECRET": store.get_or_create("platform/jwt"),
        SESSION_KEY: store.get_or_create("platform/session"),
    }


def component_env(component: str, env: dict[str, str]) -> dict[str, str]:
    """What one component is given: the session key only to the api-server, which signs the UI's sessions."""
    return env if component == "api-server" else {k: v for k, v in env.items() if k != SESSION_KEY}


def process_env(airflow: Path, airflow_home: Path, home: Path, secrets: dict[str, str]) -> dict[str, str]:
    """The caller's environment without its Airflow settings (the platform's own win) nor its airflow-infra
    overrides (each project's config is what its file says, for the secrets backend), and ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
        and k != "AIRFLOW_HOME"
        and not (k.startswith("AIRFLOW_INFRA_") and "__" in k)
    }
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW_INFRA_HOME=str(home),
        PATH=f"{airflow.parent}{os.pathsep}{env.get('PATH', os.defpath)}",
        **secrets,
    )
    return env


def write_passwords(airflow_home: Path, password: str) -> None:
    """The simple auth manager's own password file (0600): the one secret Airflow reads from a file."""
    write_private(airflow_home / "passwords.json", json.dumps({ADMIN: password}))
