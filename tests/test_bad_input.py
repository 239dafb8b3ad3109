"""Bad input: a one-line error naming what is wrong, exit 1, no traceback, nothing created or changed."""

from __future__ import annotations

import json
import socket
import time

import pytest
from conftest import Cli

GOOD = """[project]
name = "{name}"
[database]
schemas = ["raw", "staging"]
"""


def assert_one_line_error(proc, *fragments: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("Error: ") and "\n" not in err and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err


def assert_nothing_made(cli: Cli, superuser, name: str) -> None:
    assert not (cli.dir / ".airflow-infra" / "state.json").exists()
    with superuser() as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE %s", (f"{name}\\_%",)).fetchone()[0] == 0
    assert not (cli.home / "buckets" / name).exists()


@pytest.mark.parametrize(
    "config, fragments",
    [
        (
            '[project]\nname = "{name}"\n[database]\nschemass = ["raw"]\n',
            ["database.schemass", "unknown key", "schemas"],
        ),
        ('[project]\nname = "{name}"\ncolour = "red"\n', ["project.colour", "allowed here: name, environment"]),
        ('[project]\nname = "211dashboard"\n', ["project.name", "'211dashboard' is not allowed"]),
        ('[project]\nname = "Crime-Data"\n', ["project.name", "'Crime-Data'"]),
        ('[project]\nname = "x; drop database postgres"\n', ["project.name", "must match"]),
        ('[project]\nname = "{name}"\n[database]\nschemas = ["pg_stuff"]\n', ["database.schemas", "reserved"]),
        ('[project]\nname = "{name}"\n[database]\nschemas = ["information_schema"]\n', ["reserved"]),
        ('[project]\nname = "{name}"\n[database]\nschemas = ["raw", "raw"]\n', ["'raw' is listed twice"]),
        ('[project]\nname = "{name}"\n[target]\nkind = "gcp"\n', ["target.kind", "local"]),
        ('[database]\nschemas = ["raw"]\n', ["missing required key 'project'"]),
        ('[project\nname = "x"\n', ["not valid TOML"]),
        (
            '[project]\nname = "{name}"\n[state]\nbackend = "s3"\nbucket = "states"\nkey = ".airflow-infra-probe"\n',
            ["state.key", "a name the S3 backend keeps for itself"],
        ),
        (
            '[project]\nname = "{name}"\n[state]\nbackend = "s3"\nbucket = "states"\nkey = "p/dev/airflow-infra.json-md5"\n',
            ["state.key", "<key>-md5 in the lock table"],
        ),
        # strict types: a bool is no port, a string no number
        ('[project]\nname = "{name}"\n[database]\nport = true\n', ["database.port", "valid integer"]),
        ('[project]\nname = "{name}"\n[bucket]\nnoncurrent_days = "30"\n', ["bucket.noncurrent_days", "valid integer"]),
        # names PostgreSQL refuses, refused at load rather than half-way through an apply
        ('[project]\nname = "pg_x"\n', ["project.name", "PostgreSQL reserves role names starting with pg_"]),
        # control characters and unsafe characters in what becomes a key or a path
        ('[project]\nname = "{name}"\n[bucket]\nprefix = "a\\u0000b"\n', ["bucket.prefix", "control character"]),
        ('[project]\nname = "{name}"\n[bucket]\nprefix = "team;rm"\n', ["bucket.prefix", "S3's safe characters"]),
        (
            '[project]\nname = "{name}"\n[state]\nbackend = "s3"\nbucket = "states"\nkey = "a\\nb.json"\n',
            ["state.key", "control character"],
        ),
        ('[project]\nname = "{name}"\n[bucket]\npath = "/tmp/x\\ty"\n', ["bucket.path", "control character"]),
    ],
)
def test_bad_config(cli, superuser, name, config, fragments):
    (cli.dir / "airflow-infra.toml").write_text(config.format(name=name))
    for args in (("plan",), ("apply", "--auto-approve"), ("up",)):
        assert_one_line_error(cli(*args, expect=None), "airflow-infra.toml", *fragments)
    assert_nothing_made(cli, superuser, name)


def test_missing_and_unreadable_config(cli, superuser, name):
    assert_one_line_error(cli("plan", expect=None), "airflow-infra.toml: not found", "airflow-infra init")
    (cli.dir / "airflow-infra.toml").mkdir()  # unreadable even for root
    assert_one_line_error(cli("apply", "--auto-approve", expect=None), "airflow-infra.toml: cannot read")
    assert_nothing_made(cli, superuser, name)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (("--var", "project.name=Bad-Name"), ["--var project.name: project.name", "'Bad-Name'"]),
        (("--var", "novalue"), ["--var 'novalue'", "KEY=VALUE"]),
        (("--var", 'database.schemas=["ok", "pg_no"]'), ["--var database.schemas", "reserved"]),
        (("--var", "database.port=true"), ["--var database.port: database.port", "valid integer"]),
        (("--var-file", "/nonexistent/prod.toml"), ["--var-file /nonexistent/prod.toml: not found"]),
    ],
)
def test_bad_overrides(cli, superuser, name, args, fragments):
    (cli.dir / "airflow-infra.toml").write_text(GOOD.format(name=name))
    assert_one_line_error(cli(*args, "apply", "--auto-approve", expect=None), *fragments)
    assert_nothing_made(cli, superuser, name)


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "1e400", "5 minutes"])
def test_a_lock_timeout_that_never_ends_or_is_not_one_is_refused(cli, value):
    """A negative or NaN --lock-timeout was accepted (NaN spun at full CPU against a held lock)."""
    proc = cli("--lock-timeout", value, "state", "list", expect=None)
    assert_one_line_error(proc, "--lock-timeout", "not a")


def test_a_lock_timeout_in_terraform_s_units(cli, name):
    (cli.dir / "airflow-infra.toml").write_text(GOOD.format(name=name))
    (cli.dir / ".airflow-infra").mkdir()
    lock = {
        "ID": "held-by-test",
        "Operation": "apply",
        "Who": "x@elsewhere",
        "Version": "0",
        "Created": "now",
        "Path": "p",
        "pid": 1,
        "host": "elsewhere",
    }
    (cli.dir / ".airflow-infra" / "state.lock").write_text(json.dumps(lock))
    for args in (
        ("--lock-timeout", "2s", "apply", "--auto-approve"),
        ("apply", "-lock-timeout=2s", "--auto-approve"),
        ("apply", "--auto-approve", "--lock-timeout", "2"),
    ):  # before the subcommand, or after as Terraform's
        started = time.monotonic()
        proc = cli(*args, expect=1)
        assert time.monotonic() - started >= 2 and "held-by-test" in proc.stderr and "(waited 2 s)" in proc.stderr


def test_output_with_nothing_applied_says_so(cli, name):
    (cli.dir / "airflow-infra.toml").write_text(GOOD.format(name=name))
    listed = cli("output")
    assert listed.stdout == "" and "No outputs: nothing is applied yet" in listed.stderr
    assert cli("output", "--json").stdout.strip() == "{}"
    assert_one_line_error(
        cli("output", "postgres_uri", expect=None), "NAME 'postgres_uri' is not an output", "none, apply first"
    )


def test_bad_environment_override(cli, superuser, name):
    (cli.dir / "airflow-infra.toml").write_text(GOOD.format(name=name))
    proc = cli("apply", "--auto-approve", expect=None, AIRFLOW_INFRA_DATABASE__SCHEMAZ='["x"]')
    assert_one_line_error(proc, "environment variable AIRFLOW_INFRA_DATABASE__SCHEMAZ: unknown key 'database.schemaz'")
    assert_nothing_made(cli, superuser, name)
    (cli.dir / "prod.toml").write_text("[database]\nport = 0\n")
    proc = cli("--var-file", str(cli.dir / "prod.toml"), "plan", expect=None)
    assert_one_line_error(proc, f"--var-file {cli.dir / 'prod.toml'}: database.port")
    assert "init" not in proc.stderr


@pytest.mark.parametrize("folder", ["211dashboard", "Crime-Data!"])
def test_init_and_up_refuse_bad_names(make_cli, superuser, folder):
    c = make_cli(folder)
    for args in (("init",), ("up",)):
        assert_one_line_error(c(*args, expect=None), "not a valid project name", "--name")
    assert not (c.dir / "airflow-infra.toml").exists()
    assert_one_line_error(
        c("init", "--name", "x; drop database postgres", expect=None), "--name", "not a valid project name"
    )
    assert not (c.dir / "airflow-infra.toml").exists()


def test_folder_name_is_made_a_project_name(make_cli):
    c = make_cli("Crime-Data")
    c("init")
    assert 'name = "crime_data"' in (c.dir / "airflow-infra.toml").read_text()


def test_corrupt_state_is_left_as_it_is(cli, superuser, name):
    (cli.dir / "airflow-infra.toml").write_text(GOOD.format(name=name))
    state = cli.dir / ".airflow-infra" / "state.json"
    state.parent.mkdir()
    state.write_text('{"version": 1, "serial": 3, "resour')
    for args in (("plan",), ("apply", "--auto-approve"), ("destroy", "--auto-approve"), ("state", "list")):
        assert_one_line_error(cli(*args, expect=None), "state.json", "corrupt", "left as it is")
    assert state.read_text() == '{"version": 1, "serial": 3, "resour'
    with superuser() as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0] == 0
    assert not (cli.dir / ".airflow-infra" / "state.lock").exists()


def test_unknown_address_and_output(cli, name):
    (cli.dir / "airflow-infra.toml").write_text(GOOD.format(name=name))
    assert_one_line_error(cli("state", "show", "postgres_role.nope", expect=None), "ADDRESS 'postgres_role.nope'")
    assert_one_line_error(cli("output", "nope", expect=None), "NAME 'nope'")
    assert_one_line_error(cli("apply", str(cli.dir / "missing.plan"), expect=None), "plan file not found")
    assert_one_line_error(cli("plan", "--no-such-flag", expect=None), "--no-such-flag")


def test_port_taken_by_something_else(make_cli, fresh_home):
    c = make_cli()
    c.home = fresh_home
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert_one_line_error(c("local", "start", "--port", str(port), expect=None), f"127.0.0.1:{port} is in use")
    assert not (fresh_home / "postgres" / "data").exists()


def test_binaries_not_found(make_cli, fresh_home, name):
    c = make_cli()
    c.home = fresh_home
    (c.dir / "airflow-infra.toml").write_text(GOOD.format(name=name))
    empty = fresh_home / "empty-bindir"
    empty.mkdir()
    proc = c("apply", "--auto-approve", expect=None, AIRFLOW_INFRA_TARGET__PG_BINDIR=str(empty))
    assert_one_line_error(proc, "pg_bindir", "no initdb, pg_ctl and postgres there")
    assert not (fresh_home / "postgres" / "data").exists()
    assert not (c.dir / ".airflow-infra" / "state.json").exists()


SECRET_DSNS = [
    "postgresql://admin:pa%zzSECRETPART@127.0.0.1:1/postgres",  # a raw % in the password
    'postgresql://admin:pa ss"SECRETPART@127.0.0.1:1/postgres',  # a space and a quote
    "postgresql://admin:pässwörd%SECRETPART@127.0.0.1:1/postgres",  # unicode and a raw %
    "host=127.0.0.1 port=1 password='SECRETPART",  # an unterminated quote
    "postgresql://admin:p@SECRETPART@127.0.0.1:1/postgres",  # an unencoded @ (the rest reads as host)
    "postgresql://admin:x@127.0.0.1:SECRETPART/postgres",  # a port that is not one
]


@pytest.mark.parametrize("dsn", SECRET_DSNS)
def test_a_malformed_dsn_never_shows_its_password(cli, name, dsn):
    """Every command that takes a DSN answers in one line, without any part of the password."""
    cli("init")
    toml = cli.dir / "airflow-infra.toml"
    base = toml.read_text()
    toml.write_text(base + '\n[state]\nbackend = "postgres"\n')
    for command in (("plan",), ("state", "list"), ("state", "versions"), ("force-unlock", "x")):
        proc = cli(*command, expect=1, AIRFLOW_INFRA_STATE_DSN=dsn)
        assert "SECRETPART" not in proc.stdout + proc.stderr and "unexpected" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    toml.write_text(f'[project]\nname = "{name}"\n[target]\nkind = "server"\n[bucket]\ntls_only = false\n')
    for command in (("plan",), ("apply", "--auto-approve")):
        proc = cli(
            *command,
            expect=1,
            AIRFLOW_INFRA_ADMIN_DSN=dsn,
            AWS_ENDPOINT_URL="http://127.0.0.1:1",
            AWS_ACCESS_KEY_ID="x",
            AWS_SECRET_ACCESS_KEY="x",
        )
        assert "SECRETPART" not in proc.stdout + proc.stderr and "unexpected" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_a_home_that_does_not_exist_is_made_only_by_up_init_or_local_start(cli, name, tmp_path, fresh_home):
    """A mistyped AIRFLOW_INFRA_HOME is an error, not a new, empty world with a new PostgreSQL in it."""
    cli.dir.joinpath("airflow-infra.toml").write_text(GOOD.format(name=name))
    typo = tmp_path / "nonexistent" / "deep" / "home"
    for args in (["plan"], ["apply", "--auto-approve"], ["output"], ["state", "list"], ["doctor"]):
        proc = cli(*args, expect=None, AIRFLOW_INFRA_HOME=str(typo))
        assert_one_line_error(
            proc,
            f"AIRFLOW_INFRA_HOME={typo}: no such directory",
            "`airflow-infra up`, `init` or `local start` makes it",
        )
    assert not typo.parent.parent.exists() and not (cli.dir / ".airflow-infra").exists()
    other = Cli(tmp_path / "other", cli.home)
    other.dir.mkdir()
    other("init", AIRFLOW_INFRA_HOME=str(typo))
    assert typo.is_dir()  # init makes it, for the commands that follow
    fresh_home.chmod(0o711)
    fresh = fresh_home / "new" / "home"  # where the server's account can reach
    up = Cli(tmp_path / "third", cli.home)
    up.dir.mkdir()
    up.dir.joinpath("airflow-infra.toml").write_text(GOOD.format(name=name + "_up"))
    try:
        up("up", AIRFLOW_INFRA_HOME=str(fresh))  # so does up, as on a newcomer's machine
        assert (fresh / "postgres").is_dir()
    finally:
        up("local", "stop", expect=None, AIRFLOW_INFRA_HOME=str(fresh))


def test_a_refused_connection_keeps_the_servers_words_and_doctor_says_what_to_start(cli, name, project_up_elsewhere):
    """libpq's "Connection refused" was dropped, leaving only its indented hint; doctor on a stopped local
    server did not say how to start it."""
    cli.dir.joinpath("airflow-infra.toml").write_text(
        f'[project]\nname = "{name}"\n[target]\nkind = "server"\n[bucket]\ntls_only = false\n'
    )
    port = socket.socket()
    port.bind(("127.0.0.1", 0))  # bound, never listening: refused
    try:
        proc = cli(
            "plan",
            expect=None,
            AIRFLOW_INFRA_ADMIN_DSN=f"postgresql://u:SECRETPART@127.0.0.1:{port.getsockname()[1]}/postgres",
            AWS_ENDPOINT_URL="http://127.0.0.1:1",
            AWS_ACCESS_KEY_ID="x",
            AWS_SECRET_ACCESS_KEY="x",
        )
    finally:
        port.close()
    assert_one_line_error(
        proc, "failed: Connection refused (is the server running on that host and accepting TCP/IP connections?)"
    )
    assert "SECRETPART" not in proc.stderr and "\t" not in proc.stderr
    local = project_up_elsewhere
    local("local", "stop")
    checks = local("doctor", expect=1).stdout
    assert "the local PostgreSQL is not running" in checks and "airflow-infra local start" in checks


@pytest.fixture
def project_up_elsewhere(fresh_home, tmp_path):
    fresh_home.chmod(0o711)
    d = tmp_path / "elsewhere"
    d.mkdir()
    local = Cli(d, fresh_home)
    local("up")
    return local


def test_a_pg_bindir_the_running_server_does_not_use_is_said(cli, name):
    """pg_bindir chooses the binaries of a server still to be made: set on an existing one, it used to be
    ignored without a word."""
    cli.dir.joinpath("airflow-infra.toml").write_text(GOOD.format(name=name))
    proc = cli("--var", "target.pg_bindir=/opt/other/postgres/bin", "plan")
    assert proc.stderr.startswith(
        "Warning: [target] pg_bindir = '/opt/other/postgres/bin' is not what the local server runs with"
    )
    assert "Warning" not in cli("plan").stderr
