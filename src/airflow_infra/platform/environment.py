"""The Airflow installation the platform runs: `[platform] airflow_bin`, or a virtualenv of its own under
the home (Airflow pins its own dependencies, so it never shares ours). One environment per Airflow
version and requirements, made beside the others; `current` points at the one in use and moves only
after an install succeeded, so a failed upgrade leaves the running platform as it was."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .. import children
from ..errors import ConfigError, InstallFailed
from ..files import write_private
from .settings import PlatformSettings

PROVIDERS = ("apache-airflow-providers-amazon", "apache-airflow-providers-git")


def ourselves() -> str:
    """What pip installs for airflow-infra itself: this source tree when we run from one, else our release."""
    from importlib.metadata import PackageNotFoundError, distribution

    from .. import __version__

    try:
        direct = distribution("airflow-infra").read_text("direct_url.json")
    except PackageNotFoundError:
        direct = None
    if direct:
        url = json.loads(direct).get("url", "")
        if url.startswith("file://"):
            return url.removeprefix("file://")
    return f"airflow-infra=={__version__}"


def requirements(settings: PlatformSettings) -> list[str]:
    return [f"apache-airflow=={settings.airflow_version}", *PROVIDERS, ourselves(), *settings.extra_requirements]


def airflow_executable(settings: PlatformSettings, root: Path, on_progress: Callable[[str], None]) -> Path:
    if settings.airflow_bin:
        given = Path(settings.airflow_bin).expanduser()
        if not (given.is_file() and os.access(given, os.X_OK)):
            raise ConfigError(f"[platform] airflow_bin: {given} is not an executable file")
        return given
    reqs = requirements(settings)
    key = hashlib.sha256(json.dumps(reqs).encode()).hexdigest()[:12]
    env = root / "envs" / f"airflow-{settings.airflow_version}-{key}"
    current = root / "env"
    if not (env / ".installed").is_file():
        _install(env, reqs, on_progress)
    if not current.is_symlink() or current.resolve() != env.resolve():
        tmp = root / ".env.new"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(env.relative_to(root))
        os.replace(tmp, current)  # the swap: one rename
    return current / "bin" / "airflow"


def _install(env: Path, reqs: list[str], on_progress: Callable[[str], None]) -> None:
    shutil.rmtree(env, ignore_errors=True)  # an install cut short: ours, never used (no .installed)
    env.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = env.parent / f"{env.name}.log"
    on_progress(f"installing Apache Airflow into {env} (once; log: {log})")
    try:
        # umask 077: the virtualenv is this account's only, as everything under the platform's root
        children.run(
            [sys.executable, "-m", "venv", env],
            what=f"making the virtualenv {env}",
            env=dict(os.environ),
            timeout=300,
            error=InstallFailed,
            umask=0o077,
        )
        with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "w") as out:
            proc = subprocess.Popen(
                [str(env / "bin" / "pip"), "install", "--disable-pip-version-check", *reqs],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                umask=0o077,
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if line.startswith(("Collecting", "Installing", "Successfully")):
                    on_progress(line.strip()[:100])
            status = proc.wait()
    except InstallFailed:
        shutil.rmtree(env, ignore_errors=True)
        raise
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(env, ignore_errors=True)
        raise InstallFailed(f"cannot make the platform's virtualenv {env}: {exc}") from None
    if status != 0:
        shutil.rmtree(env, ignore_errors=True)
        lines = [ln for ln in log.read_text().splitlines() if ln.startswith("ERROR")] or ["pip failed"]
        reason = lines[0].split(" (from versions:")[0][:300]  # pip lists every version there is
        raise InstallFailed(f"installing Airflow failed: {reason} (full log: {log}); nothing was started")
    write_private(env / ".installed", json.dumps(reqs) + "\n")
