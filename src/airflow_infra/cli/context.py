"""What every command of the CLI shares: the options of the group (Ctx), and the library and the
renderer, imported on first use so that `--help` pays for neither."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click


class _Lazy:
    """A module imported on first use, so that `--help` does not pay for the engine or rich."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


if TYPE_CHECKING:  # the modules themselves, as far as type checkers are concerned
    from .. import commands as commands
    from ..commands import Project
    from . import render as render
else:
    commands = _Lazy("airflow_infra.commands")
    render = _Lazy("airflow_infra.cli.render")


@dataclass
class Ctx:
    directory: str
    vars: tuple[str, ...]
    var_files: tuple[str, ...]
    lock_timeout: float
    debug: bool

    def project(self, directory: str | None = None) -> Project:
        return commands.open_project(directory or self.directory, vars=self.vars, var_files=self.var_files)


pass_ctx = click.make_pass_decorator(Ctx)
