"""The S3 state backend's locks (an object created with If-None-Match, or Terraform's DynamoDB item)
and the digest item that holds compare-and-swap on a store that ignores conditional writes."""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from ...aws.clients import (
    Conflict,
    NoSuchBucket,
    NotFound,
    PreconditionFailed,
)
from ..base import LockInfo, State

_LOST = (PreconditionFailed, Conflict)  # a conditional write that lost (S3 says 412, or 409 while another is in flight)


def _now() -> datetime:
    return datetime.now(UTC)


def _expires(holder: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(holder["expires"]) if "expires" in holder else None
    except (TypeError, ValueError):
        return None


def _holder(raw: str, what: str) -> dict[str, Any]:
    """A lock as stored; one nobody can read (cut short, changed by hand) gets an ID of its own, which
    `force-unlock` takes (the delete stays conditional on what was read)."""
    try:
        doc = json.loads(raw)
        LockInfo.from_doc(doc)  # ValueError when it is not a lock (a field of the wrong type, no ID)
        if not isinstance(doc.get("expires", ""), str):
            doc = {k: v for k, v in doc.items() if k != "expires"}
        return dict(doc)
    except ValueError:
        pass
    return {
        "ID": f"unreadable-{hashlib.md5(raw.encode()).hexdigest()[:12]}",
        "Operation": "unknown",
        "Who": f"unknown ({what} cannot be read)",
        "Version": "",
        "Created": "",
        "Path": "",
        "pid": 0,
        "host": "",
    }


class _Conflict(Exception):
    """A compare-and-swap lost to another writer."""


class _S3Lock:
    def __init__(self, s3: Any, bucket: str, key: str):
        self.s3, self.bucket, self.key = s3, bucket, f"{key}.lock"
        self._etag: str | None = None

    def get(self) -> tuple[dict[str, Any], str] | None:
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except NoSuchBucket:
            raise
        except NotFound:
            return None
        return _holder(obj["Body"].read().decode(errors="replace"), f"the lock object {self.key!r}"), obj["ETag"]

    def put(self, doc: dict[str, Any], *, replacing: str | None) -> bool:
        """Create (replacing None) or replace the object whose ETag is replacing; False when someone else won."""
        cond = {"IfMatch": replacing} if replacing else {"IfNoneMatch": "*"}
        try:
            resp = self.s3.put_object(
                Bucket=self.bucket, Key=self.key, Body=json.dumps(doc).encode(), ContentType="application/json", **cond
            )
        except NoSuchBucket:
            raise
        except (*_LOST, NotFound):  # NotFound: replacing one deleted meanwhile
            return False
        self._etag = resp["ETag"]
        return True

    def renew(self, doc: dict[str, Any]) -> bool:
        return self._etag is not None and self.put(doc, replacing=self._etag)

    def delete(self, etag: str) -> None:
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
        except NoSuchBucket:
            raise
        except NotFound:
            pass


class _DynamoLock:
    def __init__(self, ddb: Any, table: str, lock_id: str):
        self.ddb, self.table, self.lock_id = ddb, table, lock_id
        self._info: str | None = None

    def get(self) -> tuple[dict[str, Any], str] | None:
        item = self.ddb.get_item(TableName=self.table, Key={"LockID": {"S": self.lock_id}}, ConsistentRead=True).get(
            "Item"
        )
        if not item or "Info" not in item:
            return None
        raw = item["Info"].get("S", "")
        return _holder(raw, f"the lock item {self.lock_id!r} in {self.table}"), raw

    def put(self, doc: dict[str, Any], *, replacing: str | None) -> bool:
        info = json.dumps(doc, sort_keys=True)
        cond = (
            {"ConditionExpression": "Info = :old", "ExpressionAttributeValues": {":old": {"S": replacing}}}
            if replacing
            else {"ConditionExpression": "attribute_not_exists(LockID)"}
        )
        try:
            self.ddb.put_item(TableName=self.table, Item={"LockID": {"S": self.lock_id}, "Info": {"S": info}}, **cond)
        except PreconditionFailed:
            return False
        self._info = info
        return True

    def renew(self, doc: dict[str, Any]) -> bool:
        return self._info is not None and self.put(doc, replacing=self._info)

    def delete(self, token: str) -> None:
        with contextlib.suppress(PreconditionFailed):
            self.ddb.delete_item(
                TableName=self.table,
                Key={"LockID": {"S": self.lock_id}},
                ConditionExpression="Info = :old",
                ExpressionAttributeValues={":old": {"S": token}},
            )


class _Digest:
    """Compare-and-swap kept in the lock table for a store that ignores conditional writes: the item
    "<bucket>/<key>-md5" (where Terraform keeps its Digest) holds the MD5 of the current state, its
    serial and lineage. Moving it from the digest a writer read to its own is the write's commit:
    of two writers from one state, one fails."""

    def __init__(self, ddb: Any, table: str, lock_id: str):
        self.ddb, self.table, self.key = ddb, table, {"LockID": {"S": f"{lock_id}-md5"}}

    def get(self) -> tuple[str, int] | None:
        item = self.ddb.get_item(TableName=self.table, Key=self.key, ConsistentRead=True).get("Item")
        if not item or "Digest" not in item:
            return None
        return item["Digest"]["S"], int(item.get("Serial", {}).get("N", "0"))

    def set(self, body: bytes, state: State) -> None:
        """Whatever it holds: a write made on a store found to honour conditional writes, where an
        older digest (from when it did not) would otherwise name a state no longer current."""
        self.ddb.update_item(
            TableName=self.table,
            Key=self.key,
            UpdateExpression="SET Digest = :d, Serial = :s, Lineage = :l",
            ExpressionAttributeValues={
                ":d": {"S": hashlib.md5(body).hexdigest()},
                ":s": {"N": str(state.serial)},
                ":l": {"S": state.lineage},
            },
        )

    def swap(self, old: str | None, body: bytes, state: State) -> bool:
        cond: dict[str, Any] = (
            {"ConditionExpression": "Digest = :old", "ExpressionAttributeValues": {":old": {"S": old}}}
            if old is not None
            else {"ConditionExpression": "attribute_not_exists(Digest)"}
        )
        values = {
            ":d": {"S": hashlib.md5(body).hexdigest()},
            ":s": {"N": str(state.serial)},
            ":l": {"S": state.lineage},
        }
        cond["ExpressionAttributeValues"] = {**cond.get("ExpressionAttributeValues", {}), **values}
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self.key,
                UpdateExpression="SET Digest = :d, Serial = :s, Lineage = :l",
                **cond,
            )
        except PreconditionFailed:
            return False
        return True
