"""airflow-infra: infrastructure for Airflow ELT projects, planned and applied with locked state.

The public API is the names in __all__: one function per CLI command (commands/, listed in _api.py) and
the error hierarchy (errors.py, every class of it). Submodules are private. Names load lazily, so that importing the
CLI for `--help` does not pay for pydantic or psycopg.
"""

__version__ = "0.1.0"

from typing import Any

from . import errors as _errors
from ._api import COMMANDS as _COMMANDS

# every exception of the hierarchy is public (errors.py imports nothing heavy)
_ERRORS = tuple(
    n
    for n, v in vars(_errors).items()
    if isinstance(v, type) and issubclass(v, BaseException) and v.__module__ == _errors.__name__
)
__all__ = [*_COMMANDS, *_ERRORS]


def __getattr__(name: str) -> Any:
    import importlib

    if name in _COMMANDS:
        return getattr(importlib.import_module(".commands", __name__), name)
    if name in _ERRORS:
        return getattr(_errors, name)
    raise AttributeError(f"module 'airflow_infra' has no attribute {name!r}")
