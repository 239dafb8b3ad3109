"""The one boundary between psycopg and our errors (after httpx's map_httpcore_exceptions).

Every psycopg call that can fail on a user's input or a server's answer runs inside
``translated(what, ...)``: a psycopg error becomes one line of our own hierarchy naming what
failed. A DSN that cannot be parsed is never quoted back: psycopg's message quotes the part it
stumbled on, which may be the password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .errors import AirflowInfraError, ProviderError


def reason(exc: BaseException, *, connecting: bool = False) -> str:
    import psycopg

    if connecting and isinstance(exc, psycopg.ProgrammingError) and getattr(exc, "sqlstate", None) is None:
        return ("the connection string is malformed (a password holding %, spaces or quotes must be "
                "percent-encoded in a URI, or quoted in key=value form)")
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    lines = str(exc).strip().splitlines()
    return primary or (lines[-1].strip() if lines else type(exc).__name__)


def checked_dsn(dsn: str, where: str) -> str:
    """dsn, once it is known to parse into a host and port that hold no part of a password
    (an unencoded @ in a password makes the rest of it the host, which errors then quote);
    ConfigError naming where it came from otherwise, never quoting it."""
    from psycopg.conninfo import conninfo_to_dict

    from .errors import ConfigError

    with translated(where, error=ConfigError, connecting=True):
        info = conninfo_to_dict(dsn)
    host, port = str(info.get("host") or ""), str(info.get("port") or "5432")
    if "@" in host or not all(p.strip().isdigit() for p in port.split(",")):
        raise ConfigError(f"{where}: the connection string's host or port is malformed (an @ in the password must "
                          "be percent-encoded as %40)")
    return dsn


@contextmanager
def translated(what: str, *, error: type[AirflowInfraError] = ProviderError, connecting: bool = False) -> Iterator[None]:
    """psycopg errors inside become error(f"{what}: {reason}"); ours pass as they are."""
    import psycopg

    try:
        yield
    except AirflowInfraError:
        raise
    except psycopg.Error as exc:
        raise error(f"{what}: {reason(exc, connecting=connecting)}") from None
