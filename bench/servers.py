"""The servers a benchmark runs against: moto in server mode on loopback (reached through
AWS_ENDPOINT_URL) and the managed local PostgreSQL in a fresh AIRFLOW_INFRA_HOME; all stopped after."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def moto_and_postgres(prefix: str):
    """Yields (work directory, LocalServer); the environment points boto3 and airflow-infra at them."""
    from moto.server import ThreadedMotoServer

    from airflow_infra.localserver.server import LocalServer, free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(tmp, 0o711)
    port = free_port()
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # AWS's managed policies exist, as in AWS
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_INFRA_HOME": str(tmp / "home"),
    }
    saved = dict(os.environ)
    os.environ.update(env)
    server = LocalServer(tmp / "home")
    try:
        server.start()
        yield tmp, server
    finally:
        try:
            server.stop()
        finally:
            moto.stop()
            os.environ.clear()
            os.environ.update(saved)
            shutil.rmtree(tmp, ignore_errors=True)
