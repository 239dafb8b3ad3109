"""Targets: where a project's resources live (plugins.TARGETS lists them, so that a target's
libraries, boto3 for AWS say, are imported only when a project uses it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..plugins import TARGETS
from .base import Target


def get_target(config: Config, home: Path, *, lock_timeout: float = 0.0, **options: Any) -> Target:
    """The target of config's kind; options (apply/destroy flags) only where the target takes them;
    lock_timeout (--lock-timeout) bounds its database lock waits."""
    cls: type[Target] = TARGETS.load(config.target.kind)
    takes = cls.OPTIONS
    unknown = sorted(
        k for k, v in options.items() if v and k not in takes and k != "on_progress"
    )  # a callback: optional
    if unknown:
        flag = "--" + unknown[0].replace("_", "-")
        raise ConfigError(f'{flag}: not for [target] kind = "{config.target.kind}" (only "aws")')
    return cls(config, home, lock_timeout=lock_timeout, **{k: v for k, v in options.items() if k in takes})
