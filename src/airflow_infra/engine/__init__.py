"""The engine: plans are values (plan.py), applied by walking the dependency graph (apply.py)."""
