"""Commands on the local PostgreSQL server every local project shares: start, stop, status, and
the service unit that starts it at boot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..home import home_dir

if TYPE_CHECKING:
    from ..localserver.server import LocalServer
    from ..localserver.service import Service

# Heavier modules (the engine, providers, psycopg) are imported inside the functions that need
# them, so that `airflow-infra --help` and config errors stay fast.


def local_server(*, pg_bindir: str | None = None) -> LocalServer:
    from ..localserver.server import LocalServer

    return LocalServer(home_dir(), pg_bindir=pg_bindir)


def local_start(*, port: int | None = None, pg_bindir: str | None = None) -> dict[str, Any]:
    return local_server(pg_bindir=pg_bindir).start(port=port)


def local_stop() -> dict[str, Any]:
    return local_server().stop()


def local_install_service(*, scope: str | None = None, print_only: bool = False) -> Service:
    """The systemd unit that starts the local server at boot (service.Service); installed unless print_only."""
    from ..home import existing_home
    from ..localserver.service import install, unit

    found = unit(existing_home() if not print_only else home_dir(), scope=scope)
    return found if print_only else install(found)


def local_status() -> dict[str, Any]:
    return local_server().status()
