"""`[platform]` in the airflow-infra.toml beside the registry (the rest of that file, if it is a
project's config, is not read here)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config import no_control_characters
from ..errors import ConfigError

TESTED_AIRFLOW = "3.3.2"  # the version the platform's tests run


class PlatformSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    port: int = Field(default=8080, ge=1024, le=65535)  # the api-server's, on 127.0.0.1 only
    airflow_version: str = Field(default=TESTED_AIRFLOW, pattern=r"^3\.\d+\.\d+$")
    executor: str = Field(default="LocalExecutor", pattern=r"^LocalExecutor$")  # the only one without more servers
    extra_requirements: list[str] = Field(default_factory=list)  # pip requirements, e.g. providers the DAGs use
    parallelism: int = Field(
        default=0, ge=0, le=512
    )  # tasks at once (LocalExecutor workers); 0: 2 per core, 4 at least
    # an existing Airflow 3 installation's `airflow` instead of the managed one
    airflow_bin: str | None = Field(default=None, min_length=1)

    @field_validator("*")
    @classmethod
    def _check_text(cls, value: Any) -> Any:
        return no_control_characters(value)

    @field_validator("extra_requirements")
    @classmethod
    def _check_requirements(cls, reqs: list[str]) -> list[str]:
        for r in reqs:
            if not r.strip() or r.lstrip().startswith("-"):
                raise ValueError(f"{r!r} is not a requirement (a name with an optional version, e.g. 'pandas>=2')")
        return reqs


def load_settings(registry: Path) -> PlatformSettings:
    path = registry.resolve().parent / "airflow-infra.toml"
    table: dict = {}
    if path.is_file():
        try:
            table = tomllib.loads(path.read_text()).get("platform", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return PlatformSettings.model_validate(table)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "platform"
        raise ConfigError(f"{path}: [platform] {key}: {err['msg']}") from None
