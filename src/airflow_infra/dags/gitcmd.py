"""Running git on a repository someone else controls: one place that decides what git may do.

- Transports: an allow-list (https, ssh, git, and file for repositories on this machine), given to git
  as GIT_ALLOW_PROTOCOL, so that `ext::`, `fd::` or a helper a URL names is refused by git itself.
- Waits: every network wait is bounded (HTTP's low-speed limit, ssh's connect and keep-alive timeouts) and
  every call has a deadline; at the deadline the whole process group is killed, git's helpers included
  (a helper left holding the pipe would keep the caller waiting).
- Credentials: a URL's user and password never reach git's argv or config. git is given the URL
  without them, and a credential helper that reads them from its own environment (readable by this
  account only); a message that quotes the URL is redacted.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..errors import AirflowInfraError

PROTOCOLS = ("https", "ssh", "git", "file")
DEADLINE = 300.0  # seconds for one git call: a clone of a large DAG repository fits, a hung server does not
LOW_SPEED = {"GIT_HTTP_LOW_SPEED_LIMIT": "1000", "GIT_HTTP_LOW_SPEED_TIME": "30"}  # under 1 kB/s for 30 s: give up
SSH = "ssh -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=2"
_HELPER = (
    '!f() { test "$1" = get && printf "username=%s\\npassword=%s\\n" '
    '"$AIRFLOW_INFRA_GIT_USERNAME" "$AIRFLOW_INFRA_GIT_PASSWORD"; }; f'
)
_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?[^/:]+:(?!//)")


class GitError(AirflowInfraError):
    pass


@dataclass(frozen=True)
class Remote:
    """A repository's URL as git is given it, and the credentials it held."""

    url: str
    username: str = ""
    password: str = ""

    @classmethod
    def parse(cls, url: str) -> Remote:
        parts = urlsplit(url)
        if "://" not in url or parts.password is None and parts.username is None:
            return cls(url)
        host = parts.hostname or ""
        netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
        clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        if parts.scheme == "ssh":  # ssh's user is a login name, not a secret: keep it in the URL
            clean = urlunsplit(
                (
                    parts.scheme,
                    f"{parts.username}@{netloc}" if parts.username else netloc,
                    parts.path,
                    parts.query,
                    parts.fragment,
                )
            )
            return cls(clean)
        return cls(clean, unquote(parts.username or ""), unquote(parts.password or ""))

    def redact(self, text: str) -> str:
        """text without the credentials, as given or percent-encoded (either case)."""
        for secret in sorted({self.password, self.username} - {""}, key=len, reverse=True):
            for form in {secret, quote(secret, safe=""), quote(secret, safe="").lower()}:
                text = (
                    re.sub(re.escape(form), "***", text, flags=re.IGNORECASE)
                    if "%" in form
                    else text.replace(form, "***")
                )
        return text


def transport(url: str) -> str:
    """The transport git would use for url: a scheme, 'ssh' for scp-like host:path, 'file' for a path."""
    if "::" in url.split("/", 1)[0]:  # git's <transport>::<address> form (ext::, fd::, a remote helper)
        return url.split("::", 1)[0] + "::"
    if "://" in url:
        return url.split("://", 1)[0]  # as git reads it: HTTPS is no transport of its
    if _SCP_LIKE.match(url):
        return "ssh"
    return "file"


def check_transport(url: str) -> str | None:
    """Why git may not fetch from url, or None."""
    used = transport(url)
    if used not in PROTOCOLS:
        shown = "http (use https)" if used == "http" else used
        return f"transport {shown} is not allowed (allowed: {', '.join(PROTOCOLS)}, or a path on this machine)"
    return None


def environment(remote: Remote | None = None) -> dict[str, str]:
    """git's environment: no prompt, no system or user config steering a transport, our bounds."""
    env = dict(os.environ)
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="true",
        SSH_ASKPASS="true",
        LC_ALL="C",
        GIT_ALLOW_PROTOCOL=":".join(PROTOCOLS),
        **LOW_SPEED,
    )  # the allow-list wins over any config
    env.setdefault("GIT_SSH_COMMAND", SSH)
    config = [("core.askPass", "true"), ("credential.interactive", "false")]
    if remote is not None and (remote.username or remote.password):
        config += [("credential.helper", ""), ("credential.helper", _HELPER)]
        env.update(AIRFLOW_INFRA_GIT_USERNAME=remote.username, AIRFLOW_INFRA_GIT_PASSWORD=remote.password)
    try:  # settings given in the environment (GIT_CONFIG_KEY_n) are kept; ours come after them and win
        first = int(env.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        first = 0
    env["GIT_CONFIG_COUNT"] = str(first + len(config))
    for i, (key, value) in enumerate(config, start=first):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


def run(
    *args: str,
    cwd: Path | None = None,
    remote: Remote | None = None,
    timeout: float = DEADLINE,
    what: str | None = None,
) -> str:
    """git's stdout; its last line of stderr as a GitError when it fails, or a timeout named as such."""
    proc = subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        env=environment(remote),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise GitError(f"git {what or args[0]} gave no answer within {timeout:g} s: stopped") from None
    except BaseException:
        kill_group(proc)
        raise
    if proc.returncode != 0:
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        message = lines[-1] if lines else f"git {what or args[0]} failed"
        raise GitError(remote.redact(message) if remote else message)
    return out.strip()


def kill_group(proc: subprocess.Popen) -> None:
    """Kill git and every helper it started (they share its session), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
