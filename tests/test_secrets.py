"""Secrets never go missing silently (invariants 4 and 5): a password's reference names its project,
environment and role only; a password missing from the store, or one the role no longer logs in with,
is drift that apply repairs; outputs and connections never print or write a null, an empty or a masked
value as the password."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import psycopg
import pytest
from conftest import Cli, connect_as


def _secrets(home) -> dict:
    return json.loads((home / "secrets.json").read_text())


def _logs_in(outputs: dict, who: str) -> bool:
    try:
        with connect_as(outputs, who) as conn:
            return conn.execute("SELECT current_user").fetchone()[0] == outputs[f"{who}_user"]
    except psycopg.OperationalError:
        return False


def _server_env(admin_dsn: str, host: str) -> dict:
    return {"AIRFLOW_INFRA_ADMIN_DSN": admin_dsn.replace("@127.0.0.1:", f"@{host}:")}


def test_the_reference_does_not_depend_on_how_the_dsn_spells_the_host(server_cli, name, admin_dsn):
    cli = server_cli("tls_only = false")
    cli("apply", "--auto-approve")
    refs = {r["attrs"]["password_ref"] for r in cli.state()["resources"] if r["attrs"].get("password_ref")}
    assert refs == {f"{name}/dev/{name}_etl", f"{name}/dev/{name}_reader"}
    localhost = _server_env(admin_dsn, "localhost")
    cli("plan", "--detailed-exitcode", **localhost)
    shown = cli("output", "etl_password", "--show-secrets", **localhost).stdout.strip()
    assert shown == _secrets(cli.home)[f"{name}/dev/{name}_etl"]
    uri = cli("output", "postgres_uri", "--show-secrets", **localhost).stdout.strip()
    assert f":{shown}@localhost:" in uri
    with psycopg.connect(uri, connect_timeout=10) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == f"{name}_etl"


def _moved_and_kept(cli, path, doc: dict, before: dict) -> dict:
    """Write doc (a state whose references an older release made) to path: plan shows the move and
    nothing missing; after apply the passwords are those Airflow already has. Returns the outputs."""
    path.write_text(json.dumps(doc))
    plan = cli("plan", "--detailed-exitcode", expect=2).stdout
    assert "password_ref" in plan and "missing" not in plan
    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")
    after = cli.outputs()
    assert (after["etl_password"], after["reader_password"]) == (before["etl_password"], before["reader_password"])
    return after


def test_a_password_kept_under_an_older_reference_moves(server_cli, name, superuser):
    """States of earlier releases keyed the password on the DSN's host: apply moves it, the role's
    password stays what Airflow already uses."""
    cli = server_cli("tls_only = false")
    cli("apply", "--auto-approve")
    before = cli.outputs()
    path = cli.dir / ".airflow-infra" / "state.json"
    doc = json.loads(path.read_text())
    store = _secrets(cli.home)
    for r in doc["resources"]:
        if r["attrs"].get("password_ref"):
            old = f"server/127.0.0.1:5432/{r['attrs']['name']}"
            store[old] = store.pop(r["attrs"]["password_ref"])
            r["attrs"]["password_ref"] = old
    (cli.home / "secrets.json").write_text(json.dumps(store))
    _moved_and_kept(cli, path, doc, before)
    assert not any(k.startswith("server/127.0.0.1:5432/") for k in _secrets(cli.home))


def test_a_deleted_secret_is_drift_and_never_printed_as_nothing(server_cli, name, tmp_path):
    cli = server_cli("tls_only = false")
    cli("apply", "--auto-approve")
    old = cli.outputs()
    store = _secrets(cli.home)
    del store[f"{name}/dev/{name}_etl"]
    other = "n0t-the-password-but-one-of-its-shape-xxxxx"  # generated-looking, not the role's
    store[f"{name}/dev/{name}_reader"] = other
    (cli.home / "secrets.json").write_text(json.dumps(store))
    plan = cli("plan", "--detailed-exitcode", expect=2).stdout
    assert 'postgres_role.etl: password changed "stored" -> "missing from the secret store"' in plan
    assert 'postgres_role.reader: password changed "stored" -> "not the stored one"' in plan
    for args in (
        ("output", "etl_password", "--show-secrets"),
        ("output", "--json", "--show-secrets"),
        ("connections", "--output", str(tmp_path / "c.json"), "--format", "json"),
        ("connections", "push", "--to", "aws-secrets-manager"),
    ):
        refused = cli(*args, expect=1)
        assert f"the password of role {name}_etl is missing from the secret store" in refused.stderr
        assert refused.stderr.count("\n") == 1 and "null" not in refused.stdout
    assert not (tmp_path / "c.json").exists()
    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")
    new = cli.outputs()
    assert new["etl_password"] != old["etl_password"] and new["reader_password"] == other
    assert _logs_in(new, "etl") and _logs_in(new, "reader") and not _logs_in(old, "etl")


def test_a_secrets_file_others_can_read_is_made_private(cli):
    cli("up")
    path = cli.home / "secrets.json"
    os.chmod(path, 0o644)
    proc = cli("plan")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"Warning: {path}: the secret store had mode 0644; it was set to 0600" in proc.stderr


def test_a_deleted_secrets_file_on_the_local_target(fresh_home, tmp_path):
    """The local server's superuser password goes with it: a new one is set in single-user mode,
    said on stderr; apply then sets the roles' passwords, and the data stays."""
    cli = Cli(tmp_path / "proj", fresh_home)
    cli.dir.mkdir()
    cli("up")
    with connect_as(cli.outputs(), "etl") as conn:
        conn.execute("CREATE TABLE raw.kept AS SELECT 1 AS x")
    (fresh_home / "secrets.json").unlink()
    plan = cli("plan", "--detailed-exitcode", expect=2)
    assert "superuser password was missing" in plan.stderr
    assert plan.stdout.count('"missing from the secret store" -> "stored"') == 2
    cli("apply", "--auto-approve")
    out = cli.outputs()
    with connect_as(out, "reader") as conn:
        assert conn.execute("SELECT x FROM raw.kept").fetchone()[0] == 1
    cli("plan", "--detailed-exitcode")
    assert stat.S_IMODE((fresh_home / "secrets.json").stat().st_mode) == 0o600


def test_passwords_are_masked_on_a_terminal_and_never_written_masked(cli, tmp_path):
    cli("up")
    shown = cli.tty("connections", "--format", "json")
    assert json.loads(shown.stdout)[f"{cli.dir.name}_postgres"]["password"] == "<sensitive>"
    assert "passwords are masked" in shown.stderr
    listed = cli("output", "--json")
    assert json.loads(listed.stdout)["etl_password"] == {"sensitive": True}
    assert "3 sensitive outputs not shown" in listed.stderr
    target = tmp_path / "conns.env"
    with open(target, "w") as f:  # `airflow-infra connections > conns.env`
        refused = subprocess.run(
            [sys.executable, "-m", "airflow_infra", "-C", str(cli.dir), "connections"],
            env=cli.env(),
            stdout=f,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert refused.returncode == 1 and "--output FILE" in refused.stderr
    assert target.read_text() == ""
    with open(target, "w") as f:
        subprocess.run(
            [sys.executable, "-m", "airflow_infra", "-C", str(cli.dir), "connections", "--show-secrets"],
            env=cli.env(),
            stdout=f,
            check=True,
        )
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert cli.outputs()["etl_password"] in target.read_text() and "<sensitive>" not in target.read_text()


def test_a_mangled_secret_in_the_state_store_is_drift(server_cli, name, state_dsn):
    from test_server_target import TEAM

    cli = server_cli("tls_only = false")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text() + TEAM.format(store="state"))
    env = {"AIRFLOW_INFRA_STATE_DSN": state_dsn, "AIRFLOW_INFRA_PASSPHRASE": "correct horse"}
    cli("apply", "--auto-approve", **env)
    with psycopg.connect(state_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE airflow_infra_state SET state = jsonb_set(state, %s, '\"v1:garbage\"') WHERE project = %s",
            (["secrets", f"{name}/dev/{name}_etl"], name),
        )
    plan = cli("plan", "--detailed-exitcode", expect=2, **env).stdout
    assert 'postgres_role.etl: password changed "stored" -> "missing from the secret store"' in plan
    cli("apply", "--auto-approve", **env)
    cli("plan", "--detailed-exitcode", **env)
    out = {k: v["value"] for k, v in json.loads(cli("output", "--json", "--show-secrets", **env).stdout).items()}
    assert _logs_in(out, "etl")


def test_rotate_in_secrets_manager_keeps_the_old_value_as_previous(server_cli, name, state_dsn):
    import boto3
    from test_server_target import TEAM

    cli = server_cli("tls_only = false")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text() + TEAM.format(store="aws-secrets-manager"))
    env = {"AIRFLOW_INFRA_STATE_DSN": state_dsn}
    cli("apply", "--auto-approve", **env)
    before = {k: v["value"] for k, v in json.loads(cli("output", "--json", "--show-secrets", **env).stdout).items()}
    cli("rotate", "reader", **env)
    after = {k: v["value"] for k, v in json.loads(cli("output", "--json", "--show-secrets", **env).stdout).items()}
    assert after["reader_password"] != before["reader_password"] and after["etl_password"] == before["etl_password"]
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    secret = f"airflow-infra/{name}/dev/{name}_reader"
    assert sm.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["SecretString"] == after["reader_password"]
    assert sm.get_secret_value(SecretId=secret, VersionStage="AWSPREVIOUS")["SecretString"] == before["reader_password"]
    assert _logs_in(after, "reader") and not _logs_in(before, "reader")
    cli("plan", "--detailed-exitcode", **env)
    assert "'owner' is not one of 'etl', 'reader'" in cli("rotate", "owner", expect=1, **env).stderr


def test_a_role_made_again_gets_its_scheduled_secret_back(server_cli, name, state_dsn):
    """destroy schedules the role secrets' deletion (AWS's recovery window); the next apply of the
    same project restores them, the passwords unchanged, in a run that had read them as gone."""
    from test_server_target import TEAM

    cli = server_cli("tls_only = false")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text() + TEAM.format(store="aws-secrets-manager"))
    env = {"AIRFLOW_INFRA_STATE_DSN": state_dsn}
    cli("apply", "--auto-approve", **env)
    before = json.loads(cli("output", "--json", "--show-secrets", **env).stdout)["etl_password"]["value"]
    cli("destroy", "--auto-approve", **env)
    cli("apply", "--auto-approve", **env)
    after = json.loads(cli("output", "--json", "--show-secrets", **env).stdout)["etl_password"]["value"]
    assert after == before
    cli("plan", "--detailed-exitcode", **env)


def test_what_is_no_password_counts_as_missing(cli, superuser):
    """Found by a hostile review: a masked value pasted back, a blank one, or an md5 verifier (which
    a server accepting only SCRAM never lets log in) is no stored password."""
    cli("up")
    name = cli.dir.name
    store = _secrets(cli.home)
    store[f"{name}/dev/{name}_reader"] = "<sensitive>"
    (cli.home / "secrets.json").write_text(json.dumps(store))
    refused = cli("output", "reader_password", "--show-secrets", expect=1)
    assert f"the password of role {name}_reader is missing" in refused.stderr
    assert 'postgres_role.reader: password changed "stored" -> "missing from the secret store"' in cli("plan").stdout
    cli("apply", "--auto-approve")
    assert cli.outputs()["reader_password"] not in ("<sensitive>", "")
    password = cli.outputs()["etl_password"]
    import hashlib

    with superuser() as conn:
        conn.execute(
            f"ALTER ROLE {name}_etl PASSWORD 'md5{hashlib.md5((password + name + '_etl').encode()).hexdigest()}'"
        )
    assert 'postgres_role.etl: password changed "stored" -> "not the stored one"' in cli("plan").stdout
    cli("apply", "--auto-approve")
    assert _logs_in(cli.outputs(), "etl")
    cli("plan", "--detailed-exitcode")


@pytest.mark.parametrize("word", ["null", "********", "Ⅸpass word"])
def test_a_word_airflow_infra_never_generated_is_no_password(cli, word):
    """Only a value of the shape airflow-infra generates is a password: a placeholder (or any word typed
    into the store by hand) is never printed, pushed, or given to a role; apply sets a new one."""
    cli("up")
    name = cli.dir.name
    store = _secrets(cli.home)
    store[f"{name}/dev/{name}_reader"] = word
    (cli.home / "secrets.json").write_text(json.dumps(store))
    refused = cli("output", "reader_password", "--show-secrets", expect=1)
    assert f"the password of role {name}_reader is missing" in refused.stderr and word not in refused.stderr
    assert word not in cli("connections", "--show-secrets", expect=None).stdout
    assert '"missing from the secret store"' in cli("plan").stdout
    cli("apply", "--auto-approve")
    assert cli.outputs()["reader_password"] != word and _logs_in(cli.outputs(), "reader")
    cli("plan", "--detailed-exitcode")


def test_a_mangled_superuser_password_is_set_anew(fresh_home, tmp_path):
    cli = Cli(tmp_path / "proj", fresh_home)
    cli.dir.mkdir()
    cli("up")
    store = _secrets(fresh_home)
    store["local/superuser"] = store["local/superuser"][:-3]
    (fresh_home / "secrets.json").write_text(json.dumps(store))
    plan = cli("plan", "--detailed-exitcode")
    assert "or not the server's: a new one was set" in plan.stderr
    assert _logs_in(cli.outputs(), "etl")


def test_connections_with_a_missing_password_are_refused_even_masked(cli):
    cli("up")
    name = cli.dir.name
    store = _secrets(cli.home)
    del store[f"{name}/dev/{name}_etl"]
    (cli.home / "secrets.json").write_text(json.dumps(store))
    refused = cli.tty("connections", expect=1)
    assert f"the password of role {name}_etl is missing" in refused.stderr


def test_a_secrets_manager_password_an_older_release_kept_moves(server_cli, name, admin_dsn):
    """Found in review: an older release named the secret <prefix>/<project>/<env>/<ref> with a ref
    keyed on the server's address; apply moves the value to where this release keeps it."""
    import boto3

    cli = server_cli("tls_only = false")
    toml = cli.dir / "airflow-infra.toml"
    toml.write_text(toml.read_text() + '[secrets]\nstore = "aws-secrets-manager"\n')
    cli("apply", "--auto-approve")
    before = cli.outputs()
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    path = cli.dir / ".airflow-infra" / "state.json"
    doc = json.loads(path.read_text())
    port = admin_dsn.rsplit(":", 1)[1].split("/")[0]
    for r in doc["resources"]:
        if r["attrs"].get("password_ref"):
            role = r["attrs"]["name"]
            old_ref = f"server/127.0.0.1:{port}/{role}"
            sm.create_secret(
                Name=f"airflow-infra/{name}/dev/server/127.0.0.1-{port}/{role}",
                SecretString=before["etl_password" if role.endswith("_etl") else "reader_password"],
            )
            sm.delete_secret(SecretId=f"airflow-infra/{name}/dev/{role}", ForceDeleteWithoutRecovery=True)
            r["attrs"]["password_ref"] = old_ref
            r["attrs"].pop("password_secret", None)
    after = _moved_and_kept(cli, path, doc, before)
    assert _logs_in(after, "etl") and _logs_in(after, "reader")


def test_processes_asking_for_one_new_secret_at_once_all_get_the_same(tmp_path):
    """The file store's lock: eight processes creating the same secret at the same instant must all get
    one value (without it, a read-modify-write race hands out passwords that the last writer then loses)."""
    import subprocess
    import sys
    import time

    home = tmp_path / "home"
    home.mkdir()
    start = time.time() + 1.5
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom airflow_infra.secretstores.file import FileSecretStore\n"
        "time.sleep(max(0, float(sys.argv[2]) - time.time()))\n"
        "store = FileSecretStore(Path(sys.argv[1]))\n"
        "print(' '.join(store.get_or_create(f'race/{i}') for i in range(5)))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(home), str(start)], stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    seen = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(seen) == 1 and len(next(iter(seen)).split()) == 5, seen
