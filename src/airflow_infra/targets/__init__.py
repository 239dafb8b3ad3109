"""Targets: where a project's resources live. A registry of dotted paths, so that a target's
libraries (boto3 for AWS, say) are imported only when a project uses it."""

from __future__ import annotations

import importlib
from pathlib import Path

from ..config import Config

REGISTRY = {
    "local": "airflow_infra.targets.local:LocalTarget",
    "server": "airflow_infra.targets.server:ServerTarget",
    "aws": "airflow_infra.targets.aws:AwsTarget",
}


def get_target(config: Config, home: Path):
    module, _, cls = REGISTRY[config.target.kind].partition(":")
    return getattr(importlib.import_module(module), cls)(config, home)
