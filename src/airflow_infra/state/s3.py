"""The S3 state backend: the state object written with compare-and-swap, and leased locks.

- State: `<key>`, SSE-encrypted, written with If-Match on the ETag last read (If-None-Match: * for
  the first write), so a writer that lost its lock can never overwrite newer state.
- Lock "s3": an object `<key>.lock` created with If-None-Match: *, holding LockInfo and `expires`.
- Lock "dynamodb": Terraform's shape, an item LockID = "<bucket>/<key>" with an Info JSON attribute,
  written with a conditional put, so an existing Terraform lock table serves as it is.
- Leases: the holder renews `expires` (a conditional write on what it wrote last) every third of
  the lease; a lock whose lease ran out may be taken over, conditionally, so two waiters never both win.
- Fencing: before every step and every write the holder checks its lease on a clock that runs on
  while the process is stopped (CLOCK_BOOTTIME: SIGSTOP, a closed lid), and stops when it may have
  run out. A take-over first rewrites the state object naming the new lock's ID (its ETag changes),
  so a stale holder's conditional write fails even if its clock check was passed just before it
  stopped. Each write names the lock it was made under ("lock").
- Before using S3 locks on a store, a probe checks that it honours If-None-Match; if it does not, the
  S3 lock is refused rather than used unsafely.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from ..aws_clients import error_code, translate
from ..errors import (
    AirflowInfraError,
    ConfigError,
    LeaseLost,
    LockMismatch,
    StateConflict,
    StateCorrupt,
    StateError,
    StateLocked,
    StateTooNew,
)
from .base import LockInfo, State, StateVersion, check_successor, parse_state

_PROBED: dict[str, bool] = {}  # bucket -> honours If-None-Match (per process)


def forget_probes() -> None:
    """Probe each bucket again (its store may have changed: another endpoint, a proxy)."""
    _PROBED.clear()


def _now() -> datetime:
    return datetime.now(UTC)


def _clock() -> float:
    """Seconds on a clock that never jumps and keeps counting while the process (or the machine)
    is stopped, unlike time.monotonic() across a suspend."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


def _fail(location: str, exc: Exception, *, bucket: str) -> StateError:
    code = error_code(exc)
    if code == "NoSuchBucket":
        return StateError(f"{location}: the state bucket {bucket!r} does not exist: run `airflow-infra backend bootstrap`")
    if code in ("AccessDenied", "403"):
        return StateError(f"{location}: access denied by the store: the credentials need s3:GetObject/PutObject/DeleteObject "
                          f"on {bucket}")
    if code == "ResourceNotFoundException":
        return StateError(f"{location}: the DynamoDB lock table does not exist: run `airflow-infra backend bootstrap`")
    err = translate(location, "state access", exc, error=StateError)
    assert isinstance(err, StateError)
    return err


class _S3Lock:
    def __init__(self, s3: Any, bucket: str, key: str):
        self.s3, self.bucket, self.key = s3, bucket, f"{key}.lock"
        self._etag: str | None = None

    def get(self) -> tuple[dict[str, Any], str] | None:
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(obj["Body"].read()), obj["ETag"]

    def put(self, doc: dict[str, Any], *, replacing: str | None) -> bool:
        """Create (replacing None) or replace the object whose ETag is replacing; False when someone else won."""
        cond = {"IfMatch": replacing} if replacing else {"IfNoneMatch": "*"}
        try:
            resp = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=json.dumps(doc).encode(),
                                      ContentType="application/json", **cond)
        except Exception as exc:
            if error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NoSuchKey"):
                return False
            raise
        self._etag = resp["ETag"]
        return True

    def renew(self, doc: dict[str, Any]) -> bool:
        return self._etag is not None and self.put(doc, replacing=self._etag)

    def delete(self, etag: str) -> None:
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
        except Exception as exc:
            if error_code(exc) not in ("NoSuchKey", "404"):
                raise


class _DynamoLock:
    def __init__(self, ddb: Any, table: str, lock_id: str):
        self.ddb, self.table, self.lock_id = ddb, table, lock_id
        self._info: str | None = None

    def get(self) -> tuple[dict[str, Any], str] | None:
        item = self.ddb.get_item(TableName=self.table, Key={"LockID": {"S": self.lock_id}}, ConsistentRead=True).get("Item")
        if not item or "Info" not in item:
            return None
        return json.loads(item["Info"]["S"]), item["Info"]["S"]

    def put(self, doc: dict[str, Any], *, replacing: str | None) -> bool:
        info = json.dumps(doc, sort_keys=True)
        cond = ({"ConditionExpression": "Info = :old", "ExpressionAttributeValues": {":old": {"S": replacing}}}
                if replacing else {"ConditionExpression": "attribute_not_exists(LockID)"})
        try:
            self.ddb.put_item(TableName=self.table, Item={"LockID": {"S": self.lock_id}, "Info": {"S": info}}, **cond)
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        self._info = info
        return True

    def renew(self, doc: dict[str, Any]) -> bool:
        return self._info is not None and self.put(doc, replacing=self._info)

    def delete(self, token: str) -> None:
        try:
            self.ddb.delete_item(TableName=self.table, Key={"LockID": {"S": self.lock_id}},
                                 ConditionExpression="Info = :old", ExpressionAttributeValues={":old": {"S": token}})
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise


class S3StateBackend:
    def __init__(self, *, bucket: str, key: str, region: str, lock: str = "s3", dynamodb_table: str = "terraform",
                 lease_seconds: int = 300):
        from ..aws_clients import aws_client

        self.bucket, self.key, self.mode, self.lease = bucket, key, lock, lease_seconds
        self.location = f"s3://{bucket}/{key}"
        self.s3 = aws_client("s3", region=region)
        self._locks: list[_S3Lock | _DynamoLock] = []
        if lock in ("s3", "both"):
            self._locks.append(_S3Lock(self.s3, bucket, key))
        if lock in ("dynamodb", "both"):
            self._locks.append(_DynamoLock(aws_client("dynamodb", region=region), dynamodb_table, f"{bucket}/{key}"))
        self._etag: str | None = None
        self._known: State | None = None
        self._held: dict[str, Any] | None = None
        self._valid_until = 0.0  # _clock() time until which our lease surely holds
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- state -----------------------------------------------------------------------------
    def read(self) -> State:
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                self._etag, self._known = None, State()
                return self._known
            raise _fail(self.location, exc, bucket=self.bucket) from None
        state = self._parse(obj)
        self._etag, self._known = obj["ETag"], state
        return state

    def _parse(self, obj: dict[str, Any]) -> State:
        try:
            text = obj["Body"].read().decode()
        except UnicodeDecodeError as exc:
            raise StateCorrupt(f"{self.location}: the state object is corrupt ({exc.reason}); it was left as it is") from None
        return parse_state(text, self.location, what="the state object")

    def _object_versions(self, limit: int = 50) -> list[dict[str, Any]]:
        """The state object's versions, newest first (the bucket's versioning keeps them:
        `backend bootstrap` turns it on; without it there is only the current one)."""
        out: list[dict[str, Any]] = []
        try:
            for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=self.key):
                out += [v for v in page.get("Versions", []) if v["Key"] == self.key]
        except Exception as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        return sorted(out, key=lambda v: v["LastModified"], reverse=True)[:limit]

    def _get_version(self, version_id: str) -> State:
        try:
            return self._parse(self.s3.get_object(Bucket=self.bucket, Key=self.key, VersionId=version_id))
        except StateError:
            raise
        except Exception as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None

    def _kept(self) -> Iterator[tuple[dict[str, Any], State]]:
        for v in self._object_versions():
            try:
                yield v, self._get_version(v["VersionId"])
            except (StateCorrupt, StateTooNew):
                continue  # not a version anyone can restore

    def versions(self) -> list[StateVersion]:
        return [StateVersion.of(st, f"{self.location}?versionId={v['VersionId']}", v["LastModified"],
                                current=bool(v.get("IsLatest"))) for v, st in self._kept()]

    def read_version(self, serial: int) -> State | None:
        return next((st for _, st in self._kept() if st.serial == serial), None)

    def overwrite(self, state: State) -> None:
        self._put(state, {})

    def _body(self, state: State, lock_id: str | None) -> bytes:
        """The state as stored: with the ID of the lock it was written under (a take-over's fencing
        write changes only that, and with it the ETag)."""
        if lock_id is None:
            return state.to_json().encode()
        return (json.dumps({**json.loads(state.to_json()), "lock": lock_id}, sort_keys=True, indent=2) + "\n").encode()

    def _put(self, state: State, cond: dict[str, Any]) -> None:
        try:
            body = self._body(state, self._held["ID"] if self._held else None)
            resp = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body,
                                      ContentType="application/json", ServerSideEncryption="AES256", **cond)
        except Exception as exc:
            if error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                raise StateConflict(f"{self.location}: the state changed underneath this run (its ETag no longer "
                                    "matches): another writer got there first; nothing was overwritten") from None
            raise _fail(self.location, exc, bucket=self.bucket) from None
        self._etag, self._known = resp["ETag"], state

    def check_held(self) -> None:
        if self._held is None:
            return  # not locked by this run (state migrate's import, say): nothing to lose
        margin = self.lease / 10  # time for the step's first call to reach the store
        if self._lost.is_set() or _clock() > self._valid_until - margin:
            raise LeaseLost(f"{self.location}: this run's lease on the state lock ran out (the process was stopped "
                            "or could not renew it), so another run may hold the lock now: this run does and writes "
                            "nothing more; run the command again")

    def write(self, state: State) -> None:
        self.check_held()
        check_successor(self._known if self._known is not None else self.read(), state, self.location)
        self._put(state, {"IfMatch": self._etag} if self._etag else {"IfNoneMatch": "*"})

    def import_state(self, state: State) -> None:
        current = self.read()  # an empty one (a take-over's fence, say) holds nothing to keep
        if self._etag is not None and (current.serial or current.resources):
            raise StateConflict(f"{self.location}: a state is there already; nothing was overwritten")
        self._put(state, {"IfMatch": self._etag} if self._etag else {"IfNoneMatch": "*"})

    # -- lock ------------------------------------------------------------------------------
    def _probe(self) -> None:
        """Refuse the S3 lock on a store that ignores If-None-Match (a second create must fail)."""
        if self.bucket in _PROBED:
            ok = _PROBED[self.bucket]
        else:
            probe = f"{self.key}.probe-{uuid.uuid4().hex}"
            version: dict[str, Any] = {}
            try:
                put = self.s3.put_object(Bucket=self.bucket, Key=probe, Body=b"1", IfNoneMatch="*")
                version = {"VersionId": put["VersionId"]} if put.get("VersionId") else {}
                try:
                    self.s3.put_object(Bucket=self.bucket, Key=probe, Body=b"2", IfNoneMatch="*")
                    ok = False
                except Exception as exc:
                    if error_code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                        raise
                    ok = True
            except Exception as exc:
                raise _fail(self.location, exc, bucket=self.bucket) from None
            finally:
                with contextlib.suppress(Exception):  # by its version: no delete marker left in a versioned bucket
                    self.s3.delete_object(Bucket=self.bucket, Key=probe, **version)
            _PROBED[self.bucket] = ok
        if not ok:
            raise StateError(f"{self.location}: this store ignores If-None-Match, so an S3 lock would not be safe: "
                             "set [state] lock = \"dynamodb\", or use backend = \"postgres\"")

    def _doc(self, info: LockInfo) -> dict[str, Any]:
        return {**asdict(info), "expires": (_now() + timedelta(seconds=self.lease)).isoformat(timespec="milliseconds")}

    def lock(self, info: LockInfo) -> None:
        if any(isinstance(lk, _S3Lock) for lk in self._locks):
            self._probe()
        doc = self._doc(info)
        started = _clock()
        taken, took_over = [], False
        try:
            for lk in self._locks:
                took_over |= self._take(lk, doc)
                taken.append(lk)
            if took_over:
                try:
                    self._fence(info.ID)
                except StateError:
                    raise
                except Exception as exc:
                    raise _fail(self.location, exc, bucket=self.bucket) from None
        except BaseException:
            for lk in taken:
                current = lk.get()
                if current and current[0].get("ID") == info.ID:
                    lk.delete(current[1])
            raise
        self._held, self._known = doc, None  # re-read the state under the lock
        self._valid_until = started + self.lease
        self._lost.clear()
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="airflow-infra-lease", daemon=True)
        self._beat.start()

    def _take(self, lk: _S3Lock | _DynamoLock, doc: dict[str, Any]) -> bool:
        """Take lk; True when it was taken over from a holder whose lease ran out."""
        holder = None
        try:
            for _ in range(3):  # the lock may come and go between our calls
                if lk.put(doc, replacing=None):
                    return False
                current = lk.get()
                if current is None:
                    continue  # released in between: create it again
                holder, token = current
                if datetime.fromisoformat(holder["expires"]) >= _now():
                    break
                # Its holder stopped renewing (crashed, or stopped): take it over, conditionally on what we saw.
                if lk.put(doc, replacing=token):
                    return True
        except Exception as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        if holder is None:
            raise StateLocked(f"{self.location}: the lock changed hands while it was being taken; try again")
        info = LockInfo(**{k: v for k, v in holder.items() if k != "expires"})
        raise StateLocked(info.held_message(expires=datetime.fromisoformat(holder["expires"])), holder=info)

    def _fence(self, lock_id: str) -> None:
        """After a take-over: rewrite the state object naming our lock, so that its ETag changes and
        the previous holder's conditional write (If-Match on the ETag it read) fails."""
        for _ in range(10):  # the previous holder may still be writing: go on from what it wrote
            try:
                obj = self.s3.get_object(Bucket=self.bucket, Key=self.key)
                state, cond = self._parse(obj), {"IfMatch": obj["ETag"]}
            except StateCorrupt:
                return  # no writer goes on from a corrupt state (each parses what it read first)
            except Exception as exc:
                if error_code(exc) not in ("NoSuchKey", "404"):
                    raise
                # nothing written yet: an empty state naming our lock, so that the previous holder's
                # first write (If-None-Match) fails too; ours goes on from it as from nothing
                state, cond = State(), {"IfNoneMatch": "*"}
            try:
                self.s3.put_object(Bucket=self.bucket, Key=self.key, ContentType="application/json",
                                   ServerSideEncryption="AES256", Body=self._body(state, lock_id), **cond)
                return
            except Exception as exc:
                if error_code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                    raise
        raise StateLocked(f"{self.location}: the state kept changing while the lock was taken over; try again")

    def _heartbeat(self) -> None:
        while not self._stop.wait(max(0.2, self.lease / 3)):
            doc = {**(self._held or {}), "expires": (_now() + timedelta(seconds=self.lease)).isoformat(timespec="milliseconds")}
            sent = _clock()
            if sent > self._valid_until:
                self._lost.set()  # ran out while we were stopped: whatever the store says, never renew it back
                return
            try:
                ok = all(lk.renew(doc) for lk in self._locks)
            except Exception:
                continue  # a passing network error: try again before the lease runs out
            if not ok:
                self._lost.set()
                return
            self._held = doc
            self._valid_until = sent + self.lease

    def lock_info(self) -> LockInfo | None:
        try:
            for lk in self._locks:
                current = lk.get()
                if current:
                    return LockInfo(**{k: v for k, v in current[0].items() if k != "expires"})
        except Exception as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        return None

    def close(self) -> None:
        """Stop renewing the lease, without unlocking: what a crash leaves (the lock runs out)."""
        self._stop.set()

    def unlock(self, lock_id: str) -> None:
        found = False
        try:
            for lk in self._locks:
                current = lk.get()
                if current is None:
                    continue
                if current[0].get("ID") != lock_id:
                    raise LockMismatch(f"lock ID {lock_id!r} does not match the current lock ({current[0].get('ID')}); "
                                       "nothing was unlocked")
                lk.delete(current[1])  # conditional: only the lock we looked at
                found = True
        except (LockMismatch, StateError):
            raise
        except Exception as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        finally:
            if self._held is not None and self._held.get("ID") == lock_id:
                self._stop.set()
                self._held = None
        if not found:
            raise LockMismatch(f"{self.location}: state is not locked")


def bootstrap(*, bucket: str, region: str, lock: str, dynamodb_table: str) -> list[str]:
    """Make the state bucket (versioning, SSE, public-access block) and the lock table when missing;
    a second run changes nothing. Returns what it did; a store's error is one StateError line."""
    from ..aws_clients import aws_client

    try:
        done = _bootstrap_bucket(aws_client("s3", region=region), bucket, region)
        if lock in ("dynamodb", "both"):
            done += _bootstrap_table(aws_client("dynamodb", region=region), dynamodb_table)
    except AirflowInfraError:
        raise
    except Exception as exc:
        raise _fail(f"s3://{bucket}", exc, bucket=bucket) from None
    return done


def _bootstrap_bucket(s3: Any, bucket: str, region: str) -> list[str]:
    done: list[str] = []
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **kwargs)
        done.append(f"created bucket {bucket}")
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        done.append("enabled versioning")
    try:
        s3.get_bucket_encryption(Bucket=bucket)
    except Exception as exc:
        if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        done.append("enabled default encryption")
    flags = {f: True for f in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}
    try:
        current = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except Exception as exc:
        if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        current = {}
    if current != flags:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=flags)
        done.append("blocked public access")
    return done


def _bootstrap_table(ddb: Any, table_name: str) -> list[str]:
    try:
        table = ddb.describe_table(TableName=table_name)["Table"]
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        ddb.create_table(TableName=table_name, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}])
        ddb.get_waiter("table_exists").wait(TableName=table_name)
        return [f"created lock table {table_name}"]
    if table["KeySchema"] != [{"AttributeName": "LockID", "KeyType": "HASH"}]:
        raise ConfigError(f"[state] dynamodb_table: {table_name!r} exists but its key is not LockID (string, "
                          "partition key), the shape Terraform's lock table has")
    return []
