"""`airflow-infra restore BACKUP`: put a backup that --force-delete-data wrote back into a project.

A database dump goes into the project's database, a local bucket archive into its directory, an S3
bucket backup (its manifest) into its bucket or prefix. Into an empty one only: anything there
needs force_delete_data, and is backed up first, like every other deletion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..backups import is_bucket_backup
from ..errors import AirflowInfraError, ConfigError, DataLossRefused, StateError
from .project import Project


@dataclass
class Restored:
    address: str  # what was restored into
    source: str  # the backup
    items: int  # files or object versions written (1 for a dump)
    backups: list[str]  # what was there before, backed up first (with force_delete_data)
    skipped: list[str]  # members of the backup not restored, each with why (a link out of the bucket)


def _kind(source: str) -> tuple[str, ...]:
    """The resource types a backup can go into, told by its name."""
    if source.endswith(".dump"):
        return ("postgres_database",)
    if source.endswith(".tar.gz"):
        return ("local_bucket",)
    if is_bucket_backup(source):
        return ("s3_bucket", "s3_prefix")
    raise ConfigError(
        f"BACKUP {source!r}: not a backup airflow-infra writes (a .dump, a .tar.gz or a "
        "*.manifest.json, as printed by `destroy --force-delete-data`)"
    )


def restore(project: Project, source: str, *, force_delete_data: bool = False, lock_timeout: float = 0.0) -> Restored:
    from ..resources import Observed
    from ..state.base import transaction

    project.check_locations()
    types = _kind(source)
    if not source.startswith("s3://"):
        if not Path(source).is_file():
            raise ConfigError(f"BACKUP {source!r}: no such file")
        source = str(Path(source).resolve())
    target = project.target()
    try:
        with transaction(project.backend(), "restore", timeout=lock_timeout) as txn:
            r = next((r for r in txn.state.resources.values() if r.type in types), None)
            if r is None:
                raise StateError(
                    f"{project.dir}: the project has no {' or '.join(types)} in its state to restore "
                    "into: run `airflow-infra up` (or apply) first"
                )
            provider = target.providers(project.claim(txn.state).lineage)[r.type]
            holds = provider.holds_data(r, Observed(r.attrs))
            backups = []
            if holds:
                if not force_delete_data:
                    raise DataLossRefused(
                        f"{r.address} holds {holds}: restore goes into an empty one; pass "
                        "--force-delete-data to back that up and replace it"
                    )
                backups.append(str(provider.backup(r, Observed(r.attrs), project.backup_dir)))
            try:
                items, skipped = provider.restore(r, source, replace=bool(holds))
            except AirflowInfraError as exc:
                if backups:  # never leave the user without the path of what was there
                    raise type(exc)(f"{exc} (what {r.address} held is backed up at {backups[0]})") from exc
                raise
            return Restored(r.address, source, items, backups, skipped)
    finally:
        target.close()
