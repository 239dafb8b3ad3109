"""The public API: one plain function per CLI command (after alembic's command.py).

The CLI parses, calls one of these and renders the result; a script can do exactly what the CLI
does. Options are keyword-only. Every function raises only AirflowInfraError subclasses on purpose.
core.py: one project; fleet.py: the registry, DAG import and --all; airflow.py: Airflow's side;
terraform_import.py: from the seed's Terraform; restore.py: backups back into a project; rotate.py:
new passwords; platform.py: the local Airflow 3 and its DAG bundles.
"""

from .._api import COMMANDS
from .airflow import connections, connections_push, doctor, new
from .core import (
    Project,
    apply,
    backend_bootstrap,
    destroy,
    force_unlock,
    import_resource,
    init,
    load,
    load_plan,
    local_install_service,
    local_server,
    local_start,
    local_status,
    local_stop,
    lock_info,
    output,
    outputs,
    plan,
    save_plan,
    state_list,
    state_migrate,
    state_restore,
    state_show,
    state_versions,
    up,
)
from .fleet import (
    FleetResult,
    dags_install_importer,
    dags_sync,
    fleet_apply,
    fleet_outputs,
    fleet_plan,
    projects_add,
    projects_list,
    projects_remove,
    projects_show,
)
from .platform import PlatformStatus, dags_bundles, platform_down, platform_logs, platform_status, platform_up
from .restore import Restored, restore
from .rotate import rotate
from .terraform_import import TerraformImport, import_terraform

__all__ = list(COMMANDS)  # test_public_api checks that each is defined here
