"""Durations as people type them: seconds ("30", "2.5"), or Terraform's units ("30s", "5m", "1h")."""

from __future__ import annotations

import math
import re
from typing import Any

import click

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(text: str) -> float:
    """text as seconds; ValueError for anything else, a negative, NaN or an infinite one (a wait that
    never ends, or spins)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*", text)
    if not found:
        raise ValueError(f"{text!r} is not a duration: give seconds (30) or Terraform's units (30s, 5m, 1h)")
    value = float(found[1]) * _UNITS[found[2]]
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite duration")
    return value


class Seconds(click.ParamType):
    """A click option's duration (--lock-timeout): a bad one is a usage error naming the option."""

    name = "seconds"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            return value if isinstance(value, float) else seconds(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def lock_timeout_first(argv: list[str]) -> list[str]:
    """argv with a --lock-timeout given after the subcommand, as Terraform takes it (`apply
    -lock-timeout=30s`, `plan --lock-timeout 30`), moved before it, where the option is defined."""
    out: list[str] = []
    moved: list[str] = []
    args = iter(argv)
    for arg in args:
        name, eq, value = arg.partition("=")
        if name in ("--lock-timeout", "-lock-timeout"):
            moved = ["--lock-timeout", value if eq else next(args, "")]
        else:
            out.append(arg)
    return moved + out
