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
