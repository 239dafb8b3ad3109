"""The bucket parts a target assembles: a directory on this machine, or a bucket (or a prefix of
a shared one) on S3 or any S3-compatible store; each with the outputs that say where it is."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..ownership import Owner, project_tags
from ..providers.base import Provider
from ..resources import Resource
from ..state.base import State


class LocalWorkfiles:
    def __init__(self, config: Config, home: Path):
        self.config = config
        self.home = home

    def resources(self) -> list[Resource]:
        path = self.config.bucket.path or str(self.home / "buckets" / self.config.project.name)
        return [
            Resource(
                "local_bucket",
                "workfiles",
                {"path": str(Path(path).expanduser().resolve()), "private": True, "marked": True},
            )
        ]

    def providers(self, owner: Owner) -> list[Provider]:
        from ..providers.localdir import LocalBucketProvider

        return [LocalBucketProvider(owner)]

    def outputs(self, state: State) -> dict[str, tuple[Any, bool]]:
        bucket = state.resources.get("local_bucket.workfiles")
        if bucket is None:
            return {}
        return {
            "bucket_url": (Path(bucket.attrs["path"]).as_uri(), False),
            "bucket_path": (bucket.attrs["path"], False),
        }


class S3Workfiles:
    """[bucket] prefix set: a prefix of a bucket someone else keeps; else a bucket of our own."""

    def __init__(self, config: Config):
        self.config = config
        self._s3: Any = None
        if len(config.bucket_name) > 63:
            raise ConfigError(
                f"[bucket] name: the default {config.bucket_name!r} is longer than 63 characters: set [bucket] name"
            )

    def client(self) -> Any:
        # Made once, by providers(), before any reader thread starts.
        if self._s3 is None:
            try:
                from ..aws.clients import s3_client
            except ImportError:
                raise ConfigError(
                    f"[target] kind = \"{self.config.target.kind}\" needs boto3: pip install 'airflow-infra[s3]'"
                ) from None
            c, b = self.config, self.config.bucket
            self._s3 = s3_client(
                region=c.bucket_region, endpoint_url=b.endpoint_url, addressing_style=b.addressing_style
            )
        return self._s3

    def resources(self) -> list[Resource]:
        from ..providers.s3 import desired_settings

        c, b = self.config, self.config.bucket
        if b.prefix:
            return [
                Resource(
                    "s3_prefix",
                    "workfiles",
                    {"bucket": c.bucket_name, "prefix": b.prefix, "region": c.bucket_region, "marked": True},
                )
            ]
        tags = project_tags(c.project.name, c.project.environment)
        logging = (
            {"logging": {"bucket": b.access_log_bucket, "prefix": f"{c.bucket_name}/"} if b.access_log_bucket else None}
            if c.target.kind == "aws"
            else {}
        )
        return [
            Resource(
                "s3_bucket",
                "workfiles",
                {
                    "marked": True,
                    "name": c.bucket_name,
                    "region": c.bucket_region,
                    **logging,
                    **desired_settings(
                        sse=c.bucket_sse,
                        kms_key_id=b.kms_key_id,
                        noncurrent_days=b.noncurrent_days,
                        tmp_expire_days=b.tmp_expire_days,
                        tags=tags,
                        tls_only=b.tls_only,
                    ),
                },
            )
        ]

    def providers(self, owner: Owner) -> list[Provider]:
        from ..providers.s3 import S3BucketProvider
        from ..providers.s3prefix import S3PrefixProvider

        self.client()
        backup = self.config.bucket.backup
        return [
            S3BucketProvider(self.client, owner, backup_to=backup),
            S3PrefixProvider(self.client, owner, backup_to=backup),
        ]

    def outputs(self, state: State) -> dict[str, tuple[Any, bool]]:
        c = self.config
        bucket = state.resources.get("s3_bucket.workfiles") or state.resources.get("s3_prefix.workfiles")
        if bucket is None:
            return {}
        name = bucket.attrs.get("name") or bucket.attrs["bucket"]
        out: dict[str, tuple[Any, bool]] = {
            "bucket_url": (f"s3://{name}/{bucket.attrs.get('prefix', '')}", False),
            "bucket_name": (name, False),
            "bucket_region": (c.bucket_region, False),
        }
        endpoint = c.bucket.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            out["bucket_endpoint_url"] = (endpoint, False)
        return out
