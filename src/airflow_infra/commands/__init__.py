"""The public API: one plain function per CLI command (after alembic's command.py).

The CLI parses, calls one of these and renders the result; a script can do exactly what the CLI
does. Options are keyword-only. Every function raises only AirflowInfraError subclasses on purpose.
project.py: one project; state.py: its state; local.py: the local server; fleet.py: the registry, DAG
import and --all; airflow.py: Airflow's side;
terraform_import.py: from the seed's Terraform; restore.py: backups back into a project; rotate.py:
new passwords; platform.py: the local Airflow 3 and its DAG bundles.
"""

from .._api import COMMANDS

# `name as name`: a re-export that type checkers see (they read no __all__ made at run time)
from .airflow import connections as connections
from .airflow import connections_push as connections_push
from .airflow import doctor as doctor
from .airflow import new as new
from .backup import BackupFile as BackupFile
from .backup import BackupResult as BackupResult
from .backup import backup as backup
from .backup import backup_list as backup_list
from .fleet import FleetResult as FleetResult
from .fleet import dags_install_importer as dags_install_importer
from .fleet import dags_sync as dags_sync
from .fleet import fleet_apply as fleet_apply
from .fleet import fleet_outputs as fleet_outputs
from .fleet import fleet_plan as fleet_plan
from .fleet import projects_add as projects_add
from .fleet import projects_list as projects_list
from .fleet import projects_remove as projects_remove
from .fleet import projects_show as projects_show
from .load import LoadResult as LoadResult
from .load import UnloadResult as UnloadResult
from .load import load as load
from .load import unload as unload
from .local import local_install_service as local_install_service
from .local import local_server as local_server
from .local import local_start as local_start
from .local import local_status as local_status
from .local import local_stop as local_stop
from .platform import PlatformStatus as PlatformStatus
from .platform import dags_bundles as dags_bundles
from .platform import platform_down as platform_down
from .platform import platform_logs as platform_logs
from .platform import platform_status as platform_status
from .platform import platform_up as platform_up
from .project import Project as Project
from .project import apply as apply
from .project import destroy as destroy
from .project import import_resource as import_resource
from .project import init as init
from .project import load_plan as load_plan
from .project import open_project as open_project
from .project import output as output
from .project import outputs as outputs
from .project import plan as plan
from .project import save_plan as save_plan
from .project import up as up
from .restore import Restored as Restored
from .restore import restore as restore
from .rotate import rotate as rotate
from .state import backend_bootstrap as backend_bootstrap
from .state import force_unlock as force_unlock
from .state import lock_info as lock_info
from .state import state_list as state_list
from .state import state_migrate as state_migrate
from .state import state_restore as state_restore
from .state import state_rollback as state_rollback
from .state import state_show as state_show
from .state import state_versions as state_versions
from .terraform_import import TerraformImport as TerraformImport
from .terraform_import import import_terraform as import_terraform

__all__ = list(COMMANDS)  # test_public_api checks that each is defined here
