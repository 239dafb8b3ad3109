"""`local install-service`: a systemd unit that starts the local PostgreSQL at boot and stops it cleanly,
so that Airflow's tasks find it after a reboot without waiting for some airflow-infra command.

Type=oneshot with RemainAfterExit: `local start` starts the server in the background and returns, and
`local stop` is what systemd runs at shutdown (a fast shutdown: sessions ended, nothing lost). The
unit is a system one when run as root (the server then runs as its own unprivileged account, as
always), a user one otherwise (`loginctl enable-linger` makes it start before the user logs in).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import children
from ..errors import AirflowInfraError


@dataclass(frozen=True)
class Service:
    name: str
    path: Path
    text: str
    scope: str  # "system" or "user"
    installed: bool = False


def unit(home: Path, *, scope: str | None = None) -> Service:
    scope = scope or ("system" if os.geteuid() == 0 else "user")
    name = f"airflow-infra-local-{hashlib.sha256(str(home).encode()).hexdigest()[:8]}.service"  # one per home
    base = (
        Path("/etc/systemd/system")
        if scope == "system"
        else Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "systemd" / "user"
    )
    run = shlex.join([sys.executable, "-m", "airflow_infra"])
    text = f"""[Unit]
Description=airflow-infra's local PostgreSQL ({home})
After=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
Environment={shlex.quote(f"AIRFLOW_INFRA_HOME={home}")}
ExecStart={run} local start
ExecStop={run} local stop
TimeoutStartSec=300
TimeoutStopSec=120

[Install]
WantedBy={"multi-user.target" if scope == "system" else "default.target"}
"""
    return Service(name, base / name, text, scope)


def install(service: Service) -> Service:
    """Write the unit, then enable and start it; refused where systemd does not run."""
    systemctl = shutil.which("systemctl")
    if systemctl is None or not Path("/run/systemd/system").is_dir():
        raise AirflowInfraError(
            "systemd does not run on this machine (no /run/systemd/system): nothing was "
            "written; `airflow-infra local install-service --print` shows the unit to install "
            "with the init system there is"
        )
    service.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = service.path.with_name(f".{service.name}.tmp")
    tmp.write_text(service.text)
    os.replace(tmp, service.path)
    scope = ["--user"] if service.scope == "user" else []
    for args in (["daemon-reload"], ["enable", "--now", service.name]):
        what = f"systemctl {' '.join(scope + args)}"
        # systemctl --user finds the user's manager through XDG_RUNTIME_DIR and DBUS_*: the caller's environment
        proc = children.run([systemctl, *scope, *args], what=what, env=dict(os.environ), timeout=300, check=False)
        if proc.returncode != 0:
            last = children.last_line(proc.stderr) or f"exit {proc.returncode}"
            raise AirflowInfraError(f"{what}: {last} (the unit is at {service.path})")
    return Service(service.name, service.path, service.text, service.scope, installed=True)
