"""The embedded local target: a directory as bucket, a database on the managed local PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Config
from ..localserver.server import LocalServer
from ..outputs import shaped
from ..providers.base import Provider
from ..resources import Resource
from ..state.base import State
from .base import Target
from .bucket import LocalWorkfiles
from .database import Database


class LocalTarget(Target):
    def __init__(self, config: Config, home: Path, *, lock_timeout: float = 0.0):
        super().__init__(config, home, lock_timeout=lock_timeout)
        self.server = LocalServer(home, pg_bindir=config.target.pg_bindir)
        self.bucket = LocalWorkfiles(config, home)
        self.database = Database(
            config,
            self.secrets,
            connect=self.server.connect,
            server_key=lambda: f"local:{home}",
            lock_timeout=lock_timeout,
            private_server=True,
            bindir=lambda: self.server.bindir,
            client_env=self.server.client_env,
        )

    def preflight(self) -> None:
        """pg_bindir chooses the binaries of a server still to be made; said when the server runs with others."""
        wanted, info = self.config.target.pg_bindir, self.server.info()
        if wanted and info and Path(wanted).expanduser().resolve() != Path(info["bindir"]).resolve():
            import logging

            logging.getLogger(__name__).warning(
                f"[target] pg_bindir = {wanted!r} is not what the local server runs with ({info['bindir']}): it "
                "chooses the binaries of a server still to be made; an existing one keeps its own (its data "
                "directory is of their major version)"
            )

    def desired(self) -> list[Resource]:
        return [*self.bucket.resources(), *self.database.resources()]

    def providers(self, lineage: str) -> dict[str, Provider]:
        owner = self.owner(lineage)
        return {p.type: p for p in (*self.bucket.providers(owner), *self.database.providers(owner))}

    def close(self) -> None:
        self.database.close()

    def outputs(self, state: State, *, reveal: bool = True) -> dict[str, dict[str, Any]]:
        out = self.database.outputs(state, host="127.0.0.1", port=(self.server.info() or {}).get("port"), reveal=reveal)
        return shaped({**out, **self.bucket.outputs(state)} if out else {})
