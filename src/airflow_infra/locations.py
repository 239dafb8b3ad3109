"""Where a project keeps data and state, and the one containment rule over all of it (invariant 6, docs/architecture.md).

Every place that holds data or state is a Location: the bucket (a directory, an S3 bucket or a prefix
of one), the backup location, the state (its file and the lock, backup and temporary files beside
it, or its S3 key and the names the S3 backend keeps beside it), the local server's data directory
and the secret store. Before any plan, apply, destroy or restore, check() resolves them (links
followed, prefixes normalised) and refuses, in one line naming both, any two that must not overlap:

- a backup location and a bucket, either inside (or equal to) the other: destroy would delete the
  backups it has just written, or back a bucket up into itself;
- the state, the home's data directory, secret store or backups inside (or equal to) the bucket:
  destroy --force-delete-data would empty them with it;
- a bucket around the home's data directory, secret store or backups (the same, from above);
- a directory of ours (the state, backups) inside any local bucket, which another project's
  destroy may empty (known from the bucket's marker);
- a PostgreSQL state inside the project's own database, which destroy drops.

Whose a bucket or prefix is, and whether it holds someone's objects, is the providers' part
(ownership markers, read on refresh); this module asks no server.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .files import read_text

if TYPE_CHECKING:
    from .config import Config

BUCKET_MARKER = ".airflow-infra-bucket"  # a local bucket's marker file (providers/localdir.py)


@dataclass(frozen=True)
class Location:
    what: str  # words for messages: the setting and where it points
    store: str  # "file", or "s3:<endpoint>/<bucket>"
    path: str  # file: an absolute, resolved path; s3: a key prefix ("" = the whole bucket)

    def within(self, other: Location) -> bool:
        """Inside other, or the same place."""
        if self.store != other.store:
            return False
        if self.store == "file":
            return self.path == other.path or self.path.startswith(other.path.rstrip("/") + "/")
        return self.path.startswith(other.path)

    def overlaps(self, other: Location) -> bool:
        return self.within(other) or other.within(self)


def _file(what: str, path: str | Path) -> Location:
    resolved = Path(path).expanduser().resolve()  # links followed: two spellings of one place are one place
    return Location(f"{what} {resolved}", "file", str(resolved))


def _s3(what: str, bucket: str, prefix: str, endpoint: str | None) -> Location:
    return Location(f"{what} s3://{bucket}/{prefix}", f"s3:{endpoint or ''}/{bucket}", prefix)


def s3_url(what: str, url: str, endpoint: str | None) -> Location:
    """s3://bucket/prefix, the prefix normalised as [bucket] prefix is ("a//b" and "a/b/" are "a/b/")."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    parts = [p for p in prefix.split("/") if p]
    return _s3(what, bucket, "/".join(parts) + "/" if parts else "", endpoint)


def backup_dir(config: Config, home: Path) -> Path:
    """Where database dumps and local bucket archives go: [bucket] backup when it is a directory
    (already resolved against the project's directory by load_config), else the home's backups/."""
    backup = config.bucket.backup
    if backup and not backup.startswith("s3://"):
        return Path(backup).expanduser()
    return home / "backups"


def _pg(what: str, dsn: str | None, dbname: str | None = None) -> Location | None:
    """A PostgreSQL database as a location ("pg:host:port", the database's name as its path); None
    when the DSN is not there or cannot be read (its own command says so)."""
    if not dsn:
        return None
    from .pgerrors import conninfo

    info = conninfo(dsn)
    if info is None:  # a malformed DSN is reported, without its text, where it is used
        return None
    host = str(info.get("hostaddr") or info.get("host") or "localhost").split(",")[0]
    port = str(info.get("port") or 5432).split(",")[0]
    db = dbname or str(info.get("dbname") or info.get("user") or "")
    return Location(f"{what} (database {db!r} on {host}:{port})", f"pg:{_machine(host)}:{port}", db + "/")


def _machine(host: str) -> str:
    """Which machine host names, as far as this one can tell: "this machine" for a Unix socket, any
    spelling of a loopback address (127.1, ::ffff:127.0.0.1, LOCALHOST), 0.0.0.0 and this machine's
    own names and addresses; else the addresses it resolves to (the name itself when it resolves to
    none): two spellings of one server are one place."""
    import ipaddress
    import socket

    if not host or host.startswith("/") or host.startswith("@"):
        return "this machine"
    try:
        found = {str(a[4][0]) for a in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return host.lower()
    own: set[str] = set()
    with contextlib.suppress(OSError, UnicodeError):
        own = {str(a[4][0]) for a in socket.getaddrinfo(socket.gethostname(), None)}
    addresses = {ipaddress.ip_address(a.split("%")[0]) for a in found}
    mapped = {a.ipv4_mapped or a if isinstance(a, ipaddress.IPv6Address) else a for a in addresses}
    if any(a.is_loopback or a.is_unspecified for a in mapped) or found & own:
        return "this machine"
    return ",".join(sorted(str(a) for a in mapped))


def _database(config: Config, home: Path) -> Location | None:
    """The project's database, where it can be told without a connection (not on aws: its endpoint is
    RDS's to give)."""
    import json
    import os

    if config.target.kind == "local":
        try:
            port = json.loads(read_text(home / "postgres" / "server.json"))["port"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no server yet: no state can be kept in it either
        return _pg("the project's database", f"host=127.0.0.1 port={port}", config.database_name)
    if config.target.kind == "server":
        return _pg("the project's database", os.environ.get(config.database.admin_dsn_env), config.database_name)
    return None


def project_locations(config: Config, project_dir: Path, home: Path) -> tuple[Location, list[Location], list[Location]]:
    """(the bucket, the backup locations, the places of the state and of the home that hold data)."""
    b = config.bucket
    endpoint = b.endpoint_url
    if config.target.kind == "local":
        bucket = _file("the bucket", b.path or home / "buckets" / config.project.name)
    else:
        bucket = _s3("the bucket", config.bucket_name, b.prefix, endpoint)
    backups = [_file("the backup location", backup_dir(config, home))]
    if b.backup and b.backup.startswith("s3://"):
        backups.append(s3_url("the backup location ([bucket] backup)", b.backup, endpoint))
    elif b.backup:
        backups[0] = _file("the backup location ([bucket] backup)", backup_dir(config, home))
    kept = [
        _file("the local server's data directory", home / "postgres"),
        _file("the secret store", home / "secrets.json"),
    ]
    st = config.state
    if st.backend == "local":
        kept.append(_file("the state ([state] path)", (project_dir / st.path).parent))
    elif st.backend == "s3" and st.bucket:
        key = st.key or f"{config.project.name}/{config.project.environment}/airflow-infra.json"
        # the same endpoint as the bucket's only when boto3's chain gives both theirs: compared by name
        kept.append(_s3("the state ([state] key)", st.bucket, key, endpoint if config.target.kind != "local" else None))
    elif st.backend == "postgres":
        import os

        state_db = _pg("the state ([state] dsn_env)", os.environ.get(st.dsn_env))
        if state_db is not None:
            kept.append(state_db)
    return bucket, backups, kept


def _marked_parent(loc: Location) -> Path | None:
    """The local bucket directory loc lies in (its marker there, or in a parent); None."""
    path = Path(loc.path)
    for parent in (path, *path.parents):
        if (parent / BUCKET_MARKER).is_file():
            return parent
    return None


def check(config: Config, project_dir: Path, home: Path) -> None:
    """ConfigError naming both places when two of the project's locations overlap where they must
    not (see the module's docstring). Nothing is asked of a server: only the local file system's names
    and markers are read (and, beside a PostgreSQL state, the database hosts' addresses looked up)."""
    bucket, backups, kept = project_locations(config, project_dir, home)

    def refuse(a: Location, b: Location, why: str) -> None:
        raise ConfigError(f"{a.what} lies {'in' if a.within(b) else 'around'} {b.what}: {why}; nothing was changed")

    # the project's database matters only beside a state kept in PostgreSQL (a name lookup otherwise saved)
    database = _database(config, home) if any(p.store.startswith("pg:") for p in kept) else None
    for place in kept:
        if database is not None and place.within(database):
            refuse(
                place,
                database,
                "destroy would drop it with the project's database: keep the state in a database of its own",
            )
    for backup in backups:
        if backup.overlaps(bucket):
            refuse(
                backup,
                bucket,
                "destroy --force-delete-data would write its backup into what it then deletes: "
                "set [bucket] backup to a place outside the bucket",
            )
    for place in kept:
        if place.within(bucket):
            refuse(place, bucket, "destroy --force-delete-data would empty it with the bucket: move one of them")
        if bucket.within(place):
            refuse(
                bucket,
                place,
                "a bucket lives in a place of its own, never among what airflow-infra keeps "
                "(destroy would empty that with it): put the bucket elsewhere",
            )
    for loc in [*backups, *kept]:
        if loc.store != "file" or loc.within(bucket):
            continue
        found = _marked_parent(loc)
        if found is not None and str(found) != bucket.path:
            raise ConfigError(
                f"{loc.what} lies in the bucket directory {found} (its marker {BUCKET_MARKER} says "
                "so): that bucket's destroy would empty it; move it outside every bucket; nothing was "
                "changed"
            )
