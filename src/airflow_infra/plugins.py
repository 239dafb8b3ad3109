"""One table per plugin family: the name a config or the CLI uses, and where its class lives
("module:Class", imported only when a project uses it, so that the local target never loads boto3).

The config's allowed values, the CLI's choices and the contract suites (tests/test_*_contract.py) are
derived from these tables: adding an implementation is adding a line here, and an implementation here
that a contract suite has no fixtures for fails that suite.

Each family's contract is written beside its base class: targets/base.py, state/base.py,
secretstores/__init__.py, providers/base.py. A state backend and a secret store are made from a
project's config by their classmethod ``from_config``; a provider by its target.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Family:
    what: str  # how a user names the choice: "[state] backend"
    entries: Mapping[str, str]  # name -> "module:Class"
    extras: Mapping[str, str] = field(default_factory=dict)  # name -> the pip extra its libraries come with

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.entries)

    def load(self, name: str) -> Any:
        """The class registered as name; ConfigError when there is none, or when its libraries are not
        installed (naming the extra that brings them)."""
        if name not in self.entries:
            raise ConfigError(f"{self.what}: {name!r} is not one of {', '.join(map(repr, self.names))}")
        module, _, attr = self.entries[name].partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            if name not in self.extras or exc.name is None or exc.name.startswith("airflow_infra"):
                raise
            raise ConfigError(
                f'{self.what} = "{name}" needs {exc.name.split(".")[0]}: '
                f"pip install 'airflow-infra[{self.extras[name]}]'"
            ) from None


TARGETS = Family(
    "[target] kind",
    {
        "local": "airflow_infra.targets.local:LocalTarget",
        "server": "airflow_infra.targets.server:ServerTarget",
        "aws": "airflow_infra.targets.aws:AwsTarget",
    },
)
STATE_BACKENDS = Family(
    "[state] backend",
    {
        "local": "airflow_infra.state.local:LocalStateBackend",
        "postgres": "airflow_infra.state.postgres:PostgresStateBackend",
        "s3": "airflow_infra.state.s3:S3StateBackend",
    },
    extras={"s3": "s3"},
)
SECRET_STORES = Family(
    "[secrets] store",
    {
        "file": "airflow_infra.secretstores.file:FileSecretStore",
        "state": "airflow_infra.secretstores.state:StateSecretStore",
        "aws-secrets-manager": "airflow_infra.secretstores.aws:AwsSecretsManagerStore",
    },
    extras={"aws-secrets-manager": "s3"},
)
PROVIDERS = Family(  # by the resource type each manages (Resource.type)
    "resource type",
    {
        "local_bucket": "airflow_infra.providers.localdir:LocalBucketProvider",
        "s3_bucket": "airflow_infra.providers.s3:S3BucketProvider",
        "s3_prefix": "airflow_infra.providers.s3prefix:S3PrefixProvider",
        "postgres_role": "airflow_infra.providers.postgres:RoleProvider",
        "postgres_database": "airflow_infra.providers.postgres:DatabaseProvider",
        "postgres_schema": "airflow_infra.providers.postgres:SchemaProvider",
        "aws_security_group": "airflow_infra.providers.aws:SecurityGroupProvider",
        "aws_db_subnet_group": "airflow_infra.providers.aws:SubnetGroupProvider",
        "aws_db_parameter_group": "airflow_infra.providers.aws:ParameterGroupProvider",
        "aws_db_instance": "airflow_infra.providers.aws:DbInstanceProvider",
        "aws_iam_role": "airflow_infra.providers.aws:IamRoleProvider",
        "aws_iam_policy": "airflow_infra.providers.aws:IamPolicyProvider",
    },
)
