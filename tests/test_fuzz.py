"""Fuzzing what users type: 300 configurations (valid ones bent: wrong types, unknown keys, control
characters, huge or empty values, broken TOML) loaded as every command loads them, and 300 argument lists
through the CLI's entry point. Each ends in success or one line of error: never a traceback, never an
"unexpected" error. Seeded, so a failure is reproducible; in-process, so it takes seconds."""

from __future__ import annotations

import json
import math
import random

import pytest

import airflow_infra as ai
from airflow_infra.cli.app import main

BASE = {
    "project": {"name": "fuzzed", "environment": "dev"},
    "target": {"kind": "local"},
    "database": {"schemas": ["raw", "analytics"], "port": 5432},
    "bucket": {"prefix": "team/", "noncurrent_days": 30, "tls_only": True},
    "state": {"backend": "local", "path": ".airflow-infra/state.json"},
    "secrets": {"store": "file", "max_age_days": 90},
    "airflow": {"postgres_conn_id": "fuzzed_pg"},
    "aws": {
        "rds": {"port": 6543, "allowed_cidrs": ["10.0.0.0/8"], "parameters": {"work_mem": 65536}},
        "iam": {"attach_to_role": "workers"},
    },
}
ODD_TEXT = [
    "",
    " ",
    "\x00",
    "a\nb",
    "\t",
    "é" * 5,
    "x" * 70_000,
    "../../etc",
    "; drop table x",
    "${HOME}",
    "pg_x",
    "0.0.0.0/0",
    "Robert'); --",
    "\u202e",
    "C:\\\\x",
    "%s%s",
    "null",
]


def value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind == 0:
        return rng.choice([0, -1, 1, 2**63, -(2**63), 65536, 5432])
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0.5, math.nan, math.inf, -math.inf, 1e308])
    if kind in (3, 4, 5):
        return rng.choice(ODD_TEXT + ["".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(1, 12)))])
    if kind in (6, 7):
        return [value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(["name", "port", "x", "rds", "kind"]): value(rng, depth + 1) for _ in range(rng.randrange(0, 3))}


def toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON's escapes are TOML's basic-string escapes
    if isinstance(v, list):
        return "[" + ", ".join(toml(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml(x)}" for k, x in v.items()) + "}"


def render(doc: dict, prefix: str = "") -> str:
    scalars = [f"{json.dumps(k)} = {toml(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    tables = [render(v, f"{prefix}{k}.") for k, v in doc.items() if isinstance(v, dict)]
    head = f"[{prefix[:-1]}]\n" if prefix else ""
    return head + "".join(line + "\n" for line in scalars) + "".join(tables)


def bent(rng: random.Random) -> str:
    doc = json.loads(json.dumps(BASE))
    for _ in range(rng.randrange(1, 4)):
        section = rng.choice(list(doc))
        table = doc[section] if isinstance(doc[section], dict) else doc
        action = rng.randrange(4)
        if action == 0 and table:
            table[rng.choice(list(table))] = value(rng)
        elif action == 1:
            table[rng.choice(["colour", "Name", "port ", "kind", "x.y"])] = value(rng)
        elif action == 2 and table:
            del table[rng.choice(list(table))]
        else:
            doc[section] = value(rng)
    text = render({k: v for k, v in doc.items() if isinstance(v, dict)}) + "".join(
        f"{json.dumps(k)} = {toml(v)}\n" for k, v in doc.items() if not isinstance(v, dict)
    )
    if rng.random() < 0.1:  # broken TOML too
        cut = rng.randrange(len(text))
        text = text[:cut] + rng.choice(["[", '"', "=", "\x00", "]]"]) + text[cut:]
    return text


def one_line_or_nothing(err: str) -> None:
    assert "Traceback" not in err and "unexpected" not in err.lower(), err
    assert err.count("\n") <= 1, err


def test_300_bent_configurations_load_or_fail_in_one_line(tmp_path, home):
    rng = random.Random(20261204)
    failures = 0
    for i in range(300):
        d = tmp_path / f"c{i}"
        d.mkdir()
        (d / "airflow-infra.toml").write_text(bent(rng), encoding="utf-8")
        try:
            ai.open_project(d)
        except ai.AirflowInfraError as exc:
            failures += 1
            one_line_or_nothing(str(exc) + "\n")
    assert failures > 250  # bent, nearly all are refused: the fuzzing reached the checks


COMMANDS = [
    ["plan"],
    ["apply"],
    ["destroy"],
    ["output"],
    ["state", "show"],
    ["state", "restore"],
    ["connections"],
    ["projects", "add"],
    ["projects", "show"],
    ["dags", "sync"],
    ["dags", "bundles"],
    ["platform", "status"],
    ["local", "start"],
    ["rotate"],
    ["import"],
    ["force-unlock"],
    ["import-terraform"],
    ["new"],
    ["init"],
]
FLAGS = [
    "--lock-timeout",
    "--var",
    "--var-file",
    "--registry",
    "--format",
    "--json",
    "--out",
    "--jobs",
    "--port",
    "--show-secrets",
    "--detailed-exitcode",
    "--to",
    "--dags-folder",
    "--branch",
    "--path",
    "-C",
]


@pytest.mark.parametrize("seed", range(3))
def test_300_argument_lists_end_in_success_or_one_line(tmp_path, home, capsys, monkeypatch, seed):
    """100 per seed; the project folder holds a bent configuration, so most commands stop at loading it."""
    rng = random.Random(seed)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "airflow-infra.toml").write_text(bent(rng))
    for _ in range(100):
        argv = list(rng.choice(COMMANDS))
        for _ in range(rng.randrange(0, 4)):
            argv.insert(rng.randrange(len(argv) + 1), rng.choice(FLAGS))
            if rng.random() < 0.7:
                argv.append(
                    rng.choice(
                        [
                            *(t for t in ODD_TEXT if ".." not in t),
                            "-5",
                            "nan",
                            "30s",
                            "x=y",
                            "project.name=Bad",
                            "json",
                            "/nonexistent/file",
                            str(tmp_path / "airflow-infra.toml"),
                        ]
                    )
                )
        code: object = 0
        try:
            main(["--lock-timeout", "0", *argv] if rng.random() < 0.5 else argv)
        except SystemExit as ended:
            code = ended.code
        err = capsys.readouterr().err
        assert code in (0, 1, None) or (code == 2 and "--detailed-exitcode" in argv), (argv, err)
        if code == 1:
            one_line_or_nothing(err.split("Warning: ")[-1])
        assert "Traceback" not in err and "unexpected" not in err.lower(), (argv, err)
