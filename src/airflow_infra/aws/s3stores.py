"""What an S3-compatible store can do, found out rather than assumed.

AWS, MinIO, Ceph and s3rver differ: a call a store lacks comes back as 501, 405, a 400 it cannot
parse, or (s3rver, on a settings PUT) 409 BucketAlreadyExists. The bucket provider and the S3 state
backend both read those answers here, and list a bucket's versions here: from ListObjectVersions,
or from ListObjectsV2 on a store that keeps no versions (each object is then its "null" version).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from .clients import AwsError, Unsupported

NOT_IMPLEMENTED = {"NotImplemented", "XNotImplemented", "501"}
_NOT_LACKING_400 = ("KMS.", "InvalidBucketName", "InvalidAccessKeyId", "ExpiredToken", "InvalidArgument")


# the settings getters; a store that does not know the subresource answers as to a plain GET of the
# bucket: a listing (s3rver's GET ?versioning), which botocore would read as "never turned on"
_GETTERS = {
    "GetBucketVersioning",
    "GetBucketEncryption",
    "GetPublicAccessBlock",
    "GetBucketOwnershipControls",
    "GetBucketLifecycleConfiguration",
    "GetBucketTagging",
    "GetBucketPolicy",
}
_LISTINGS = (b"ListBucketResult", b"ListVersionsResult")


class NotASetting(Unsupported):
    """A 200 whose body is not the setting asked for."""

    detail = "the store answered with a bucket listing"


def check_setting_bodies(client: Any) -> None:
    """Make a settings getter's 200 that is not that setting raise NotASetting, rather than parse as
    an empty setting (botocore reads a bucket listing as "versioning never turned on")."""

    def check(http_response: Any, model: Any, **_: Any) -> None:
        if model.name not in _GETTERS or http_response.status_code != 200:
            return
        body = http_response.content or b""
        start = body.find(b"<", body.find(b"?>") + 1 if body.startswith(b"<?xml") else 0)
        if body[start + 1 :].startswith(_LISTINGS):
            raise NotASetting(f"{model.name}: {NotASetting.detail}")

    client.meta.events.register("after-call.s3", check)


def unsupported_answer(exc: BaseException, *, put: bool = False) -> bool:
    """Whether a store's error means "this store has no such call": 501, 405, a 400 (a subresource it
    cannot parse), and on a settings PUT a 409 other than OperationAborted. Throttling, permissions,
    bad credentials and missing buckets are not."""
    if isinstance(exc, NotASetting):
        return True
    if not isinstance(exc, AwsError):
        return False
    code, status = exc.code, exc.status
    if code in NOT_IMPLEMENTED or code == "MethodNotAllowed" or status in (405, 501):
        return True
    if status == 400:
        return not (code or "").startswith(_NOT_LACKING_400)
    return put and status == 409 and code != "OperationAborted"


def _iso(when: Any) -> str:
    return when.isoformat() if hasattr(when, "isoformat") else str(when or "")


def version_pages(
    s3: Any,
    bucket: str,
    prefix: str = "",
    *,
    unversioned: set[str] | None = None,
) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """Each page of a bucket's versions and delete markers (under prefix, oldest pages first as the
    store lists them), and whether more pages follow. unversioned: buckets known to have no
    ListObjectVersions; one found so is added."""
    if unversioned is None or bucket not in unversioned:
        pages = iter(s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix))
        try:
            first = next(pages, None)
        except AwsError as exc:
            if not unsupported_answer(exc):
                raise
            if unversioned is not None:
                unversioned.add(bucket)
        else:
            for page in itertools.chain([first] if first is not None else [], pages):
                yield (
                    [*map(_version, page.get("Versions", [])), *map(_marker, page.get("DeleteMarkers", []))],
                    bool(page.get("IsTruncated")),
                )
            return
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield (
            [{**_version(o), "VersionId": "null", "IsLatest": True} for o in page.get("Contents", [])],
            bool(page.get("IsTruncated")),
        )


def _version(v: dict[str, Any]) -> dict[str, Any]:
    return {
        "Key": v["Key"],
        "VersionId": v.get("VersionId") or "null",
        "IsLatest": v.get("IsLatest", False),
        "DeleteMarker": False,
        "Size": v.get("Size", 0),
        "ETag": v.get("ETag", ""),
        "LastModified": _iso(v.get("LastModified")),
    }


def _marker(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "Key": m["Key"],
        "VersionId": m.get("VersionId") or "null",
        "IsLatest": m.get("IsLatest", False),
        "DeleteMarker": True,
        "Size": 0,
        "LastModified": _iso(m.get("LastModified")),
    }
