"""Airflow integration: the project's connections and variables in Airflow's own formats."""
