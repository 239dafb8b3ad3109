"""`airflow-infra platform up|status|logs|down` and `dags bundles`: a local Airflow 3 wired to every
registered project (see platform/)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import children
from ..errors import ConfigError, Interrupted, PlatformError
from ..files import write_private
from ..home import home_dir

if TYPE_CHECKING:
    from ..localserver.server import LocalServer
    from ..platform.processes import Supervisor
    from ..platform.settings import PlatformSettings


@dataclass
class PlatformStatus:
    url: str
    user: str
    components: list[dict[str, Any]]
    health: dict[str, Any] | None
    started: list[str] = field(default_factory=list)
    password: str | None = None

    @property
    def healthy(self) -> bool:
        from ..platform.processes import healthy

        return all(c["running"] for c in self.components) and healthy(self.health)

    def to_json(self) -> dict[str, Any]:
        out = {
            "url": self.url,
            "user": self.user,
            "healthy": self.healthy,
            "components": self.components,
            "health": self.health,
            "started": self.started,
        }
        if self.password is not None:
            out["password"] = self.password
        return out


def _root(home: Path) -> Path:
    return home / "platform"


def _registry(registry: str | Path) -> Path:
    from ..registry import read

    path = Path(registry).resolve()
    read(path)  # a missing or bad registry: its own one-line error
    return path


def dags_bundles(registry: str | Path, *, fmt: str = "json") -> str:
    from ..airflow.bundles import bundles, render

    return render(bundles(_registry(registry)), fmt)


def _running_port(root: Path) -> int | None:
    """The port the running platform was started with (its settings may have changed since)."""
    try:
        return int(json.loads((root / "run" / "settings.json").read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def platform_status(registry: str | Path = "projects.csv", *, reveal: bool = False) -> PlatformStatus:
    from ..platform.airflowcfg import ADMIN, ADMIN_PASSWORD
    from ..platform.processes import COMPONENTS, Supervisor, health
    from ..platform.settings import load_settings
    from ..secretstores.file import FileSecretStore

    home = home_dir()
    sup = Supervisor(_root(home))
    comps = []
    for c in COMPONENTS:
        found = sup.running(c)
        comps.append(
            {"name": c, "running": found is not None, "pid": found.pid if found else None, "log": str(sup.log(c))}
        )
    port = (_running_port(_root(home)) if any(c["running"] for c in comps) else None) or load_settings(
        Path(registry)
    ).port
    answer = health(port) if comps[0]["running"] else None
    return PlatformStatus(
        f"http://127.0.0.1:{port}",
        ADMIN,
        comps,
        answer,
        password=FileSecretStore(home).get(ADMIN_PASSWORD) if reveal else None,
    )


def platform_up(
    registry: str | Path = "projects.csv", *, on_progress: Callable[[str], None] | None = None, timeout: float = 300.0
) -> PlatformStatus:
    """Start what is not running (or runs with another configuration, or hangs) and wait until Airflow is
    healthy; a no-op when all is. What can be checked is checked before a working platform is touched;
    on a failure after that, the components started by this call are stopped again. Ctrl-C says what
    state it left the platform in (Interrupted)."""
    from ..files import make_private_once
    from ..platform.settings import load_settings

    progress = on_progress or (lambda message: None)
    registry = _registry(registry)
    settings = load_settings(registry)
    home = home_dir()
    root = _root(home)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    make_private_once(root)
    _say_conflicts(registry, progress)
    try:
        return _up(registry, settings, root, home, progress, timeout)
    except KeyboardInterrupt:
        raise Interrupted(_interrupted(root)) from None


def _say_conflicts(registry: Path, progress: Callable[[str], None]) -> None:
    """Names two projects claim: the secrets backend serves them to nobody; said before Airflow starts."""
    from ..claims import claims
    from ..registry import read

    for line in claims(registry, read(registry)).conflicts():
        progress(f"warning: {registry}: {line}: served to nobody")


def _interrupted(root: Path) -> str:
    """What Ctrl-C left: which components run, which do not, and what to do."""
    from ..platform.processes import COMPONENTS, Supervisor

    sup = Supervisor(root)
    up = [c for c in COMPONENTS if sup.running(c) is not None]
    down = [c for c in COMPONENTS if c not in up]
    if not up:
        return (
            "Interrupted: the platform is stopped (what this run started was stopped again); "
            "`airflow-infra platform up` starts it"
        )
    if not down:
        return "Interrupted: every component was running already and still is; nothing was changed"
    return (
        f"Interrupted: the platform is partly up ({', '.join(up)} running; {', '.join(down)} stopped): "
        "`airflow-infra platform up` starts the rest, `airflow-infra platform down` stops it all"
    )


def _up(
    registry: Path, settings: PlatformSettings, root: Path, home: Path, progress: Callable[[str], None], timeout: float
) -> PlatformStatus:
    from ..airflow.bundles import bundles
    from ..localserver.binaries import port_in_use
    from ..localserver.server import LocalServer
    from ..platform import airflowcfg, metadata
    from ..platform.environment import airflow_executable
    from ..platform.processes import COMPONENTS, Supervisor

    airflow = airflow_executable(settings, root, progress)
    server = LocalServer(home)
    url = metadata.ensure(server)
    airflow_home = root / "airflow"
    airflow_home.mkdir(exist_ok=True, mode=0o700)
    cfg = airflowcfg.airflow_cfg(settings, airflow_home, registry, bundles(registry))
    secrets = airflowcfg.secrets_env(server.secrets, url)
    env = airflowcfg.process_env(airflow, airflow_home, home, secrets)
    digest = hashlib.sha256((cfg + str(airflow) + repr(sorted(secrets.items()))).encode()).hexdigest()[:16]
    sup = Supervisor(root, airflow_home)
    with sup.locked():
        api = sup.running("api-server")
        ours = api is None and bool(sup.leftovers("api-server"))  # a copy whose pid file was lost holds the port
        if (api is None or _running_port(root) != settings.port) and port_in_use(settings.port) and not ours:
            raise PlatformError(
                f"[platform] port: 127.0.0.1:{settings.port} is in use by another program; set "
                f"another port in [platform] of {registry.parent / 'airflow-infra.toml'}; nothing "
                "was started or stopped"
            )
        for c in COMPONENTS:
            found = sup.running(c)
            if found is not None and found.digest != digest:  # a project added, a new port or version
                progress(f"{c}: restarting with the new configuration")
                sup.stop(c)
            elif found is None and sup.leftovers(c):  # hung, or its main process killed and children left
                progress(f"{c}: stopping what is left of it")
                sup.stop(c, timeout=10)
        todo = [c for c in COMPONENTS if sup.running(c) is None]
        write_private(airflow_home / "airflow.cfg", cfg)
        airflowcfg.write_passwords(airflow_home, server.secrets.get_or_create(airflowcfg.ADMIN_PASSWORD))
        _migrate(airflow, env, secrets, root, server, progress)
        write_private(root / "run" / "settings.json", json.dumps({"port": settings.port}) + "\n")
        started: list[str] = []
        since = time.time()
        try:
            for c in todo:
                argv = [str(airflow), c] + {
                    "api-server": ["--host", "127.0.0.1", "--port", str(settings.port)],
                    "scheduler": ["--skip-serve-logs"],
                    "triggerer": ["--skip-serve-logs"],
                }.get(c, [])
                sup.start(c, argv, airflowcfg.component_env(c, env), airflow_home, digest)
                started.append(c)
                progress(f"{c}: started (log: {sup.log(c)})")
            _wait_healthy(sup, secrets, settings.port, timeout, progress, since=since if started else 0.0)
        except BaseException:
            for c in started:
                sup.stop(c, timeout=10)
            raise
    status = platform_status(registry)
    status.started = started
    return status


def _migrate(
    airflow: Path,
    env: dict[str, str],
    secrets: dict[str, str],
    root: Path,
    server: LocalServer,
    progress: Callable[[str], None],
) -> None:
    """`airflow db migrate`, when this Airflow installation has not migrated this database: the marker
    names both, and the database must hold Airflow's schema (one dropped and made again has none)."""
    from ..platform.metadata import migrated

    marker = root / "run" / "migrated"
    key = hashlib.sha256((str(airflow.resolve()) + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).encode()).hexdigest()
    if marker.is_file() and marker.read_text().strip() == key and migrated(server):
        return
    progress("migrating Airflow's metadata database")
    log = root / "logs" / "db-migrate.log"
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "w") as out:
        proc = children.run(
            [airflow, "db", "migrate"],
            what="airflow db migrate",
            env=env,
            stdout=out,
            timeout=900,
            check=False,
            error=PlatformError,
            umask=0o077,
        )
    last = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:] or ["no output"]
    if proc.returncode != 0:
        raise PlatformError(
            f"`airflow db migrate` failed: {_redacted(last[0], secrets)[:300]} (log: {log}); nothing was started"
        )
    if not migrated(server):
        raise PlatformError(
            f"`{airflow} db migrate` made no Airflow schema: is [platform] airflow_bin an Airflow? nothing was started"
        )
    marker.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(marker, key + "\n")


def _redacted(text: str, secrets: dict[str, str]) -> str:
    """text (a process's last words, for an error) without a secret the processes were given (secrets_env),
    nor the metadata password inside the database's URL."""
    from urllib.parse import unquote, urlsplit

    password = urlsplit(secrets.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")).password
    hidden = {v for v in secrets.values() if v} | ({password, unquote(password)} if password else set())
    for s in sorted(hidden, key=len, reverse=True):
        text = text.replace(s, "***")
    return text


def _wait_healthy(
    sup: Supervisor,
    secrets: dict[str, str],
    port: int,
    timeout: float,
    progress: Callable[[str], None],
    *,
    since: float = 0.0,
) -> None:
    """Until every part is healthy with a heartbeat after `since` (the restarted ones' own)."""
    from ..platform.processes import COMPONENTS, health, healthy

    deadline = time.monotonic() + timeout
    told = ""
    while True:
        for c in COMPONENTS:
            if sup.running(c) is None:
                raise PlatformError(
                    f"{c} exited while starting: {_redacted(sup.tail(c), secrets)[:300]!r} (log: {sup.log(c)}); "
                    "what this run started was stopped"
                )
        answer = health(port)
        if healthy(answer, since=since):
            return
        waiting = (
            "the api-server"
            if answer is None
            else ", ".join(
                p
                for p in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if (answer.get(p) or {}).get("status") != "healthy"
            )
        )
        if waiting != told:
            progress(f"waiting for {waiting}")
            told = waiting
        if time.monotonic() > deadline:
            raise PlatformError(
                f"Airflow is not healthy after {int(timeout)} s (waiting for {waiting}); logs in "
                f"{sup.logs}; what this run started was stopped"
            )
        time.sleep(0.25)  # a request a quarter second: nothing next to what the processes do


def platform_down(*, timeout: float = 30.0) -> list[str]:
    """Stop every component and what it left (SIGTERM, SIGKILL after timeout); those that were there."""
    from ..platform.processes import COMPONENTS, Supervisor

    sup = Supervisor(_root(home_dir()))
    with sup.locked():
        return [c for c in reversed(COMPONENTS) if sup.stop(c, timeout=timeout)]


def platform_logs(component: str | None = None) -> list[Path]:
    from ..platform.processes import COMPONENTS, Supervisor

    if component is not None and component not in COMPONENTS:
        raise ConfigError(f"COMPONENT {component!r}: one of {', '.join(COMPONENTS)}")
    sup = Supervisor(_root(home_dir()))
    return [sup.log(c) for c in ([component] if component else COMPONENTS) if sup.log(c).is_file()]
