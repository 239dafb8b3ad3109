"""The platform: a local Apache Airflow 3 wired to every registered project (`airflow-infra platform`).

settings.py: `[platform]` of the registry's airflow-infra.toml; environment.py: the virtualenv Airflow
lives in; metadata.py: its database on the managed local PostgreSQL; airflowcfg.py: airflow.cfg and
the processes' environment (no secret in a file Airflow reads, but the auth manager's own); processes.py:
the four components, started, supervised and stopped. The DAG bundles and the secrets backend Airflow
is pointed at are in airflow/bundles.py and airflow/secrets.py (any Airflow 3 deployment can use them).
"""
