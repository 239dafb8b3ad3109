"""Every registered project's DAGs into Airflow's DAG folder: the sync (sync.py), git at its boundary
(gitcmd.py), and a revision's tree written into a folder, checked against crafted trees (gittree.py)."""
