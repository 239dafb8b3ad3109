"""The account the server runs as: PostgreSQL refuses root, so under root an unprivileged one
(AIRFLOW_INFRA_PG_USER, else "postgres" when it exists, else "nobody"), and the paths it must traverse."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from ..errors import LocalServerError


@dataclass(frozen=True)
class _Account:
    uid: int
    gid: int
    name: str


def _service_account() -> _Account | None:
    """The account the server runs as; None means "as ourselves" (we are not root)."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get("AIRFLOW_INFRA_PG_USER")
    for name in [wanted] if wanted else ["postgres", "nobody"]:
        try:
            pw = pwd.getpwnam(name)
            return _Account(pw.pw_uid, pw.pw_gid, name)
        except KeyError:
            continue
    raise LocalServerError(
        f"running as root, PostgreSQL needs an unprivileged account and {wanted or 'postgres/nobody'!r} "
        "does not exist: create one, or set AIRFLOW_INFRA_PG_USER"
    )


def _blocked(d: Path, account: _Account) -> bool:
    st = d.stat()
    return not (st.st_uid == account.uid or st.st_mode & 0o001)


def _make_traversable(path: Path, account: _Account, home: Path) -> None:
    """Let the service account reach path: chmod o+x our own directories, refuse on others."""
    for d in [*reversed(path.parents), path]:
        if not _blocked(d, account):
            continue
        st = d.stat()
        if d == home or home in d.parents:
            os.chmod(d, st.st_mode | 0o001)
            continue
        raise LocalServerError(
            f"PostgreSQL runs as {account.name!r} under root and cannot reach {d}: "
            f"`chmod o+x {d}`, or set AIRFLOW_INFRA_HOME to a directory it can reach"
        )
