"""`airflow-infra new NAME [DIR]`: a workflows repository in the seed's layout (dags/, scripts/,
resources/, sql/, tests/) whose example ELT DAG runs as soon as `up` has made the infrastructure.
The files are in template/; `{{name}}` in them becomes the project's name."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..config import render_config
from ..errors import ConfigError
from ..names import check_name

# template path -> path in the new repository ({{name}} replaced in both)
FILES = {
    "README.md": "README.md",
    "gitignore": ".gitignore",
    "requirements.txt": "requirements.txt",
    "example_elt.py": "dags/{{name}}_example_elt.py",
    "cities.csv": "resources/cities.csv",
    "analytics_cities.sql": "sql/analytics_cities.sql",
    "test_dags.py": "tests/test_dags.py",
    "scripts_init.py": "scripts/__init__.py",
}


def new(name: str, directory: str | Path | None = None) -> Path:
    check_name(name, source="NAME")
    root = Path(directory or name)
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"DIR {root}: exists and is not empty; choose another directory")
    template = resources.files(__package__) / "template"
    root.mkdir(parents=True, exist_ok=True)
    for src, dest in FILES.items():
        target = root / dest.replace("{{name}}", name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((template / src).read_text().replace("{{name}}", name))
    (root / "airflow-infra.toml").write_text(render_config(name))
    return root
