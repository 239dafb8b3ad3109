"""The process boundary: every way a command ends, as an exit status and at most one line on stderr.

0 success; 1 any error (one line; a traceback only with --debug); 2 only from `plan
--detailed-exitcode` when there are changes; 130 Ctrl-C.
"""

from __future__ import annotations

import logging
import sys

import click

from ..errors import AirflowInfraError, Interrupted


def _fail(message: str, status: int = 1) -> None:
    click.echo(message, err=True)
    sys.exit(status)


class _Warnings(logging.Handler):
    """The library's warnings (logging, logger "airflow_infra"): one yellow line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(click.style(f"Warning: {record.getMessage()}", fg="yellow"), err=True)


def _usage(exc: click.ClickException) -> str:
    """click's message, naming the command and where its options are listed."""
    message = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    if not isinstance(exc, click.UsageError) or ctx is None:
        return message
    where = ctx.command_path
    if message.startswith("Got unexpected extra argument"):
        message = f"{where}: {message.split('(', 1)[-1].rstrip(')')!r} is not an argument it takes"
    return f"{message} (`{where} --help` lists what it takes)"


def run(cli: click.Group, argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    log = logging.getLogger("airflow_infra")
    if not any(isinstance(h, _Warnings) for h in log.handlers):
        log.addHandler(_Warnings(logging.WARNING))
        log.propagate = False
    debug = "--debug" in argv
    if not debug:  # psycopg's own notes on what it cleans up after an error we report in our line
        logging.getLogger("psycopg").addHandler(logging.NullHandler())
        logging.getLogger("psycopg").propagate = False
    try:  # a command returns its exit status (None: 0); this is the one place that exits with it
        status = cli.main(args=argv, prog_name="airflow-infra", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Interrupted as exc:  # a command that knows what Ctrl-C left says so
        _fail(str(exc), 130)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:  # click turns Ctrl-C into Abort
        if isinstance(exc.__context__, Interrupted):
            _fail(str(exc.__context__), 130)
        if isinstance(exc, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt):
            _fail("Interrupted; what finished is in the state, and the next apply carries on.", 130)
        _fail("Aborted.")
    except click.ClickException as exc:  # usage errors exit 1 too: 2 means "changes" for plan
        _fail(f"Error: {_usage(exc)}")
    except Exception as exc:
        if debug:
            raise
        if isinstance(exc, AirflowInfraError):
            _fail(click.style("Error: ", fg="red", bold=True) + str(exc))
        _fail(f"Error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
    sys.exit(status if isinstance(status, int) else 0)
