"""The project's own code, importable from its DAGs."""
