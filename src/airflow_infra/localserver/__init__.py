"""The local PostgreSQL server airflow-infra runs itself (server.py), and the service unit that starts it
at boot (service.py)."""
