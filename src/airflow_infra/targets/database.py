"""The database part every target assembles: the project's database, roles and schemas on one
PostgreSQL server, and the connection facts it gives. And DsnServer: an existing server reached
with a connection string (the server target's, or an RDS instance's master user)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError, ProviderError
from ..outputs import database_outputs
from ..ownership import Owner
from ..pgerrors import translated
from ..providers.base import Provider
from ..providers.postgres import DatabaseProvider, PgAdmin, RoleProvider, SchemaProvider, database_resources
from ..resources import Resource
from ..secretstores import SecretStore
from ..state.base import State


class Database:
    """connect(dbname) opens an admin session; server_key names the server and admin role (the
    session pool's key); depends_on is
    what every PostgreSQL resource waits for (the RDS instance)."""

    def __init__(
        self,
        config: Config,
        secrets: SecretStore,
        *,
        connect: Callable[[str], Any],
        server_key: Callable[[], str],
        bindir: Callable[[], Path],
        client_env: Callable[[], dict[str, str]],
        depends_on: Sequence[str] = (),
        lock_timeout: float = 0.0,
        private_server: bool = False,
    ):
        """private_server: the server is ours alone (the local one): project roles are kept out of
        its other databases too."""
        self.config = config
        self.private_server = private_server
        self.lock_timeout = lock_timeout
        self.secrets = secrets
        self._connect = connect
        self._server_key = server_key
        self._bindir = bindir
        self._client_env = client_env
        self._depends_on = tuple(depends_on)
        self._admin: PgAdmin | None = None

    def admin(self) -> PgAdmin:
        if self._admin is None:
            self._admin = PgAdmin(
                self._connect,
                server=self._server_key(),
                secrets=self.secrets,
                bindir=self._bindir,
                client_env=self._client_env,
                lock_timeout=self.lock_timeout,
            )
        return self._admin

    def resources(self) -> list[Resource]:
        c = self.config
        return [
            Resource(r.type, r.name, r.attrs, (*r.depends_on, *self._depends_on))
            for r in database_resources(
                c.project.name,
                c.database.schemas,
                environment=c.project.environment,
                private_server=self.private_server,
                database=c.database_name,
            )
        ]

    def providers(self, owner: Owner) -> list[Provider]:
        admin = self.admin()  # sessions open on first use: the server may not exist yet
        self.secrets.prefetch([r.attrs["password_ref"] for r in self.resources() if r.attrs.get("password_ref")])
        return [
            RoleProvider(admin, owner, private_server=self.private_server),
            DatabaseProvider(admin, owner),
            SchemaProvider(admin, owner),
        ]

    def outputs(self, state: State, *, host: str, port: int | None, reveal: bool) -> dict[str, tuple[Any, bool]]:
        c = self.config
        return database_outputs(
            state, self.secrets, host=c.database.host or host, port=c.database.port or port, reveal=reveal
        )

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()


class DsnServer:
    """An existing PostgreSQL server and its admin connection string, read by dsn() when needed
    (never from a file). name says where the DSN comes from, for messages (an environment
    variable); label names the server. stale() says whether a failed connect may be the DSN's
    fault (read earlier, the password changed since): then forget() and one more try."""

    def __init__(
        self,
        dsn: Callable[[], str],
        *,
        name: str,
        label: str,
        pg_bindir: str | None,
        stale: Callable[[], bool] = lambda: False,
        forget: Callable[[], None] = lambda: None,
    ):
        self.dsn = dsn
        self.name = name
        self.label = label
        self._pg_bindir = pg_bindir
        self._stale = stale
        self._forget = forget

    def _open(self, dbname: str) -> Any:
        import psycopg

        with translated(f"cannot connect to {self.label} (database {dbname!r})", connecting=True):
            return psycopg.connect(self.dsn(), dbname=dbname, autocommit=True, connect_timeout=10)

    def connect(self, dbname: str) -> Any:
        stale = self._stale()
        try:
            return self._open(dbname)
        except ProviderError:
            if not stale:  # just read: asking again would only wait for the same failure
                raise
            self._forget()
            return self._open(dbname)

    def _parts(self) -> dict[str, Any]:
        from ..pgerrors import conninfo

        parts = conninfo(self.dsn())
        if parts is None:
            raise ConfigError(f"{self.name}: not a valid PostgreSQL connection string")
        return parts

    def address(self) -> tuple[str, int]:
        """(host, port) as the DSN says them."""
        info = self._parts()
        return str(info.get("host") or "localhost"), int(info.get("port") or 5432)

    def key(self) -> str:
        return "server:" + hashlib.sha256(self.dsn().encode()).hexdigest()  # the DSN holds a password

    def bindir(self) -> Path:
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            from ..localserver.binaries import find_bindir

            return find_bindir(self._pg_bindir)
        return Path(pg_dump).parent

    def client_env(self) -> dict[str, str]:
        from ..children import minimal_env

        keys = {
            "host": "PGHOST",
            "port": "PGPORT",
            "user": "PGUSER",
            "password": "PGPASSWORD",
            "sslmode": "PGSSLMODE",
            "sslrootcert": "PGSSLROOTCERT",
            "hostaddr": "PGHOSTADDR",
        }
        return minimal_env(**{keys[k]: str(v) for k, v in self._parts().items() if k in keys})

    def database(
        self,
        config: Config,
        secrets: SecretStore,
        *,
        server_key: Callable[[], str] | None = None,
        depends_on: Sequence[str] = (),
        lock_timeout: float = 0.0,
    ) -> Database:
        return Database(
            config,
            secrets,
            connect=self.connect,
            server_key=server_key or self.key,
            bindir=self.bindir,
            client_env=self.client_env,
            depends_on=depends_on,
            lock_timeout=lock_timeout,
        )
