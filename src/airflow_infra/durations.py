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
