"""The local PostgreSQL server airflow-infra runs itself (server.py), its programs (binaries.py), the
account it runs as under root (account.py), and the service unit that starts it at boot (service.py)."""
