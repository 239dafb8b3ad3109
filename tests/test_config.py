"""Config overrides, in their documented order: file < environment < --var-file < --var."""

from __future__ import annotations

import pytest

from airflow_infra.config import load_config
from airflow_infra.errors import ConfigError


@pytest.fixture
def project(tmp_path):
    (tmp_path / "airflow-infra.toml").write_text('[project]\nname = "crime_data"\nenvironment = "dev"\n')
    return tmp_path


def test_defaults(project):
    c = load_config(project, environ={})
    assert c.project.environment == "dev" and c.target.kind == "local" and c.state.backend == "local"
    assert c.database.schemas == ["raw", "staging", "analytics"]


def test_override_order(project, tmp_path):
    vf = tmp_path / "prod.toml"
    vf.write_text('[project]\nenvironment = "staging"\n[database]\nschemas = ["a"]\n')
    env = {"AIRFLOW_INFRA_PROJECT__ENVIRONMENT": "qa", "AIRFLOW_INFRA_HOME": "/ignored"}
    assert load_config(project, environ=env).project.environment == "qa"
    c = load_config(project, environ=env, var_files=[vf])
    assert c.project.environment == "staging" and c.database.schemas == ["a"]
    c = load_config(
        project, environ=env, var_files=[vf], vars=["project.environment=prod", 'database.schemas=["b", "c"]']
    )
    assert c.project.environment == "prod" and c.database.schemas == ["b", "c"]


def test_errors_name_the_file_and_key(project):
    with pytest.raises(ConfigError) as exc:
        load_config(project, environ={}, vars=["bucket.pth=/x"])
    # the key was set by --var, not in the file: the error names what set it
    assert str(exc.value).startswith("--var bucket.pth: unknown key 'bucket.pth' (allowed here: path, name, region")
    with pytest.raises(ConfigError, match="'project' is not a section"):
        load_config(project, environ={}, vars=['project="x"', "project.name=y"])
