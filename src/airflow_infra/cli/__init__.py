"""The command line: parse, call one command of the library, render. app.py is the `airflow-infra`
group; dags.py and platform.py its `dags` and `platform` groups; render.py writes for people;
exits.py turns a command's result into the exit status (the only place that exits)."""

from .app import main

__all__ = ["main"]
