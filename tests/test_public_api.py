"""The public API is one list: every command and every error is importable from `airflow_infra`, the
commands package exports exactly those commands, and importing the package for `--help` loads nothing heavy."""

from __future__ import annotations

import inspect
import subprocess
import sys


def test_every_public_name_resolves_and_every_error_is_public():
    import airflow_infra
    import airflow_infra.commands as commands
    import airflow_infra.errors as errors

    assert sorted(commands.__all__) == sorted(set(commands.__all__))
    for name in airflow_infra.__all__:
        assert getattr(airflow_infra, name) is not None
    assert set(commands.__all__) <= set(airflow_infra.__all__)
    ours = {n for n, v in vars(errors).items() if inspect.isclass(v) and v.__module__ == errors.__name__}
    assert ours <= set(airflow_infra.__all__) and "AirflowInfraError" in ours and "Interrupted" in ours


def test_commands_export_every_public_function_they_define():
    """A command added to commands/ but not to _api.COMMANDS would not be part of the API."""
    import importlib
    import pkgutil

    import airflow_infra.commands as commands

    defined = set()
    for info in pkgutil.iter_modules(commands.__path__):  # every module of the package, found, not listed
        mod = importlib.import_module(f"airflow_infra.commands.{info.name}")
        defined |= {
            n
            for n, v in vars(mod).items()
            if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v)) and v.__module__ == mod.__name__
        }
    assert len(defined) > 40 and {"plan", "apply", "platform_up", "restore"} <= defined
    missing = defined - set(commands.__all__)
    assert not missing, f"public in commands/ but not in _api.COMMANDS: {sorted(missing)}"


def test_import_loads_nothing_heavy_and_ships_its_types():
    code = (
        "import sys, airflow_infra; heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('pydantic', 'psycopg', 'boto3', 'cryptography')]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    from importlib.resources import files

    assert files("airflow_infra").joinpath("py.typed").is_file()


def test_no_module_but_pgerrors_catches_psycopg_errors():
    """The psycopg boundary is pgerrors.py alone: other modules catch our errors, never psycopg's."""
    import re
    from pathlib import Path

    import airflow_infra

    root = Path(airflow_infra.__file__).parent
    catching = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p.name != "pgerrors.py" and re.search(r"except[^:\n]*psycopg\.", p.read_text())
    ]
    assert catching == []
