"""The S3 state backend: the state object written with compare-and-swap, leased locks, fencing
(see the package's docstring). Above 450 lines: one class, whose reads, writes and locks share
the ETag and lease they fence with."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...config import Config

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from ...aws.clients import (
    AccessDenied,
    AwsError,
    NoSuchBucket,
    NotFound,
)
from ...aws.s3stores import unsupported_answer, version_pages
from ...errors import (
    ConfigError,
    LeaseLost,
    LockMismatch,
    StateConflict,
    StateCorrupt,
    StateError,
    StateLocked,
    StateNotOurs,
    StateTooNew,
)
from ..base import LockInfo, State, StateVersion, check_successor, lock_taken, parse_state
from .locks import _LOST, _Conflict, _Digest, _DynamoLock, _expires, _now, _S3Lock

PROBE_KEY = ".airflow-infra-probe"  # one small object per state bucket: conditional writes are tried on it
_PROBED: dict[tuple[str, str], bool] = {}  # (endpoint, bucket) -> honours If-None-Match and If-Match (per process)
_VERSIONED: dict[tuple[str, str], bool] = {}  # (endpoint, bucket) -> keeps versions itself (asked at the first write)


def forget_probes() -> None:
    """Probe each bucket again (its store may have changed: another endpoint, a proxy)."""
    _PROBED.clear()
    _VERSIONED.clear()


def _clock() -> float:
    """Seconds on a clock that never jumps and keeps counting while the process (or the machine)
    is stopped, unlike time.monotonic() across a suspend."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


def _fail(location: str, exc: AwsError, *, bucket: str) -> StateError:
    if isinstance(exc, NoSuchBucket):
        return StateError(
            f"{location}: the state bucket {bucket!r} does not exist: run `airflow-infra backend bootstrap`"
        )
    if isinstance(exc, AccessDenied):
        return StateError(
            f"{location}: access denied by the store: the credentials need s3:GetObject/PutObject/DeleteObject "
            f"on {bucket}"
        )
    if isinstance(exc, NotFound) and exc.service == "dynamodb":  # the only thing a DynamoDB call misses: its table
        return StateError(f"{location}: the DynamoDB lock table does not exist: run `airflow-infra backend bootstrap`")
    return StateError(f"{location}: state access failed: {exc.detail}")


class S3StateBackend:
    @classmethod
    def from_config(cls, config: Config, project_dir: Path) -> S3StateBackend:
        st = config.state
        if not st.bucket:
            raise ConfigError(
                '[state] bucket: backend = "s3" needs the state bucket\'s name '
                "(`airflow-infra backend bootstrap` makes it)"
            )
        return cls(
            bucket=st.bucket,
            key=st.key or f"{config.project.name}/{config.project.environment}/airflow-infra.json",
            region=st.region,
            lock=st.locks,
            dynamodb_table=st.dynamodb_table,
            lease_seconds=st.lease_seconds,
        )

    def __init__(
        self,
        *,
        bucket: str,
        key: str,
        region: str,
        lock: str = "s3",
        dynamodb_table: str = "terraform",
        lease_seconds: int = 300,
    ):
        from ...aws.clients import aws_client

        self.bucket, self.key, self.mode, self.lease = bucket, key, lock, lease_seconds
        self.location = f"s3://{bucket}/{key}"
        self.s3 = aws_client("s3", region=region)
        self._locks: list[_S3Lock | _DynamoLock] = []
        if lock in ("s3", "both"):
            self._locks.append(_S3Lock(self.s3, bucket, key))
        self._ddb = aws_client("dynamodb", region=region) if lock in ("dynamodb", "both") else None
        if self._ddb is not None:
            self._locks.append(_DynamoLock(self._ddb, dynamodb_table, f"{bucket}/{key}"))
        self.dynamodb_table = dynamodb_table
        self._digests = _Digest(self._ddb, dynamodb_table, f"{bucket}/{key}") if self._ddb is not None else None
        self._cas_in_table = False  # the store ignores conditional writes: the digest is the commit (see _probe)
        self._etag: str | None = None  # the ETag of the state object read: what the next write is conditional on
        self._seen: tuple[str, int] | None = None  # the digest item read (digest, serial)
        self._stored = False  # a state was there when last read
        self._known: State | None = None
        self._held: dict[str, Any] | None = None
        self._valid_until = 0.0  # _clock() time until which our lease surely holds
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- state -----------------------------------------------------------------------------
    def read(self) -> State:
        """The state. With a lock table, its digest item is read too: where one exists (written on a store
        that ignores conditional writes) it names the current state."""
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=self.key)
            body: bytes | None = obj["Body"].read()
        except NoSuchBucket as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        except NotFound:
            obj, body = None, None
        except AwsError as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        try:
            seen = self._digests.get() if self._digests is not None else None
        except AwsError as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        if seen is not None and seen[0] != hashlib.md5(body or b"").hexdigest():
            # the object is not the state the digest names: a write cut short before its copy to the key,
            # or a stopped holder's late copy after a take-over; the state the digest names is the true one.
            # Anything else at the key (Terraform's state, a file put there) is refused, never written over.
            if body is not None:
                self._parse(body)
            body = self._named(*seen)
        state = State() if body is None else self._parse(body)
        self._etag, self._seen, self._stored, self._known = obj and obj["ETag"], seen, body is not None, state
        return state

    def _named(self, digest: str, serial: int) -> bytes:
        try:
            body: bytes = self.s3.get_object(Bucket=self.bucket, Key=self._state_key(serial, digest))["Body"].read()
            if hashlib.md5(body).hexdigest() == digest:
                return body
        except NotFound as exc:
            if isinstance(exc, NoSuchBucket):
                raise _fail(self.location, exc, bucket=self.bucket) from None
        except AwsError as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        raise StateCorrupt(
            f"{self.location}: the lock table {self.dynamodb_table!r} names state serial {serial} (MD5 "
            f"{digest}), which is neither the state object nor kept whole beside it: changed by hand? "
            "It was left as it is: `airflow-infra state versions` lists the states kept, "
            "`state rollback SERIAL` writes one back"
        )

    def _check_key_is_ours(self) -> None:
        try:
            self._parse(self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read())
        except NoSuchBucket:
            raise
        except NotFound:
            pass

    def _state_key(self, serial: int, digest: str) -> str:
        return f"{self.key}.states/{serial:010d}-{digest}.json"

    def _parse(self, body: bytes) -> State:
        try:
            text = body.decode()
        except UnicodeDecodeError as exc:
            raise StateCorrupt(
                f"{self.location}: the state object is corrupt ({exc.reason}); it was left as it is"
            ) from None
        return parse_state(text, self.location, what="the state object")

    def _object_versions(self, limit: int = 50) -> list[dict[str, Any]]:
        """The state's versions, newest first, the current one marked IsLatest: those the bucket's
        versioning keeps (`backend bootstrap` turns it on); on a store without versioning the copies
        kept beside the object; where the lock table holds a digest, the states named after theirs
        (the object at the key is then only a copy of one of them)."""
        out: list[dict[str, Any]] = []
        try:
            seen = self._digests.get() if self._digests is not None else None
            for page, _ in version_pages(self.s3, self.bucket, self.key):
                out += [v for v in page if v["Key"] == self.key and not v["DeleteMarker"]]
                out += [
                    {**v, "IsLatest": False}
                    for v in page
                    if v["Key"].startswith((self._kept_prefix, f"{self.key}.states/"))
                ]
        except AwsError as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        if seen is not None:
            named = self._state_key(seen[1], seen[0])
            out = [{**v, "IsLatest": v["Key"] == named} for v in out if v["Key"] != self.key]
        else:  # a kept copy of the current state is the current state
            current = {v["ETag"] for v in out if v["IsLatest"]}
            out = [v for v in out if v["IsLatest"] or v["ETag"] not in current]
        # kept copies are named by the time to the microsecond: within one second their names order them
        return sorted(out, key=lambda v: (v["IsLatest"], v["LastModified"], v["Key"]), reverse=True)[:limit]

    @property
    def _store(self) -> tuple[str, str]:
        return self.s3.meta.endpoint_url, self.bucket

    @property
    def _kept_prefix(self) -> str:
        return f"{self.key}.kept/"

    def _keep_copy(self) -> None:
        """On a store that keeps no versions: copy the state about to be replaced beside it (what
        `state versions` and `state rollback` then find), named by the time, so copies sort by age."""
        if _VERSIONED.get(self._store) is None:
            try:
                status = self.s3.get_bucket_versioning(Bucket=self.bucket).get("Status")
            except AwsError as exc:
                if not unsupported_answer(exc):
                    raise
                status = None
            _VERSIONED[self._store] = status == "Enabled"
        if _VERSIONED[self._store]:
            return
        name = f"{self._kept_prefix}{_now().strftime('%Y%m%dT%H%M%S.%fZ')}.json"
        try:
            self.s3.copy_object(Bucket=self.bucket, Key=name, CopySource={"Bucket": self.bucket, "Key": self.key})
        except NoSuchBucket:
            raise
        except NotFound:
            pass  # nothing stored yet: nothing to keep

    def _get_version(self, v: dict[str, Any]) -> State:
        try:
            which = {} if v["VersionId"] == "null" else {"VersionId": v["VersionId"]}
            return self._parse(self.s3.get_object(Bucket=self.bucket, Key=v["Key"], **which)["Body"].read())
        except AwsError as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None

    def _kept(self) -> Iterator[tuple[dict[str, Any], State]]:
        for v in self._object_versions():
            try:
                yield v, self._get_version(v)
            except (StateCorrupt, StateTooNew, StateNotOurs):
                continue  # not a version anyone can restore

    def versions(self) -> list[StateVersion]:
        return [
            StateVersion.of(
                st,
                f"{self.location}?versionId={v['VersionId']}"
                if v["Key"] == self.key
                else f"s3://{self.bucket}/{v['Key']}",
                v["LastModified"],
                current=bool(v.get("IsLatest")),
            )
            for v, st in self._kept()
        ]

    def read_version(self, serial: int) -> State | None:
        return next((st for _, st in self._kept() if st.serial == serial), None)

    def overwrite(self, state: State) -> None:
        self._put(state, force=True)

    def _body(self, state: State, lock_id: str | None) -> bytes:
        """The state as stored: with the ID of the lock it was written under (a take-over's fencing
        write changes only that, and with it the ETag)."""
        if lock_id is None:
            return state.to_json().encode()
        return (json.dumps({**json.loads(state.to_json()), "lock": lock_id}, sort_keys=True, indent=2) + "\n").encode()

    def _put(self, state: State, *, force: bool = False, lock_id: str | None = None) -> None:
        """Write state if the stored one is still the one last read (its ETag; or on a store that ignores
        conditional writes, the digest in the lock table); force: whatever is stored. StateConflict otherwise."""
        self._probe()
        body = self._body(state, lock_id or (self._held["ID"] if self._held else None))
        try:
            if self._cas_in_table:
                resp = self._put_through_table(state, body, force=force)
            else:
                cond = {} if force else {"IfMatch": self._etag} if self._etag else {"IfNoneMatch": "*"}
                self._keep_copy()
                resp = self.s3.put_object(
                    Bucket=self.bucket,
                    Key=self.key,
                    Body=body,
                    ContentType="application/json",
                    ServerSideEncryption="AES256",
                    **cond,
                )
                if self._seen is not None and self._digests is not None:
                    self._digests.set(body, state)  # a digest from when the store ignored conditions: kept true
        except (_Conflict, *_LOST):
            if self._held is not None and not force and lock_id is None:
                now = self.lock_info()
                if now is None or self._held.get("ID") != now.ID:
                    raise lock_taken(self.location, str(self._held.get("ID")), now) from None
            raise StateConflict(
                f"{self.location}: the state changed underneath this run (it is no longer what "
                "this run read): another writer got there first; nothing was overwritten"
            ) from None
        except AwsError as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        self._etag, self._stored, self._known = resp["ETag"], True, state
        if self._cas_in_table:
            self._seen = (hashlib.md5(body).hexdigest(), state.serial)

    def _put_through_table(self, state: State, body: bytes, *, force: bool) -> dict[str, Any]:
        """The state under its own name, then the digest moved from the one read (the commit), then the
        copy at the key: a writer that loses, or stops and comes back late, changes nothing anyone reads."""
        assert self._digests is not None
        seen = self._digests.get() if force else self._seen
        if not force:  # the copy below is unconditional: what is at the key now must be ours (or nothing)
            self._check_key_is_ours()
        digest = hashlib.md5(body).hexdigest()
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self._state_key(state.serial, digest),
            Body=body,
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )
        if not self._digests.swap(seen[0] if seen else None, body, state):
            raise _Conflict()
        copied: dict[str, Any] = self.s3.put_object(
            Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", ServerSideEncryption="AES256"
        )
        return copied

    def check_held(self) -> None:
        if self._held is None:
            return  # not locked by this run (state migrate's import, say): nothing to lose
        margin = self.lease / 10  # time for the step's first call to reach the store
        if self._lost.is_set() or _clock() > self._valid_until - margin:
            raise LeaseLost(
                f"{self.location}: this run's lease on the state lock ran out (the process was stopped "
                "or could not renew it), so another run may hold the lock now: this run does and writes "
                "nothing more; run the command again"
            )

    def write(self, state: State) -> None:
        self.check_held()
        check_successor(self._known if self._known is not None else self.read(), state, self.location)
        self._put(state)

    def import_state(self, state: State) -> None:
        current = self.read()  # an empty one (a take-over's fence, say) holds nothing to keep
        if self._stored and (current.serial or current.resources):
            raise StateConflict(f"{self.location}: a state is there already; nothing was overwritten")
        self._put(state)

    # -- lock ------------------------------------------------------------------------------
    def _probe(self) -> None:
        """Find out, once per bucket and process and before the first lock or write (reads need no
        PutObject), whether the store honours If-None-Match and If-Match on PutObject: both are tried on
        PROBE_KEY, which an honest store refuses (nothing written; the first probe of a bucket creates
        the object). Where it does not, the S3 lock is refused, and with the DynamoDB lock
        compare-and-swap moves into the lock table."""
        if self._store not in _PROBED:
            _PROBED[self._store] = self._honours_conditions()
        if _PROBED[self._store]:
            return
        if self.mode != "dynamodb":
            raise StateError(
                f"{self.location}: this store ignores conditional writes (If-None-Match, If-Match), so "
                f'an S3 lock would not be safe: set [state] lock = "dynamodb" (compare-and-swap then '
                'goes through the lock table too), or use backend = "postgres"'
            )
        self._cas_in_table = True

    def _honours_conditions(self) -> bool:
        put = {
            "Bucket": self.bucket,
            "Key": PROBE_KEY,
            "ServerSideEncryption": "AES256",
            "Body": b"airflow-infra tries conditional writes on this "
            b"object (a store that ignores them is never trusted with a lock); it may be deleted\n",
        }
        try:
            try:
                self.s3.put_object(**put, IfNoneMatch="*")  # made by the first probe of the bucket; refused after
                self.s3.put_object(**put, IfNoneMatch="*")  # now it exists
                return False
            except _LOST:
                pass
            try:
                self.s3.put_object(**put, IfMatch='"' + "0" * 32 + '"')  # an ETag it never has
                return False
            except NoSuchBucket:
                raise
            except (*_LOST, NotFound):
                pass
        except AwsError as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        return True

    def _doc(self, info: LockInfo) -> dict[str, Any]:
        """The lock as stored: Terraform's LockInfo (Path as Terraform writes it, "<bucket>/<key>"), our
        pid and host, and the lease's end."""
        return {
            **asdict(info),
            "Path": f"{self.bucket}/{self.key}",
            "expires": (_now() + timedelta(seconds=self.lease)).isoformat(timespec="milliseconds"),
        }

    def lock(self, info: LockInfo) -> None:
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
                    self._fence(info.ID, until=started + self.lease - self.lease / 10)
                except AwsError as exc:
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
                expires = _expires(holder)
                if expires is None or expires >= _now():
                    break  # held; a lock without a lease (Terraform's, an unreadable one) is never taken over
                # Its holder stopped renewing (crashed, or stopped): take it over, conditionally on what we saw.
                if lk.put(doc, replacing=token):
                    return True
        except AwsError as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        if holder is None:
            raise StateLocked(f"{self.location}: the lock changed hands while it was being taken; try again")
        info = LockInfo.from_doc(holder)
        raise StateLocked(info.held_message(expires=_expires(holder)), holder=info)

    def _fence(self, lock_id: str, *, until: float) -> None:
        """After a take-over: rewrite the state naming our lock, so that what the previous holder's
        conditional write expects (the ETag or digest it read) is gone and its write fails. Nothing
        stored yet: an empty state naming our lock, so that its first write fails too. Each try is
        made only while our own new lease surely holds (until, on _clock())."""
        for _ in range(10):  # the previous holder may still be writing: go on from what it wrote
            if _clock() > until:
                raise LeaseLost(
                    f"{self.location}: the lease on the lock this run took over ran out before the "
                    "state could be fenced (the process was stopped?): nothing was written; run again"
                )
            try:
                state = self.read()
            except (StateCorrupt, StateConflict, StateNotOurs, StateTooNew):
                return  # no writer goes on from a state it cannot read (each parses what it read first)
            try:
                self._put(state, lock_id=lock_id)
                return
            except StateConflict:
                continue
        raise StateLocked(f"{self.location}: the state kept changing while the lock was taken over; try again")

    def _heartbeat(self) -> None:
        while not self._stop.wait(max(0.2, self.lease / 3)):
            doc = {
                **(self._held or {}),
                "expires": (_now() + timedelta(seconds=self.lease)).isoformat(timespec="milliseconds"),
            }
            sent = _clock()
            if sent > self._valid_until:
                self._lost.set()  # ran out while we were stopped: whatever the store says, never renew it back
                return
            try:
                ok = all(lk.renew(doc) for lk in self._locks)
            except AwsError:
                continue  # a passing network error: try again before the lease runs out
            except BaseException:
                self._lost.set()  # a bug: this run writes nothing more, and the thread's error is printed
                raise
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
                    return LockInfo.from_doc(current[0])
        except AwsError as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        return None

    def close(self) -> None:
        """Stop renewing the lease, without unlocking: what a crash leaves (the lock runs out)."""
        self._stop.set()

    def unlock(self, lock_id: str) -> None:
        found = False
        mine = self._held is not None and self._held.get("ID") == lock_id
        try:
            if not mine and self.lock_info() is not None:
                # force-unlock: fence first (the state rewritten naming no lock), so that the holder's next
                # conditional write fails whether or not it still thinks its lease holds
                self._fence(f"force-unlocked:{lock_id}", until=_clock() + 60)
            for lk in self._locks:
                current = lk.get()
                if current is None:
                    continue
                if current[0].get("ID") != lock_id:
                    raise LockMismatch(
                        f"lock ID {lock_id!r} does not match the current lock ({current[0].get('ID')}); "
                        "nothing was unlocked"
                    )
                lk.delete(current[1])  # conditional: only the lock we looked at
                found = True
        except AwsError as exc:
            raise _fail(self.location, exc, bucket=self.bucket) from None
        finally:
            if self._held is not None and self._held.get("ID") == lock_id:
                self._stop.set()
                self._held = None
        if not found:
            raise LockMismatch(f"{self.location}: state is not locked")
