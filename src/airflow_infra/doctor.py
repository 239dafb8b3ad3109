"""`doctor`: from where it runs, does each connection work? Postgres as the etl user; the bucket by
listing, putting and deleting a probe object. Each check says why it failed; none raises."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import ProviderError
from .pgerrors import translated


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _postgres(o: dict) -> Check:
    import psycopg

    try:
        tls = {k: o[f"postgres_{k}"] for k in ("sslmode", "sslrootcert") if o.get(f"postgres_{k}")}  # as Airflow's
        where = f"{o['postgres_host']}:{o['postgres_port']}/{o['postgres_database']}"
        with (
            translated(where, connecting=True),
            psycopg.connect(
                host=o["postgres_host"],
                port=o["postgres_port"],
                dbname=o["postgres_database"],
                user=o["etl_user"],
                password=o["etl_password"],
                connect_timeout=10,
                **tls,
            ) as conn,
        ):
            row = conn.execute("SELECT current_user").fetchone()
            user = row[0] if row else "?"
        return Check(
            "postgres (etl user)",
            True,
            f"connected to {where} as {user}",
        )
    except ProviderError as exc:
        return Check("postgres (etl user)", False, str(exc))


def _local_bucket(path: str) -> Check:
    probe = Path(path) / f".airflow-infra-doctor-{uuid.uuid4().hex}"
    try:
        list(Path(path).iterdir())
        probe.write_text("probe")
        probe.unlink()
        return Check("bucket (list, put, delete)", True, path)
    except OSError as exc:
        return Check("bucket (list, put, delete)", False, f"{path}: {exc.strerror}")


def _ages(ages: dict[str, float], max_days: int) -> Check:
    old = {role: days for role, days in sorted(ages.items()) if days > max_days}
    if old:
        return Check(
            "password age",
            False,
            "; ".join(f"{role}: {days:.0f} days old" for role, days in old.items())
            + f" (more than [secrets] max_age_days = {max_days}): `airflow-infra rotate` gives new ones",
        )
    return Check(
        "password age",
        True,
        ", ".join(f"{role}: {days:.0f} days" for role, days in sorted(ages.items())) + f" (at most {max_days})",
    )


def run(
    outputs: dict[str, dict],
    *,
    s3=None,
    secret_ages: dict[str, float] | None = None,
    max_age_days: int = 90,
    local_stopped: bool = False,
) -> list[Check]:
    """secret_ages: role -> days since its password last changed, where the store keeps that;
    local_stopped: the project's server is the local one, and it is not running."""
    o = {k: v["value"] for k, v in outputs.items()}
    if "postgres_database" not in o:
        return [Check("state", False, "nothing applied yet: run `airflow-infra apply`")]
    if local_stopped:  # no connection to try: what to do instead
        checks = [
            Check(
                "postgres (etl user)",
                False,
                "the local PostgreSQL is not running: `airflow-infra local start` "
                "starts it (so does any plan or apply)",
            )
        ]
    else:
        checks = [_postgres(o)]
    if secret_ages:
        checks.append(_ages(secret_ages, max_age_days))
    if "bucket_path" in o:
        checks.append(_local_bucket(o["bucket_path"]))
    elif "bucket_name" in o and s3 is not None:
        from .aws.clients import AwsError, aws

        prefix = o["bucket_url"].split("/", 3)[3] if o["bucket_url"].count("/") >= 3 else ""
        key = f"{prefix}.airflow-infra-doctor-{uuid.uuid4().hex}"
        try:
            with aws(o["bucket_url"], "probe"):
                s3.list_objects_v2(Bucket=o["bucket_name"], Prefix=prefix, MaxKeys=1)
                put = s3.put_object(Bucket=o["bucket_name"], Key=key, Body=b"probe")
                # By its version: a plain delete in a versioned bucket would leave the probe behind a
                # delete marker, and the bucket no longer empty.
                version = {"VersionId": put["VersionId"]} if put.get("VersionId") else {}
                s3.delete_object(Bucket=o["bucket_name"], Key=key, **version)
            checks.append(Check("bucket (list, put, delete)", True, o["bucket_url"]))
        except AwsError as exc:  # a check that failed is the doctor's answer, not an error
            checks.append(
                Check("bucket (list, put, delete)", False, f"{o['bucket_url']}: {exc.code or type(exc).__name__}")
            )
    return checks
