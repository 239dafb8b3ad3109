"""The workfiles bucket on S3 or any S3-compatible store, done properly.

A bucket of our own (``s3_bucket``) gets versioning, default encryption, all four
public-access-block flags, BucketOwnerEnforced, a policy denying non-TLS access, lifecycle rules
and tags; each is read back on refresh as a small canonical value, so drift shows field by
field. A project under a prefix of a shared bucket (``s3_prefix``) owns only its prefix.
Settings a store does not implement (MinIO and Ceph differ from AWS) are reported, not failed on.
Above 450 lines: one provider, whose settings and data (backup, restore, emptying) the prefix
provider (s3prefix.py) shares.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..aws.clients import (
    AccessDenied,
    AwsError,
    BucketNotEmpty,
    BucketTaken,
    NoSuchBucket,
    NotConfigured,
    NotFound,
    aws,
    translated,
)
from ..aws.s3stores import unsupported_answer, version_pages
from ..backups import (
    MANIFEST_SUFFIX,
    backup_dir,
    check_manifest,
    history_order,
    manifest_doc,
    object_name,
    stamp,
    written_whole,
)
from ..errors import ForeignResource, ProviderError
from ..files import read_text
from ..ownership import Owner, judge
from ..resources import Observed, Resource
from .base import Provider, read_back

TRANSFERS = 10  # object copies at a time in backups and restores, as `aws s3 sync` makes
_STREAM_ABOVE = 64 << 20  # a restored version larger than this is uploaded in parts, streamed

POLICY_SID = "AirflowInfraDenyInsecureTransport"
PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
_NOT_A_SETTING = (KeyError, IndexError, TypeError, ValueError)  # a 200 whose body is not the setting asked for
OPTIONAL = ("logging",)  # read only for a bucket whose desired settings name it (the aws target's)


def desired_settings(
    *,
    sse: str,
    kms_key_id: str | None,
    noncurrent_days: int,
    tmp_expire_days: int | None,
    tags: dict[str, str],
    tls_only: bool = True,
) -> dict[str, Any]:
    return {
        "versioning": "Enabled",
        "encryption": {"sse": sse, "kms_key_id": kms_key_id},
        "public_access_block": {f: True for f in PAB_FLAGS},
        "ownership": "BucketOwnerEnforced",
        "tls_only": tls_only,
        "other_policy_statements": [],
        "lifecycle": {
            "abort_multipart_days": 7,
            "noncurrent_days": noncurrent_days,
            "tmp_expire_days": tmp_expire_days,
        },
        "tags": dict(sorted(tags.items())),
    }


def _lifecycle_rules(lc: dict[str, Any]) -> list[dict[str, Any]]:
    rules = [
        {
            "ID": "airflow-infra-abort-multipart",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": lc["abort_multipart_days"]},
        },
        {
            "ID": "airflow-infra-expire-noncurrent",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": lc["noncurrent_days"]},
        },
    ]
    if lc.get("tmp_expire_days"):
        rules.append(
            {
                "ID": "airflow-infra-expire-tmp",
                "Status": "Enabled",
                "Filter": {"Prefix": "tmp/"},
                "Expiration": {"Days": lc["tmp_expire_days"]},
            }
        )
    return rules


def _lifecycle_summary(rules: list[dict[str, Any]]) -> dict[str, Any]:
    by_id = {r.get("ID"): r for r in rules if r.get("Status") == "Enabled"}
    abort = by_id.get("airflow-infra-abort-multipart", {}).get("AbortIncompleteMultipartUpload", {})
    noncurrent = by_id.get("airflow-infra-expire-noncurrent", {}).get("NoncurrentVersionExpiration", {})
    tmp = by_id.get("airflow-infra-expire-tmp", {}).get("Expiration", {})
    return {
        "abort_multipart_days": abort.get("DaysAfterInitiation"),
        "noncurrent_days": noncurrent.get("NoncurrentDays"),
        "tmp_expire_days": tmp.get("Days"),
    }


def _tls_statement(bucket: str) -> dict[str, Any]:
    arn = f"arn:aws:s3:::{bucket}"
    return {
        "Sid": POLICY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _judge_policy(policy: dict[str, Any]) -> tuple[bool, list[str]]:
    """(our TLS statement is there, every other statement in words): a statement we did not write
    (an Allow to Principal * made by hand) is drift, and apply leaves only ours."""
    ours, others = False, []
    for st in policy.get("Statement", []):
        if st.get("Sid") == POLICY_SID and st.get("Effect") == "Deny":
            ours = True
            continue
        principal = st.get("Principal")
        if isinstance(principal, dict):
            principal = ",".join(str(v) for v in principal.values())
        others.append(f"{st.get('Sid') or '(no Sid)'}: {st.get('Effect')} {principal} {st.get('Action')}")
    return ours, sorted(others)


PREFIX_MARKER = ".airflow-infra"  # <prefix>.airflow-infra: the object that says whose a prefix is


class S3BucketProvider(Provider):
    type = "s3_bucket"
    force_new = frozenset({"name", "region"})
    SETTINGS = ("versioning", "encryption", "public_access_block", "ownership", "tls_only", "lifecycle", "tags")

    def __init__(self, client: Callable[[], Any], owner: Owner, *, backup_to: str | None = None):
        self._client = client
        self.owner = owner
        self.backup_to = backup_to
        # (bucket, prefix) -> the versions its last backup holds: emptying deletes those and no
        # other, so what is written after the backup stays (and the bucket's delete then fails)
        self._backed_up: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._unsupported: dict[str, set[str]] = {}  # bucket -> settings the store was found not to keep
        self._unversioned: set[str] = set()  # buckets of a store without ListObjectVersions

    @property
    def s3(self) -> Any:
        return self._client()

    # -- read: one getter per setting, all at once ----------------------------------------------
    def _get(self, bucket: str, setting: str) -> Any:
        s3 = self.s3
        if setting == "versioning":
            return s3.get_bucket_versioning(Bucket=bucket).get("Status", "Disabled")
        if setting == "encryption":
            rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
            d = rule["ApplyServerSideEncryptionByDefault"]
            return {"sse": d["SSEAlgorithm"], "kms_key_id": d.get("KMSMasterKeyID")}
        if setting == "public_access_block":
            conf = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
            return {f: bool(conf.get(f)) for f in PAB_FLAGS}
        if setting == "ownership":
            return s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"][0]["ObjectOwnership"]
        if setting == "tls_only":  # the whole policy: read() judges our statement and every other one
            return json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        if setting == "lifecycle":
            return _lifecycle_summary(s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", []))
        if setting == "tags":
            return dict(sorted((t["Key"], t["Value"]) for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]))
        if setting == "logging":  # server access logs (FSBP S3.9): where they go, or None
            on = s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled")
            return {"bucket": on["TargetBucket"], "prefix": on.get("TargetPrefix", "")} if on else None
        raise AssertionError(setting)

    def _absent_value(self, setting: str) -> Any:
        return {
            "encryption": None,
            "public_access_block": {f: False for f in PAB_FLAGS},
            "ownership": None,
            "tls_only": {"Statement": []},
            "lifecycle": _lifecycle_summary([]),
            "tags": {},
        }[setting]

    def _read_setting(self, bucket: str, setting: str) -> tuple[Any, bool]:
        """(value, unsupported?); raises _Gone when the bucket does not exist. A setting this store
        was found not to keep is not asked again."""
        if setting in self._unsupported.get(bucket, ()):
            return None, True
        try:
            return self._get(bucket, setting), False
        except _NOT_A_SETTING:
            return self._lacks(bucket, setting)
        except NoSuchBucket:
            raise _Gone() from None
        except NotConfigured:
            return self._absent_value(setting), False
        except AwsError as exc:
            if unsupported_answer(exc):
                return self._lacks(bucket, setting)
            raise

    def _exists(self, bucket: str) -> None:
        try:
            self.s3.head_bucket(Bucket=bucket)
        except NotFound:
            raise _Gone() from None

    def _lacks(self, bucket: str, setting: str) -> tuple[None, bool]:
        """Remember, for this run, that the store does not keep setting on bucket."""
        self._unsupported.setdefault(bucket, set()).add(setting)
        return None, True

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        bucket = r.attrs["name"]
        if prior is not None:  # found unsupported by an earlier run: a store that took no PUT of it still takes none
            self._unsupported.setdefault(bucket, set()).update(prior.attrs.get("unsupported", []))
        try:
            with aws(r.address, "read"):
                settings = (*self.SETTINGS, *(s for s in OPTIONAL if s in r.attrs))
                if self._unsupported.get(bucket, set()) >= set(settings):
                    self._exists(bucket)  # no setting left to ask: whether the bucket is there at all
                with ThreadPoolExecutor(max_workers=len(settings)) as pool:
                    read = pool.map(lambda s: self._read_setting(bucket, s), settings)
                    results = dict(zip(settings, read, strict=True))
        except _Gone:
            return None
        except AccessDenied:
            return Observed({"name": bucket}, foreign=True, whose="of another account (access denied)")
        attrs: dict[str, Any] = {"name": bucket, "region": r.attrs["region"]}
        unsupported = []
        for setting, (value, missing) in results.items():
            if missing:
                unsupported.append(setting)
                value = r.attrs.get(setting)  # nothing to compare against: take it as desired
            attrs[setting] = value
        if "tls_only" in unsupported:
            attrs["other_policy_statements"] = r.attrs.get("other_policy_statements", [])
        else:
            attrs["tls_only"], attrs["other_policy_statements"] = _judge_policy(attrs["tls_only"])
        attrs["unsupported"] = sorted(unsupported)
        # the lineage tag is part of the marker (judged here), not of the tags the config asks for
        found = None if "tags" in unsupported else Owner.from_tags(attrs["tags"])
        if "tags" not in unsupported:
            attrs["tags"] = {k: v for k, v in attrs["tags"].items() if k != "Lineage"}
        v = judge(self.owner, found, recorded=prior is not None)
        whose = v.whose + (" (the store keeps no tags, so nothing can say so)" if "tags" in unsupported else "")
        marked = v.marked or (v.ours and "tags" in unsupported)  # nothing more can be written there
        return Observed({**attrs, "marked": marked}, foreign=not v.ours, whose=whose)

    def mark(self, r: Resource) -> None:
        """Our tags on the bucket, beside the ones it has (none on a store that keeps none)."""
        bucket = r.attrs["name"]
        with translated(r.address, "import"):
            have, unsupported = self._read_setting(bucket, "tags")
            if not unsupported:
                self._put(bucket, "tags", have)

    def warnings(self, observed: Observed) -> list[str]:
        out = []
        if observed.attrs.get("unsupported"):
            out.append(
                f"bucket {observed.attrs['name']}: the store does not support "
                f"{', '.join(observed.attrs['unsupported'])}; left as they are"
            )
        if "logging" in observed.attrs and self.owner.environment != "dev":  # the aws target's bucket, outside dev
            if not observed.attrs["logging"]:
                out.append(f"bucket {observed.attrs['name']} keeps no server access logs ([bucket] access_log_bucket)")
            if (observed.attrs.get("encryption") or {}).get("sse") != "aws:kms":
                out.append(f"bucket {observed.attrs['name']} is not encrypted with KMS ([bucket] sse)")
        return out

    # -- write -----------------------------------------------------------------------------
    def _put(self, bucket: str, setting: str, value: Any) -> None:
        s3 = self.s3
        if setting == "versioning":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": value})
        elif setting == "encryption":
            default = {"SSEAlgorithm": value["sse"]}
            if value.get("kms_key_id"):
                default["KMSMasterKeyID"] = value["kms_key_id"]
            s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": value["sse"] == "aws:kms"}
                    ]
                },
            )
        elif setting == "public_access_block":
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict(value))
        elif setting == "ownership":
            s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": value}]})
        elif setting == "tls_only":  # the policy is ours alone: our statement, or none
            if value:
                s3.put_bucket_policy(
                    Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [_tls_statement(bucket)]})
                )
            else:
                s3.delete_bucket_policy(Bucket=bucket)
        elif setting == "lifecycle":
            s3.put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration={"Rules": _lifecycle_rules(value)}
            )
        elif setting == "logging":
            on = {"LoggingEnabled": {"TargetBucket": value["bucket"], "TargetPrefix": value["prefix"]}} if value else {}
            s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=on)
        elif setting == "tags":  # with our marker, always
            tags = {**value, **self.owner.tags()}
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})

    def _converge(self, r: Resource, current: dict[str, Any] | None) -> list[str]:
        unsupported = set((current or {}).get("unsupported", []))
        # Tags first: they are our marker. Ownership before the policy; the PAB before the policy too.
        for setting in (
            "tags",
            "ownership",
            "public_access_block",
            "encryption",
            "versioning",
            "tls_only",
            "lifecycle",
            *(s for s in OPTIONAL if s in r.attrs),
        ):
            if setting in unsupported or (
                current is not None
                and current.get(setting) == r.attrs[setting]
                and (setting != "tags" or current.get("marked"))
                and (setting != "tls_only" or not current.get("other_policy_statements"))
            ):
                continue
            try:
                self._put(r.attrs["name"], setting, r.attrs[setting])
            except AwsError as exc:
                if unsupported_answer(exc, put=True):
                    unsupported.add(setting)
                    self._lacks(r.attrs["name"], setting)
                    continue
                raise
        return sorted(unsupported)

    def create(self, r: Resource) -> Observed:
        bucket, region = r.attrs["name"], r.attrs["region"]
        existing = self.read(r, None)
        if existing is not None and existing.foreign:
            raise ForeignResource(
                f"{r.address}: bucket {bucket!r} exists, {existing.whose}: choose another [bucket] "
                "name, or take it over on purpose with `airflow-infra import`"
            )
        if existing is None:
            kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            try:
                with aws(r.address, "create"):
                    self.s3.create_bucket(Bucket=bucket, **kwargs)
            except BucketTaken:  # only CreateBucket's own answer says the name is someone else's
                raise ProviderError(
                    f"{r.address}: the bucket name {bucket!r} is taken by another account: choose another [bucket] name"
                ) from None
        try:
            with aws(r.address, "create"):
                self._converge(r, None if existing is None else dict(existing.attrs))
        except Exception:  # a cleanup edge: all-or-nothing, whatever stopped it
            if existing is None:  # an empty bucket we just made goes again
                with contextlib.suppress(AwsError):
                    self.s3.delete_bucket(Bucket=bucket)
            raise
        return read_back(self, r, Observed(dict(r.attrs)))  # ours now, also where the store keeps no tags to say so

    def update(self, r: Resource, prior: Observed) -> Observed:
        with translated(r.address, "update"):
            self._converge(r, dict(prior.attrs))
        return read_back(self, r, prior)

    # -- data ------------------------------------------------------------------------------
    def _versions(self, bucket: str, prefix: str = "") -> Iterator[dict[str, Any]]:
        for page, _ in version_pages(self.s3, bucket, prefix, unversioned=self._unversioned):
            yield from page

    def _count(self, r: Resource, bucket: str, prefix: str, *, besides: str | None = None) -> str | None:
        """What a delete would lose, from the first page of versions: "N object versions" or None."""
        try:
            with aws(r.address, "read"):
                page, more = next(version_pages(self.s3, bucket, prefix, unversioned=self._unversioned), ([], False))
        except NoSuchBucket:
            return None
        n = sum(v["Key"] != besides for v in page)
        if not n:
            return None
        return f"{'more than ' if more else ''}{n} object version{'s' if n != 1 else ''}"

    def holds_data(self, r: Resource, observed: Observed) -> str | None:
        return self._count(r, r.attrs["name"], "")

    def _backup(self, r: Resource, bucket: str, prefix: str, dest: Path, *, besides: str | None = None) -> str:
        """Copy every version and delete marker (the "null" version of objects written before
        versioning included) to backup_to (s3://bucket/prefix) or a directory; the manifest,
        written last, lists them with sizes and checksums. Returns the manifest's address."""
        name = f"{bucket}-{stamp()}{MANIFEST_SUFFIX}"
        target = self.backup_to or str(dest)
        self._refuse_nested(r, bucket, prefix, besides)
        if target.startswith("s3://"):
            dbucket, _, dprefix = target[5:].partition("/")
            base = dprefix.strip("/")
            if dbucket == bucket and (base + "/").startswith(prefix):
                raise ProviderError(
                    f"{r.address}: [bucket] backup = {target!r} lies inside what is about to be "
                    "emptied: choose another bucket or prefix; nothing was deleted"
                )
            with translated(r.address, "backup"):
                claimed = self._claimed_above(dbucket, base + "/" if base else "", inclusive=True)
            if claimed is not None:  # another project's destroy would empty it, backups and all
                raise ProviderError(
                    f"{r.address}: [bucket] backup = {target!r} lies inside {claimed}: choose a "
                    "bucket or prefix no project's marker claims; nothing was deleted"
                )
        with translated(r.address, "backup"):
            versions = [v for v in self._versions(bucket, prefix) if v["Key"] != besides]
            if target.startswith("s3://"):

                def keep(v: dict[str, Any]) -> None:
                    v["Object"] = object_name(bucket, v)
                    # a server-side copy; ETags are not compared: with SSE-KMS they are not the MD5
                    self.s3.copy_object(
                        Bucket=dbucket,
                        Key=f"{base}/{v['Object']}".lstrip("/"),
                        CopySource={"Bucket": bucket, "Key": v["Key"], **_source_version(v)},
                    )
            else:
                root = backup_dir(Path(target).expanduser())
                (root / "objects").mkdir(mode=0o700, exist_ok=True)
                os.chmod(root / "objects", 0o700)

                def keep(v: dict[str, Any]) -> None:
                    v["Object"] = object_name(bucket, v)
                    body = self.s3.get_object(Bucket=bucket, Key=v["Key"], **_source_version(v))["Body"]
                    digest = hashlib.sha256()
                    with written_whole(root / v["Object"]) as tmp, open(tmp, "wb") as f:
                        for chunk in body.iter_chunks(1 << 20):
                            digest.update(chunk)
                            f.write(chunk)
                    v["Sha256"] = digest.hexdigest()

            with ThreadPoolExecutor(max_workers=TRANSFERS) as pool:
                list(pool.map(keep, [v for v in versions if not v["DeleteMarker"]]))
            self._backed_up[(bucket, prefix)] = {(v["Key"], v["VersionId"]) for v in versions}
            doc = json.dumps(manifest_doc(bucket, prefix, versions), indent=1, sort_keys=True).encode()
            if target.startswith("s3://"):
                key = f"{base}/{name}".lstrip("/")
                self.s3.put_object(Bucket=dbucket, Key=key, Body=doc)
                return f"s3://{dbucket}/{key}"
            with written_whole(root / name) as tmp:
                tmp.write_bytes(doc)
            return str(root / name)

    def backup(self, r: Resource, observed: Observed, dest: Path) -> str:
        return self._backup(r, r.attrs["name"], "", dest)

    def _claimed_above(self, bucket: str, prefix: str, *, inclusive: bool = False) -> str | None:
        """The bucket or enclosing prefix whose marker claims prefix's place (inclusive: prefix's own
        marker too), in words; None. One call per level: the bucket's tags, then each prefix's marker."""
        try:
            tags = {t["Key"]: t["Value"] for t in self.s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
        except (AwsError, *_NOT_A_SETTING):  # no tags, or a store that keeps none: no bucket-level claim to see
            tags = {}
        owner = Owner.from_tags(tags)
        if owner is not None:
            return f"the bucket {bucket!r}, made by {owner.describe()}"
        parts = prefix.rstrip("/").split("/") if prefix else []
        for depth in range(1, len(parts) + (1 if inclusive else 0)):
            above = "/".join(parts[:depth]) + "/"
            whose = self._whose(bucket, above + PREFIX_MARKER)
            if whose is not None:
                return f"s3://{bucket}/{above}, {whose}"
        return None

    def _refuse_nested(self, r: Resource, bucket: str, prefix: str, besides: str | None) -> None:
        """ProviderError when another project's prefix marker lies inside what is about to be backed up
        and emptied: only what our own marker covers is ours to delete (invariant 6, docs/architecture.md)."""
        with translated(r.address, "read"):
            for v in self._versions(bucket, prefix):
                key = v["Key"]
                if (
                    key != besides
                    and key.endswith("/" + PREFIX_MARKER)
                    and not v["DeleteMarker"]
                    and v.get("IsLatest", True)
                ):
                    raise ProviderError(
                        f"{r.address}: s3://{bucket}/{key} marks a prefix "
                        f"{self._whose(bucket, key) or 'of another project'} "
                        f"inside s3://{bucket}/{prefix}: its objects are not this project's to "
                        "delete; destroy that project first (or remove its marker on purpose); "
                        "nothing was deleted"
                    )

    def _whose(self, bucket: str, marker_key: str) -> str | None:
        """Whose the prefix marker at marker_key says it is, in words ("made by project ..."); None when
        there is no such object."""
        try:
            body = self.s3.get_object(Bucket=bucket, Key=marker_key)["Body"].read(4096)
        except NoSuchBucket:
            raise
        except NotFound:
            return None
        found = Owner.from_marker(body.decode(errors="replace"))
        return f"made by {found.describe()}" if found else "marked by airflow-infra"

    def _place(self, r: Resource) -> tuple[str, str, str | None]:
        """(bucket, prefix, our marker's key): a bucket of its own has no prefix and no marker object."""
        return r.attrs["name"], "", None

    def _empty(self, r: Resource, bucket: str, prefix: str, *, besides: str | None = None) -> None:
        """Delete every version and delete marker the last backup holds, and no other (what came
        after the backup stays, so the bucket's delete fails rather than losing it); each per-key
        error is checked."""
        backed_up = self._backed_up.get((bucket, prefix), set())
        status, lacking = self._read_setting(bucket, "versioning")
        versioned = not lacking and status != "Disabled"
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            errors = self.s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True}).get("Errors", [])
            if errors:
                e = errors[0]
                raise ProviderError(
                    f"{r.address}: {len(errors)} object version(s) could not be deleted, e.g. "
                    f"{e.get('Key')!r}: {e.get('Code')}: {e.get('Message', '')}; the bucket is "
                    "left with what remains, recorded as it was"
                )
            batch.clear()

        for v in self._versions(bucket, prefix):
            if v["Key"] == besides or (v["Key"], v["VersionId"]) not in backed_up:
                continue
            # In a bucket that was ever versioned, the "null" version is deleted by its id too:
            # without one, S3 would only add a delete marker above it.
            batch.append({"Key": v["Key"], **({"VersionId": v["VersionId"]} if versioned else _version(v))})
            if len(batch) == 1000:
                flush()
        if batch:
            flush()

    def restore(self, r: Resource, source: str, *, replace: bool = False) -> tuple[int, list[str]]:
        """Put a bucket backup's versions back into r, oldest first per key (so each key's history
        and latest version come back); replace: delete what is there first (the caller has backed
        it up). Returns how many versions were written."""
        bucket, prefix, marker = self._place(r)
        doc, read = self._open_backup(r, source)

        def replay(versions: list[dict[str, Any]]) -> int:
            for v in versions:  # one key's history, in order
                key = prefix + v["Key"][len(doc.get("prefix", "")) :]
                if v["DeleteMarker"]:
                    self.s3.delete_object(Bucket=bucket, Key=key)
                    continue
                with contextlib.closing(read(v)) as body:  # streamed, never whole in memory
                    if v.get("Size", 0) > _STREAM_ABOVE:
                        self.s3.upload_fileobj(body, bucket, key)
                    else:
                        self.s3.put_object(Bucket=bucket, Key=key, Body=body.read())
            return len(versions)

        by_key: dict[str, list[dict[str, Any]]] = {}
        for v in history_order(doc["versions"]):
            by_key.setdefault(v["Key"], []).append(v)
        with translated(r.address, "restore"):
            if replace:
                self._empty(r, bucket, prefix, besides=marker)
            with ThreadPoolExecutor(max_workers=TRANSFERS) as pool:  # keys in parallel, each key's versions in order
                return sum(pool.map(replay, by_key.values())), []

    def _open_backup(self, r: Resource, source: str) -> tuple[dict[str, Any], Callable[[dict[str, Any]], Any]]:
        """The manifest, and a function reading one version's bytes (checked against the manifest)."""
        with translated(r.address, "restore"):
            if source.startswith("s3://"):
                sbucket, _, key = source[5:].partition("/")
                base = key.rsplit("/", 1)[0] if "/" in key else ""
                doc = json.loads(self.s3.get_object(Bucket=sbucket, Key=key)["Body"].read())

                def read(v: dict[str, Any]) -> Any:
                    return self.s3.get_object(Bucket=sbucket, Key=f"{base}/{v['Object']}".lstrip("/"))["Body"]
            else:
                path = Path(source).expanduser()
                doc = json.loads(read_text(path))

                def read(v: dict[str, Any]) -> Any:
                    copy = path.parent / v["Object"]
                    digest = hashlib.sha256()
                    with open(copy, "rb") as f:
                        for chunk in iter(lambda: f.read(1 << 20), b""):
                            digest.update(chunk)
                    if v.get("Sha256") and digest.hexdigest() != v["Sha256"]:
                        raise ProviderError(f"{source}: the copy of {v['Key']!r} does not match its checksum")
                    return open(copy, "rb")

        return check_manifest(doc, source), read

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        bucket = r.attrs["name"]
        try:
            with aws(r.address, "delete"):
                if force:
                    self._empty(r, bucket, "")
                self.s3.delete_bucket(Bucket=bucket)  # fails while anything is left: never deletes data unforced
        except (NoSuchBucket, _Gone):
            return
        except BucketNotEmpty:
            if force:
                raise ProviderError(
                    f"{r.address}: bucket {bucket!r} received new objects while it was emptied; "
                    "nothing more was deleted: stop what writes there and run again"
                ) from None
            raise ProviderError(f"{r.address}: bucket {bucket!r} is not empty: pass --force-delete-data") from None


def _source_version(v: dict[str, Any]) -> dict[str, Any]:
    """VersionId to read a version: the "null" one too when it is not the latest (an object
    written before versioning was turned on); the latest "null" is read without one."""
    return {} if v["VersionId"] == "null" and v["IsLatest"] else {"VersionId": v["VersionId"]}


def _version(v: dict[str, Any]) -> dict[str, Any]:
    """VersionId for a call; none for the "null" version of an unversioned bucket (not every store takes it)."""
    return {} if v["VersionId"] == "null" else {"VersionId": v["VersionId"]}


class _Gone(Exception):
    pass
