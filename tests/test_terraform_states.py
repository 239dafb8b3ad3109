"""Hostile and malformed Terraform states: `import-terraform` refuses each with exit 1 and one line on
stderr that names the file and the field (a JSON path) and what is allowed; it writes nothing.

No AWS is needed: every state here is refused before anything is looked up. The CLI runs with no AWS
credentials or configuration of the machine's, so a state wrongly let through cannot reach AWS either.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Cli
from test_terraform_import import _tf_resource

BUCKET_AT = "resources[0].instances[0].attributes"
SG_AT = "resources[1].instances[0].attributes"
DB_AT = "resources[2].instances[0].attributes"


def valid_state() -> dict:
    """A version 4 state of the seed module as Terraform 1.x writes it (nulls, "" and all); the hostile
    states below are this with one thing changed."""
    sg = "sg-0123456789abcdef0"
    arn = "arn:aws:rds:eu-west-1:123456789012:db:crime-db"
    return {
        "version": 4,
        "terraform_version": "1.5.7",
        "serial": 3,
        "lineage": "3f0c3f8e-5e4e-7a49-0d5c-5d5b3c1f2a10",
        "outputs": {},
        "check_results": None,
        "resources": [
            _tf_resource(
                "aws_s3_bucket",
                "airflow_workbucket",
                {
                    "bucket": "crime-workbucket",
                    "region": "eu-west-1",
                    "acl": "private",
                    "bucket_prefix": None,
                    "versioning": [{"enabled": False, "mfa_delete": False}],
                    "tags": {"Project": "Airflow"},
                },
            ),
            _tf_resource(
                "aws_security_group",
                "db_security_group",
                {
                    "id": sg,
                    "name": "crime-db-sg",
                    "description": "Allow all inbound traffic",
                    "timeouts": None,
                    "ingress": [
                        {
                            "cidr_blocks": ["0.0.0.0/0"] if p != 5432 else ["10.0.0.0/16"],
                            "description": "",
                            "from_port": p,
                            "ipv6_cidr_blocks": [],
                            "prefix_list_ids": [],
                            "protocol": "tcp",
                            "security_groups": [],
                            "self": False,
                            "to_port": p,
                        }
                        for p in (22, 5432)
                    ],
                },
            ),
            _tf_resource(
                "aws_db_instance",
                "db_database",
                {
                    "identifier": "crime-db",
                    "id": "crime-db",
                    "arn": arn,
                    "engine": "postgres",
                    "engine_version": "11.5",
                    "name": "crime",
                    "username": "admin",
                    "password": "seed-tfvars-pa55word",
                    "db_subnet_group_name": "platform",
                    "instance_class": "db.t3.micro",
                    "allocated_storage": 20,
                    "max_allocated_storage": 0,
                    "backup_retention_period": 7,
                    "multi_az": False,
                    "performance_insights_enabled": False,
                    "kms_key_id": "",
                    "port": 5432,
                    "final_snapshot_identifier": None,
                    "vpc_security_group_ids": [sg],
                },
                deps=("aws_security_group.db_security_group",),
                sensitive=("password",),
            ),
        ],
    }


class IsolatedCli(Cli):
    """The real CLI with no AWS credentials, configuration or endpoint of the machine's."""

    def env(self, **extra) -> dict:
        env = {k: v for k, v in super().env(**extra).items() if not k.startswith("AWS_")}
        env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
        return env


@pytest.fixture
def refused(tmp_path) -> Callable[..., str]:
    """Run import-terraform on a state: exit 1, one line naming the file and each fragment, nothing written."""
    home = tmp_path / "home"
    home.mkdir()
    cli = IsolatedCli(tmp_path / "project", home)
    cli.dir.mkdir()

    def run(content: str | bytes, *fragments: str) -> str:
        path = tmp_path / "terraform.tfstate"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        proc = cli("import-terraform", str(path), expect=None)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert proc.stderr.endswith("\n") and proc.stderr.count("\n") == 1, proc.stderr
        line = proc.stderr.strip()
        assert line.startswith(f"Error: {path}: ") and "Traceback" not in line and "unexpected" not in line, line
        for fragment in fragments:
            assert fragment in line, line
        assert not (cli.dir / "airflow-infra.toml").exists() and not (cli.dir / ".airflow-infra").exists()
        assert not any(cli.dir.iterdir()) and not any(home.iterdir())  # no config, no state, nothing in the home
        return line

    return run


def edit(change: Callable[[dict], object]) -> Callable[[], str]:
    """The valid state with one change (a function that edits it in place) as JSON text."""

    def text() -> str:
        doc = valid_state()
        change(doc)
        return json.dumps(doc, indent=2)

    return text


def _attrs(doc: dict, i: int) -> dict:
    return doc["resources"][i]["instances"][0]["attributes"]


def _deep(levels: int) -> str:
    doc = json.dumps(valid_state())
    return doc.replace('"outputs": {}', '"outputs": ' + "[" * levels + "]" * levels, 1)


HOSTILE: dict[str, tuple[Callable[[], str | bytes], tuple[str, ...]]] = {
    # the shape of the document
    "top level a list": (lambda: json.dumps([valid_state()]), ("the top level:", "must be an object")),
    "resources an object": (
        edit(lambda d: d.update(resources={"db": d["resources"][2]})),
        ("resources:", "must be a list of resource objects"),
    ),
    "resources missing": (edit(lambda d: d.pop("resources")), ("resources: missing", "must be a list")),
    "a resource a string": (
        edit(lambda d: d["resources"].__setitem__(1, "aws_security_group.db_security_group")),
        ("resources[1]:", '"aws_security_group.db_security_group" is not allowed', "must be an object"),
    ),
    "instances missing": (
        edit(lambda d: d["resources"][2].pop("instances")),
        ("resources[2].instances: missing", "must be a list of instance objects"),
    ),
    "instances a string": (
        edit(lambda d: d["resources"][0].update(instances="one")),
        ("resources[0].instances:", "must be a list of instance objects"),
    ),
    "an instance a string": (
        edit(lambda d: d["resources"][0].update(instances=["one"])),
        ("resources[0].instances[0]:", "must be an object"),
    ),
    "attributes a list": (
        edit(lambda d: d["resources"][0]["instances"][0].update(attributes=[["bucket", "x"]])),
        (f"{BUCKET_AT}:", "must be an object of the resource's attributes"),
    ),
    "mode a number": (
        edit(lambda d: d["resources"][0].update(mode=1)),
        ("resources[0].mode: 1 is not allowed", '"managed"'),
    ),
    "type with a newline": (
        edit(lambda d: d["resources"][0].update(type="aws_s3_bucket\n")),
        ("resources[0].type:", r'"aws_s3_bucket\n" is not allowed', "resource type"),
    ),
    "module a number": (edit(lambda d: d["resources"][0].update(module=1)), ("resources[0].module:", "module address")),
    # the format version
    "version 3": (edit(lambda d: d.update(version=3)), ("version: state format version 3", "reads version 4")),
    "version a string": (edit(lambda d: d.update(version="4")), ('version: state format version "4"',)),
    "version true": (edit(lambda d: d.update(version=True)), ("version: state format version true",)),
    "version 4.0": (edit(lambda d: d.update(version=4.0)), ("version: state format version 4.0",)),
    # each attribute used, with its type and what it must look like
    "port a list": (
        edit(lambda d: _attrs(d, 2).update(port=["5432"])),
        (f"{DB_AT}.port:", '["5432"] is not allowed', "must be an integer"),
    ),
    "identifier with a trailing newline": (
        edit(lambda d: _attrs(d, 2).update(identifier="crime-db\n")),
        (f"{DB_AT}.identifier:", r'"crime-db\n" is not allowed', "RDS instance identifier"),
    ),
    "identifier missing": (edit(lambda d: _attrs(d, 2).pop("identifier")), (f"{DB_AT}.identifier: missing",)),
    "arn a number": (edit(lambda d: _attrs(d, 2).update(arn=5)), (f"{DB_AT}.arn: 5 is not allowed", "ARN")),
    "database name a list": (edit(lambda d: _attrs(d, 2).update(name=["crime"])), (f"{DB_AT}.name:", "database name")),
    "backup retention a string": (
        edit(lambda d: _attrs(d, 2).update(backup_retention_period="7")),
        (f'{DB_AT}.backup_retention_period: "7" is not allowed', "integer from 0 to 35"),
    ),
    "multi_az a string": (
        edit(lambda d: _attrs(d, 2).update(multi_az="false")),
        (f'{DB_AT}.multi_az: "false"', "true, false"),
    ),
    "engine mysql": (
        edit(lambda d: _attrs(d, 2).update(engine="mysql")),
        (f'{DB_AT}.engine: "mysql" is not allowed', "postgres"),
    ),
    "instance class missing": (
        edit(lambda d: _attrs(d, 2).pop("instance_class")),
        (f"{DB_AT}.instance_class: missing",),
    ),
    "bucket with a NUL": (
        edit(lambda d: _attrs(d, 0).update(bucket="crime-\x00workbucket")),
        (f"{BUCKET_AT}.bucket:", "S3 bucket name"),
    ),
    "ingress a string": (edit(lambda d: _attrs(d, 1).update(ingress="all")), (f"{SG_AT}.ingress:", "must be a list")),
    "an ingress rule a string": (
        edit(lambda d: _attrs(d, 1).update(ingress=["tcp 5432"])),
        (f"{SG_AT}.ingress[0]:", "must be an object"),
    ),
    "from_port a string": (
        edit(lambda d: _attrs(d, 1)["ingress"][1].update(from_port="5432")),
        (f'{SG_AT}.ingress[1].from_port: "5432" is not allowed', "integer"),
    ),
    "a CIDR a number": (
        edit(lambda d: _attrs(d, 1)["ingress"][1].update(cidr_blocks=["10.0.0.0/16", 10])),
        (f"{SG_AT}.ingress[1].cidr_blocks[1]: 10 is not allowed", "CIDR"),
    ),
    "a security group id with a newline": (
        edit(lambda d: _attrs(d, 1)["ingress"][1].update(security_groups=["sg-1\n"])),
        (f"{SG_AT}.ingress[1].security_groups[0]:", "security group id"),
    ),
    # what JSON itself lets through
    "NaN": (
        lambda: json.dumps(valid_state()).replace('"allocated_storage": 20', '"allocated_storage": NaN'),
        (f"{DB_AT}.allocated_storage: NaN is not allowed",),
    ),
    "Infinity where nothing reads it": (
        lambda: json.dumps(valid_state()).replace('"serial": 3', '"serial": -Infinity'),
        ("serial: -Infinity is not allowed",),
    ),
    "a 5000-digit number": (
        lambda: json.dumps(valid_state()).replace('"allocated_storage": 20', '"allocated_storage": ' + "9" * 5000),
        (f"{DB_AT}.allocated_storage:", "5000 digits"),
    ),
    "a duplicate key": (
        lambda: json.dumps(valid_state()).replace(
            '"identifier": "crime-db"', '"identifier": "crime-db", "identifier": "other-db"'
        ),
        (f'{DB_AT}: key "identifier" given twice',),
    ),
    "100000-deep nesting": (lambda: _deep(100_000), ("outputs[0][0]", "nested more than 64 levels")),
    "100-deep nesting": (lambda: _deep(100), ("outputs[0][0]", "nested more than 64 levels")),
    "a 70 MiB file": (lambda: json.dumps(valid_state()) + " " * (70 * 2**20), ("70.0 MiB", "at most 64 MiB")),
    "invalid UTF-8": (
        lambda: json.dumps(valid_state()).replace("crime-db-sg", "crim\u00e9-db-sg").encode("latin-1"),
        ("not UTF-8", "byte 0xe9", "line 1, column"),
    ),
    "not JSON": (lambda: json.dumps(valid_state(), indent=2)[:300], ("not JSON", "line 1")),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_hostile_state_is_refused_in_one_line_and_nothing_is_written(refused, case):
    make, fragments = HOSTILE[case]
    refused(make(), *fragments)


def test_the_valid_state_the_hostile_ones_are_made_from_is_read(tmp_path):
    """Each hostile state above is refused for its one change, not for something the base state lacks."""
    from airflow_infra.terraform import read_seed_state, render_adoption_config

    path = tmp_path / "terraform.tfstate"
    path.write_text(json.dumps(valid_state(), indent=2))
    seed = read_seed_state(path)
    assert (seed.bucket, seed.region, seed.security_group_id, seed.database) == (
        "crime-workbucket",
        "eu-west-1",
        "sg-0123456789abcdef0",
        "crime",
    )
    assert seed.allowed_cidrs == ["10.0.0.0/16"] and seed.dropped_rules == ["tcp 22-22 from 0.0.0.0/0"]
    assert "password" not in seed.instance
    name, text = render_adoption_config(
        seed, name=None, environment="prod", allow_security_groups=[], allow_cidrs=[], connect_through=None, region=None
    )
    assert name == "crime" and 'identifier = "crime-db"' in text and 'instance_class = "db.t3.micro"' in text


def test_a_state_file_name_with_a_newline_stays_on_one_line(tmp_path):
    """The file's name is in every message: a control character in it must not break the line."""
    odd = tmp_path / "a\nb.tfstate"
    odd.write_text("[]")
    cli = IsolatedCli(tmp_path, tmp_path / "home")
    proc = cli("import-terraform", str(odd), expect=1)
    assert proc.stderr.count("\n") == 1 and json.dumps(str(odd)) in proc.stderr, proc.stderr


def test_the_size_limit_is_checked_before_the_file_is_read_whole(tmp_path):
    """/dev/zero never ends: the reader stops at the limit instead of filling memory."""
    from airflow_infra import ConfigError
    from airflow_infra.terraform import read_seed_state

    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(
        ConfigError, match="/dev/zero: more than 64 MiB; import-terraform reads state files of at most 64 MiB"
    ):
        read_seed_state("/dev/zero")
