"""The one boundary between psycopg and our errors (after httpx's map_httpcore_exceptions).

Every psycopg call that can fail on a user's input or a server's answer runs inside
``translated(what, ...)``: a psycopg error becomes one line of our own hierarchy naming what
failed. A DSN that cannot be parsed is never quoted back: psycopg's message quotes the part it
stumbled on, which may be the password. No other module catches psycopg's errors: a probe asks
``refusal()``, a step that may meet a passing conflict runs through ``retried()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .errors import AirflowInfraError, ProviderError

T = TypeVar("T")


def reason(exc: BaseException, *, connecting: bool = False) -> str:
    import psycopg

    if connecting and isinstance(exc, psycopg.ProgrammingError) and getattr(exc, "sqlstate", None) is None:
        return (
            "the connection string is malformed (a password holding %, spaces or quotes must be "
            "percent-encoded in a URI, or quoted in key=value form)"
        )
    ended = (getattr(exc, "sqlstate", None) or "").startswith("57P")  # admin_shutdown, crash_shutdown, ...
    if ended or "server closed the connection" in str(exc):  # libpq's "... unexpectedly": what it means here
        return (
            "the server ended this run's session (it restarted, or another run dropped the database or "
            "ended the session); nothing more was done in it: run the command again"
        )
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    if primary:
        return str(primary)
    # libpq: 'connection to server at "h", port p failed: Connection refused' then a tab-indented hint;
    # the server's (or the kernel's) own words first, the hint after them
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    failed = [ln.removeprefix("connection failed: ") for ln in lines if " failed: " in ln]
    hints = [ln for ln in lines if " failed: " not in ln and not ln.startswith("connection failed")]
    if failed:
        return failed[-1] + (f" ({hints[-1][0].lower()}{hints[-1][1:].rstrip('?.')}?)" if hints else "")
    return lines[-1] if lines else type(exc).__name__


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
        raise ConfigError(
            f"{where}: the connection string's host or port is malformed (an @ in the password must "
            "be percent-encoded as %40)"
        )
    return dsn


@contextmanager
def translated(
    what: str, *, error: type[AirflowInfraError] = ProviderError, connecting: bool = False
) -> Iterator[None]:
    """psycopg errors inside become error(f"{what}: {reason}"); ours pass as they are."""
    import psycopg

    try:
        yield
    except AirflowInfraError:
        raise
    except psycopg.Error as exc:
        raise error(f"{what}: {reason(exc, connecting=connecting)}") from None


def connected(connect: Callable[[], T]) -> tuple[T | None, str | None]:
    """(connect()'s connection, None), or (None, why the server refused it, in one line: a failed
    connection has no SQLSTATE, libpq gives the server's words only)."""
    import psycopg

    try:
        return connect(), None
    except psycopg.OperationalError as exc:
        return None, str(exc)


def refusal(connect: Callable[[], Any]) -> str | None:
    """None when connect() gives a connection (closed at once); else why the server refused it."""
    conn, why = connected(connect)
    if conn is not None:
        conn.close()
    return why


def password_refused(why: str | None) -> bool:
    """Whether a refusal() says the password was wrong (a login refused after authentication, for
    want of CONNECT or a free connection, had the right one)."""
    return why is not None and "password authentication failed" in why


def retried(step: Callable[[], T], *, sqlstates: tuple[str, ...], attempts: int, pause: float) -> T:
    """step(), run again while it fails with one of sqlstates (a passing conflict with another
    session), up to attempts times; the last failure is raised."""
    import psycopg

    for attempt in range(attempts):
        try:
            return step()
        except psycopg.Error as exc:
            if exc.sqlstate not in sqlstates or attempt == attempts - 1:
                raise
            time.sleep(pause)
    raise AssertionError("unreachable")


def conninfo(dsn: str) -> dict[str, Any] | None:
    """dsn's parts (host, port, dbname, ...); None when it does not parse (its text is never quoted)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        return dict(conninfo_to_dict(dsn))
    except psycopg.Error:
        return None


@contextmanager
def ended(error: Callable[[], BaseException]) -> Iterator[None]:
    """A session the server or the network ended inside becomes error() (a lock's session: the lock
    is gone with it)."""
    import psycopg

    try:
        yield
    except psycopg.OperationalError:
        raise error() from None


def detail(exc: BaseException) -> str:
    """What the server said, with where in a COPY: "line 3, column beat: invalid input syntax ..." (the
    value said once)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(exc).splitlines()[0]
    where = (getattr(diag, "context", None) or "").split("\n")[0]
    if where.startswith("COPY "):  # "COPY t, line 3, column beat: "x""
        where = where.split(", ", 1)[1] if ", " in where else ""
        at, _, value = where.partition(": ")
        where = at if value and value in primary else where
        return f"{where}: {primary}" if where else primary
    return str(primary)


@contextmanager
def failing(error: Callable[[str], BaseException]) -> Iterator[None]:
    """psycopg errors inside become error(detail(exc)): the caller words the line."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise error(detail(exc)) from None


class RowRefused(Exception):
    """PostgreSQL refused one row of a COPY (a bad value, a constraint): which line of the COPY's data,
    and what it said. Raised by refused_rows() for a loader that sets such rows aside."""

    def __init__(self, line: int, column: str | None, value: str | None, reason: str):
        super().__init__(f"line {line}: {reason}")
        self.line, self.column, self.value, self.reason = line, column, value, reason


_ROW_CLASSES = ("22", "23")  # data exception, integrity constraint violation: the row's own fault


@contextmanager
def refused_rows() -> Iterator[None]:
    """A COPY's error that names a line of its data and is that row's fault becomes RowRefused; any
    other error goes on as it is (failing() or translated() word it)."""
    import re

    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        diag = exc.diag
        where = (diag.context or "").split("\nCOPY ")[0]
        # "COPY t, line 3, column c: "value"" or "COPY t, line 3: "the line""
        m = re.match(r'COPY .*?, line (\d+)(?:, column (.+?))?(?:: "(.*)")?\Z', where, re.S)
        if m is None or not (exc.sqlstate or "").startswith(_ROW_CLASSES):
            raise
        line, column, value = int(m.group(1)), m.group(2), m.group(3)
        raise RowRefused(
            line, column or diag.column_name, value if column else None, str(diag.message_primary or exc)
        ) from None
