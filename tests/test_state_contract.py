"""The state backend contract (state/base.py). Every backend subclasses StateBackendContract."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace

import pytest

from airflow_infra.errors import (
    LeaseLost,
    LockMismatch,
    StateConflict,
    StateCorrupt,
    StateError,
    StateLocked,
    StateNotOurs,
    StateTooNew,
)
from airflow_infra.resources import Resource
from airflow_infra.state.base import LockInfo, State, acquire, transaction
from airflow_infra.state.local import LocalStateBackend
from airflow_infra.state.postgres import PostgresStateBackend


class StateBackendContract:
    @pytest.fixture
    def backend(self):
        raise NotImplementedError

    def test_read_of_nothing_is_empty(self, backend):
        s = backend.read()
        assert s.serial == 0 and s.resources == {} and len(s.lineage) == 36

    def test_write_then_read_round_trips_sorted(self, backend):
        s = State()
        for n in ("b", "a"):
            s = s.with_resource(Resource("t", n, {"x": [1, 2], "n": n}, ("t.z",)))
        backend.write(replace(s, serial=1))
        got = backend.read()
        assert got.serial == 1 and got.lineage == s.lineage and got.resources == s.resources
        assert sorted(got.resources) == ["t.a", "t.b"]

    def test_stale_or_foreign_write_conflicts(self, backend):
        s = replace(State(), serial=1)
        backend.write(s)
        backend.write(replace(s, serial=2))
        with pytest.raises(StateConflict):
            backend.write(replace(s, serial=2))  # written from serial 1 again: stale
        with pytest.raises(StateConflict):
            backend.write(replace(State(), serial=3))  # another lineage
        assert backend.read().serial == 2

    def test_a_transaction_commits_in_order_and_unlocks_on_every_way_out(self, backend):
        with pytest.raises(RuntimeError), transaction(backend, "apply") as txn:
            assert backend.lock_info().ID == txn.lock.ID
            txn.commit(lambda s: s.with_resource(Resource("t", "a", {"x": 1})))
            txn.commit(lambda s: s.with_resource(Resource("t", "b", {"x": 2})))
            raise RuntimeError("a step failed")
        assert backend.lock_info() is None
        got = backend.read()
        assert got.serial == 2 and sorted(got.resources) == ["t.a", "t.b"]

    def test_the_first_write_is_serial_1(self, backend):
        with pytest.raises(StateConflict):
            backend.write(replace(State(), serial=5))
        assert backend.read().serial == 0
        backend.write(replace(State(), serial=1))
        assert backend.read().serial == 1

    def test_lock_is_exclusive_and_unlock_needs_its_id(self, backend):
        first = LockInfo.new("apply", "p")
        backend.lock(first)
        with pytest.raises(StateLocked) as exc:
            backend.lock(LockInfo.new("apply", "p"))
        assert exc.value.holder.ID == first.ID
        assert first.ID in str(exc.value) and first.Who in str(exc.value)
        assert backend.lock_info().ID == first.ID
        with pytest.raises(LockMismatch):
            backend.unlock("someone-else")
        backend.unlock(first.ID)
        assert backend.lock_info() is None
        backend.lock(LockInfo.new("destroy", "p"))

    @pytest.fixture
    def twin(self, backend):
        """A second run's view of the same state (another object, as another process would have)."""
        raise NotImplementedError

    def test_a_run_whose_lock_was_force_unlocked_writes_nothing(self, backend, twin):
        """A run stopped while holding the lock, force-unlocked, and a second run taking the lock: the first,
        going on, cannot write (invariant 8), whatever its lease says."""
        with transaction(backend, "apply") as first:
            first.commit(lambda s: s.with_resource(Resource("t", "a", {"x": 1})))
            twin.unlock(first.lock.ID)  # force-unlock from another run
            with transaction(twin, "apply") as second:
                with pytest.raises(LeaseLost, match="the lock was taken from this run"):
                    first.commit(lambda s: s.with_resource(Resource("t", "b", {"x": 2})))
                assert sorted(twin.read().resources) == ["t.a"] and twin.read().serial == 1
                second.commit(lambda s: s.with_resource(Resource("t", "c", {"x": 3})))
        got = twin.read()
        assert got.serial == 2 and sorted(got.resources) == ["t.a", "t.c"]
        assert twin.lock_info() is None  # the first run's way out released nothing of the second's

    def test_import_state_only_into_an_empty_backend(self, backend):
        s = replace(State().with_resource(Resource("t", "a", {"x": 1})), serial=7)
        backend.import_state(s)
        got = backend.read()
        assert (got.serial, got.lineage, got.resources) == (7, s.lineage, s.resources)
        with pytest.raises(StateConflict):
            backend.import_state(replace(s, serial=9))
        backend.write(replace(s, serial=8))
        assert backend.read().serial == 8

    def test_every_write_keeps_the_state_it_replaces(self, backend):
        s = replace(State(), serial=1)
        backend.write(s)
        one = replace(s.with_resource(Resource("t", "a", {"x": 1})), serial=2)
        backend.write(one)
        backend.write(replace(one.without("t.a"), serial=3))
        versions = backend.versions()
        assert [v.serial for v in versions][:2] == [3, 2] and versions[0].resources == 0 and versions[1].resources == 1
        assert all(v.lineage == s.lineage for v in versions)
        assert versions[0].current and not any(v.current for v in versions[1:])
        kept = backend.read_version(2)
        assert kept is not None and kept.resources == one.resources
        assert backend.read_version(99) is None

    def test_a_kept_state_comes_back_as_a_new_serial(self, backend):
        """What `state restore` does: read a kept version, write it as the next serial; over a
        state that cannot be read, overwrite() (the unreadable one is not listed)."""
        s = replace(State().with_resource(Resource("t", "a", {"x": 1})), serial=1)
        backend.write(s)
        backend.write(replace(s.without("t.a"), serial=2))
        backend.write(replace(backend.read_version(1), serial=3))
        assert backend.read().resources == s.resources and backend.read().serial == 3
        backend.overwrite(replace(s, serial=9, lineage=s.lineage))
        assert backend.read().serial == 9
        assert [v.serial for v in backend.versions()][:2] == [9, 3]

    def test_a_state_from_a_newer_release_is_refused(self, backend):
        s = replace(State(), serial=1)
        backend.write(s)
        backend.write(replace(s, serial=2, version=99))
        with pytest.raises(StateTooNew, match="newer airflow-infra") as exc:
            backend.read()
        assert "version 99" in str(exc.value) and backend.location in str(exc.value)

    def test_acquire_waits_up_to_the_timeout(self, backend):
        import threading

        held = acquire(backend, "apply", "p")
        threading.Timer(0.3, backend.unlock, args=(held.ID,)).start()
        got = acquire(backend, "apply", "p", timeout=10)
        assert got.ID != held.ID and backend.lock_info().ID == got.ID
        with pytest.raises(StateLocked):
            acquire(backend, "apply", "p", timeout=0.2)


class TestLocalStateBackend(StateBackendContract):
    BACKEND = "local"

    @pytest.fixture
    def backend(self, tmp_path):
        return LocalStateBackend(tmp_path / ".airflow-infra" / "state.json")

    @pytest.fixture
    def twin(self, backend):
        return LocalStateBackend(backend.path)

    def test_a_lock_file_of_the_wrong_shape_is_named_and_force_unlocked(self, backend):
        backend.lock_path.parent.mkdir(parents=True)
        for text in ("[]", '{"ID": 5}', '{"ID": "x", "pid": "abc"}', '{"ID": "x", "Created": 3}', "null", '"x"'):
            backend.lock_path.write_text(text)
            with pytest.raises(StateLocked, match="force-unlock unreadable-") as exc:
                backend.lock(LockInfo.new("apply", "p"))
            backend.unlock(exc.value.holder.ID)
            assert backend.lock_info() is None

    def test_corrupt_state_is_reported_and_kept(self, backend):
        backend.path.parent.mkdir(parents=True)
        backend.path.write_text("{not json")
        with pytest.raises(StateCorrupt, match="left as it is"):
            backend.read()
        with pytest.raises(StateCorrupt):
            backend.write(replace(State(), serial=1))
        assert backend.path.read_text() == "{not json"

    def test_the_previous_state_is_kept_as_a_whole_file(self, backend):
        s = replace(State(), serial=1)
        backend.write(s)
        backend.write(replace(s, serial=2))
        assert State.from_json(backend.backup_path.read_text()).serial == 1
        backend.path.write_text("{truncated")
        with pytest.raises(StateCorrupt, match="state rollback 1"):
            backend.read()

    def test_leftover_temporary_files_are_cleaned(self, backend):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        from airflow_infra.pids import HOST as host

        backend.path.parent.mkdir(parents=True)
        for name in (f".state.json.{host}.{pid}.tmp", f".state.lock.{host}.{pid}.tmp"):
            (backend.path.parent / name).write_text("{half")
        others = [f".state.json.otherhost.{pid}.tmp", f".notes.{pid}.tmp"]  # another host's; not ours at all
        for name in others:
            (backend.path.parent / name).write_text("keep")
        backend.write(replace(State(), serial=1))
        backend.lock(LockInfo.new("apply", "p"))
        assert sorted(p.name for p in backend.path.parent.iterdir()) == sorted(
            [*others, "state.guard", "state.json", "state.lock"]
        )

    def test_an_empty_lock_file_is_reported_and_force_unlocked(self, backend):
        backend.path.parent.mkdir(parents=True)
        backend.lock_path.write_text("")
        with pytest.raises(StateLocked, match="empty, partial.*force-unlock unreadable-") as exc:
            backend.lock(LockInfo.new("apply", "p"))
        backend.unlock(exc.value.holder.ID)
        backend.lock(LockInfo.new("apply", "p"))

    def test_racing_processes_never_see_a_partial_lock(self, backend):
        """500 acquisitions by 4 processes: every failure is StateLocked naming a whole holder."""
        import subprocess
        import sys

        backend.path.parent.mkdir(parents=True)
        code = f"""
import sys
from airflow_infra.state.local import LocalStateBackend
from airflow_infra.state.base import LockInfo
from airflow_infra.errors import StateLocked, StateCorrupt
b = LocalStateBackend({str(backend.path)!r})
got = bad = 0
while got < 125:
    info = LockInfo.new("apply", "p")
    try:
        b.lock(info)
    except StateLocked as exc:
        if exc.holder.ID.startswith("unreadable-"):
            bad += 1
        continue
    except StateCorrupt:
        bad += 1
        continue
    got += 1
    b.unlock(info.ID)
print(got, bad)
"""
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(4)]
        results = [p.communicate(timeout=120)[0].split() for p in procs]
        assert results == [["125", "0"]] * 4

    def test_lock_of_a_dead_process_is_reported_stale(self, backend):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        backend.lock(replace(LockInfo.new("apply", "p"), pid=pid))
        with pytest.raises(StateLocked, match="stale"):
            backend.lock(LockInfo.new("apply", "p"))


class TestPostgresStateBackend(StateBackendContract):
    BACKEND = "postgres"

    @pytest.fixture
    def backend(self, state_dsn, request):
        import uuid

        b = PostgresStateBackend(state_dsn, project="p" + uuid.uuid4().hex[:8], environment="dev")
        yield b
        b.close()

    @pytest.fixture
    def twin(self, backend, state_dsn):
        b = PostgresStateBackend(state_dsn, project=backend.project, environment="dev")
        yield b
        b.close()

    def test_a_dead_holder_leaves_no_lock(self, backend, state_dsn):
        import subprocess
        import sys

        code = (
            f"from airflow_infra.state.postgres import PostgresStateBackend as B; from airflow_infra.state.base import LockInfo;"
            f"b = B({state_dsn!r}, project={backend.project!r}, environment='dev'); b.lock(LockInfo.new('apply', 'x'));"
            "print('locked', flush=True); import time; time.sleep(60)"
        )
        holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "locked"
        info = backend.lock_info()
        assert info is not None and info.pid == holder.pid
        with pytest.raises(StateLocked):
            backend.lock(LockInfo.new("apply", "p"))
        holder.kill()
        holder.wait()
        acquire(backend, "apply", "p", timeout=10)  # the server released the dead session's lock
        assert backend.lock_info().pid == os.getpid()

    def test_force_unlock_of_a_lock_that_changed_hands_ends_nobody(self, backend, state_dsn):
        """force-unlock checks the holder, then ends its session: if the lock changed hands in
        between, the new holder's session is not the one ended."""
        first = LockInfo.new("apply", "p")
        backend.lock(first)
        backend.unlock(first.ID)
        holder = PostgresStateBackend(state_dsn, project=backend.project, environment="dev")
        now = LockInfo.new("apply", "p")
        holder.lock(now)

        class ReadBeforeTheHandOver(PostgresStateBackend):
            def lock_info(self):
                return first  # what the check saw, a moment before the lock changed hands

        try:
            ReadBeforeTheHandOver(state_dsn, project=backend.project, environment="dev").unlock(first.ID)
            assert backend.lock_info().ID == now.ID
            holder.unlock(now.ID)  # its session is alive: it can still let go of its own lock
        finally:
            holder.close()

    def test_force_unlock_ends_another_process_hold(self, backend, state_dsn):
        import subprocess
        import sys

        code = (
            f"from airflow_infra.state.postgres import PostgresStateBackend as B; from airflow_infra.state.base import LockInfo;"
            f"b = B({state_dsn!r}, project={backend.project!r}, environment='dev'); b.lock(LockInfo.new('apply', 'x'));"
            "print('locked', flush=True); import time; time.sleep(60)"
        )
        holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "locked"
            info = backend.lock_info()
            with pytest.raises(LockMismatch):
                backend.unlock("not-it")
            backend.unlock(info.ID)
            assert backend.lock_info() is None
            backend.lock(LockInfo.new("apply", "p"))
        finally:
            holder.kill()
            holder.wait()


@pytest.fixture
def s3_state(moto_endpoint):
    """A bootstrapped state bucket and Terraform-shaped lock table on moto."""
    import uuid

    from airflow_infra.state.s3 import bootstrap

    bucket = "state-" + uuid.uuid4().hex[:10]
    bootstrap(bucket=bucket, region="us-east-1", lock="both", dynamodb_table="terraform-" + bucket)
    return bucket


class _S3Contract(StateBackendContract):
    BACKEND = "s3"

    MODE = "s3"

    @pytest.fixture
    def backend(self, s3_state):
        import uuid

        from airflow_infra.state.s3 import S3StateBackend

        b = S3StateBackend(
            bucket=s3_state,
            key=f"p{uuid.uuid4().hex[:8]}/dev/airflow-infra.json",
            region="us-east-1",
            lock=self.MODE,
            dynamodb_table="terraform-" + s3_state,
            lease_seconds=3,
        )
        yield b
        b.close()

    @pytest.fixture
    def twin(self, backend):
        from airflow_infra.state.s3 import S3StateBackend

        b = S3StateBackend(
            bucket=backend.bucket,
            key=backend.key,
            region="us-east-1",
            lock=self.MODE,
            dynamodb_table=f"terraform-{backend.bucket}",
            lease_seconds=3,
        )
        yield b
        b.close()

    def test_the_probe_writes_nothing_once_its_object_exists(self, backend):
        """An honest store refuses both conditional probes: the probe object keeps its one version."""
        import boto3

        from airflow_infra.state import s3 as s3mod

        s3 = boto3.client("s3", region_name="us-east-1")
        for _ in range(2):
            s3mod.forget_probes()
            backend.lock(info := LockInfo.new("apply", "p"))
            backend.unlock(info.ID)
        page = s3.list_object_versions(Bucket=backend.bucket, Prefix=s3mod.PROBE_KEY)
        assert len(page.get("Versions", [])) == 1 and page.get("DeleteMarkers", []) == []
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=backend.bucket)["Contents"] if "probe" in o["Key"]] == [
            s3mod.PROBE_KEY
        ]

    def test_an_unreadable_lock_is_named_and_force_unlocked(self, backend):
        """A lock nobody can read (cut short, changed by hand) gets an ID that force-unlock takes."""
        import boto3

        if self.MODE == "dynamodb":
            boto3.client("dynamodb", region_name="us-east-1").put_item(
                TableName=f"terraform-{backend.bucket}",
                Item={"LockID": {"S": f"{backend.bucket}/{backend.key}"}, "Info": {"S": "[1, 2"}},
            )
        else:
            boto3.client("s3", region_name="us-east-1").put_object(
                Bucket=backend.bucket, Key=f"{backend.key}.lock", Body=b'{"expires": 5}'
            )
        with pytest.raises(StateLocked, match="nobody can read it: `airflow-infra force-unlock unreadable-") as locked:
            backend.lock(LockInfo.new("apply", "p"))
        backend.unlock(locked.value.holder.ID)
        backend.lock(info := LockInfo.new("apply", "p"))
        backend.unlock(info.ID)

    def test_a_read_writes_nothing(self, backend):
        """Plans and `state list` need only s3:GetObject: the probe waits for the first lock or write."""
        from airflow_infra.state import s3 as s3mod

        s3mod.forget_probes()
        calls: list[str] = []
        backend.s3.meta.events.register("before-call.s3", lambda model, **kw: calls.append(model.name))
        backend.read()
        assert calls == ["GetObject"]

    def test_an_expired_lease_is_taken_over_once(self, backend):
        import threading

        from airflow_infra.state.s3 import S3StateBackend

        crashed = S3StateBackend(
            bucket=backend.bucket,
            key=backend.key,
            region="us-east-1",
            lock=self.MODE,
            dynamodb_table=f"terraform-{backend.bucket}",
            lease_seconds=1,
        )
        crashed.lock(LockInfo.new("apply", "p"))
        crashed.close()  # it stops renewing, as a killed process would
        with pytest.raises(StateLocked, match="lease runs until"):
            backend.lock(LockInfo.new("apply", "p"))
        time.sleep(1.5)
        winners = []
        others = [
            S3StateBackend(
                bucket=backend.bucket,
                key=backend.key,
                region="us-east-1",
                lock=self.MODE,
                dynamodb_table=f"terraform-{backend.bucket}",
                lease_seconds=30,
            )
            for _ in range(4)
        ]

        def take(b):
            try:
                b.lock(LockInfo.new("apply", "p"))
                winners.append(b)
            except StateLocked:
                pass

        threads = [threading.Thread(target=take, args=(b,)) for b in others]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(winners) == 1
        for b in others:
            b.close()

    def test_a_writer_that_lost_its_lock_cannot_overwrite(self, backend):
        from airflow_infra.state.s3 import S3StateBackend

        backend.write(replace(State(), serial=1))
        slow = S3StateBackend(
            bucket=backend.bucket,
            key=backend.key,
            region="us-east-1",
            lock=self.MODE,
            dynamodb_table=f"terraform-{backend.bucket}",
            lease_seconds=30,
        )
        stale = slow.read()
        backend.write(replace(stale, serial=2))  # someone else moved on
        with pytest.raises(StateConflict, match="another writer got there first"):
            slow.write(replace(stale, serial=2))
        assert backend.read().serial == 2


class TestS3StateBackendS3Lock(_S3Contract):
    MODE = "s3"


class TestS3StateBackendDynamoLock(_S3Contract):
    MODE = "dynamodb"

    def test_a_digest_from_a_store_that_ignored_conditions_is_kept_true(self, backend):
        """The store honours conditional writes now (moto), but the lock table still holds a digest from
        when it did not: each write keeps it naming the current state."""
        import boto3

        from airflow_infra.state.s3 import _Digest

        backend.write(one := replace(State(), serial=1))
        _Digest(
            boto3.client("dynamodb", region_name="us-east-1"),
            f"terraform-{backend.bucket}",
            f"{backend.bucket}/{backend.key}",
        ).set(one.to_json().encode(), one)
        assert backend.read() == one
        backend.write(two := replace(one, serial=2))
        assert backend.read() == two


class TestS3StateBackendBothLocks(_S3Contract):
    MODE = "both"


@pytest.fixture
def s3rver_state(s3rver_endpoint, moto_endpoint, monkeypatch):
    """A state bucket on s3rver, which ignores If-None-Match and If-Match; its lock table on moto."""
    import uuid

    from airflow_infra.state.s3 import bootstrap, forget_probes

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3rver_endpoint)
    forget_probes()
    bucket = "state-" + uuid.uuid4().hex[:10]
    bootstrap(bucket=bucket, region="us-east-1", lock="dynamodb", dynamodb_table="terraform-" + bucket)
    yield bucket
    forget_probes()


class TestS3StateBackendWithoutConditionalWrites(_S3Contract):
    """s3rver: compare-and-swap goes through the DynamoDB table, and the whole contract holds."""

    MODE = "dynamodb"

    @pytest.fixture
    def s3_state(self, s3rver_state):
        return s3rver_state

    def test_the_probe_writes_nothing_once_its_object_exists(self, backend):
        """(There is nothing such a store refuses.) Its digest item is Terraform's, one serial at a time."""
        import boto3

        backend.lock(info := LockInfo.new("apply", "p"))
        backend.write(replace(State(), serial=1))
        item = boto3.client("dynamodb", region_name="us-east-1").get_item(
            TableName=f"terraform-{backend.bucket}", Key={"LockID": {"S": f"{backend.bucket}/{backend.key}-md5"}}
        )["Item"]
        stored = (
            boto3.client("s3", region_name="us-east-1")
            .get_object(Bucket=backend.bucket, Key=backend.key)["Body"]
            .read()
        )
        assert item["Digest"]["S"] == hashlib.md5(stored).hexdigest() and item["Serial"]["N"] == "1"
        backend.unlock(info.ID)

    def test_a_state_without_a_digest_is_never_overwritten_by_an_import(self, backend):
        """A state written before its lock table held a digest (or the item deleted by hand): `state
        migrate` onto it is refused like onto any other."""
        import boto3

        from airflow_infra.state.s3 import S3StateBackend

        backend.write(one := replace(State().with_resource(Resource("t", "a", {"x": 1})), serial=1))
        boto3.client("dynamodb", region_name="us-east-1").delete_item(
            TableName=f"terraform-{backend.bucket}", Key={"LockID": {"S": f"{backend.bucket}/{backend.key}-md5"}}
        )
        other = S3StateBackend(
            bucket=backend.bucket,
            key=backend.key,
            region="us-east-1",
            lock=self.MODE,
            dynamodb_table=f"terraform-{backend.bucket}",
        )
        with pytest.raises(StateConflict, match="a state is there already"):
            other.import_state(replace(State(), serial=7))
        assert backend.read() == one

    def test_the_lock_table_names_the_state_whatever_the_object_holds(self, backend):
        """Cut short after its commit (the digest moved), before the copy to the key: the state the
        digest names is read, and the next write goes on from it. A stopped holder's late copy after
        that: still the digest's state. A digest naming a state nobody kept: refused, left, restorable."""
        import boto3

        from airflow_infra.state.s3 import _Digest

        s3 = boto3.client("s3", region_name="us-east-1")
        digests = _Digest(
            boto3.client("dynamodb", region_name="us-east-1"),
            f"terraform-{backend.bucket}",
            f"{backend.bucket}/{backend.key}",
        )
        backend.write(one := replace(State(), serial=1))
        backend.write(two := replace(one, serial=2))
        three = replace(two.with_resource(Resource("t", "a", {"x": 3})), serial=3)
        body = three.to_json().encode()  # what a writer killed after its commit left: its own copy, and the digest
        s3.put_object(
            Bucket=backend.bucket, Key=f"{backend.key}.states/{3:010d}-{hashlib.md5(body).hexdigest()}.json", Body=body
        )
        assert digests.swap(hashlib.md5(two.to_json().encode()).hexdigest(), body, three)
        assert backend.read() == three
        backend.write(four := replace(three, serial=4))
        s3.put_object(Bucket=backend.bucket, Key=backend.key, Body=body)  # the killed writer's copy, come late
        assert backend.read() == four
        assert [(v.serial, v.current) for v in backend.versions()] == [(4, True), (3, False), (2, False), (1, False)]

        named = f"{backend.key}.states/{4:010d}-{hashlib.md5(four.to_json().encode()).hexdigest()}.json"
        s3.delete_object(Bucket=backend.bucket, Key=backend.key)
        s3.put_object(Bucket=backend.bucket, Key=named, Body=three.to_json().encode())  # a kept state edited by hand
        with pytest.raises(StateCorrupt, match="names state serial 4.*kept whole"):
            backend.read()
        s3.put_object(Bucket=backend.bucket, Key=named, Body=four.to_json().encode())
        terraform = json.dumps(
            {"version": 4, "terraform_version": "0.12.29", "serial": 1, "lineage": "x", "outputs": {}, "resources": []}
        ).encode()
        s3.put_object(Bucket=backend.bucket, Key=backend.key, Body=terraform)  # Terraform's state at our key
        with pytest.raises(StateNotOurs, match="holds a Terraform state"):
            backend.read()
        with pytest.raises(StateNotOurs):
            backend.write(replace(four, serial=5))
        assert s3.get_object(Bucket=backend.bucket, Key=backend.key)["Body"].read() == terraform
        s3.delete_object(Bucket=backend.bucket, Key=backend.key)
        assert backend.read() == four

        digests.swap(hashlib.md5(four.to_json().encode()).hexdigest(), b"nobody kept this", replace(four, serial=9))
        with pytest.raises(StateCorrupt, match="names state serial 9.*state rollback SERIAL"):
            backend.read()
        backend.overwrite(replace(backend.read_version(4), serial=10))  # what `state restore 4` does
        assert backend.read().serial == 10

    @pytest.mark.parametrize("mode", ["s3", "both"])
    def test_an_s3_lock_is_refused_on_such_a_store(self, s3_state, mode):
        from airflow_infra.state.s3 import S3StateBackend

        unsafe = S3StateBackend(bucket=s3_state, key="x/dev/airflow-infra.json", region="us-east-1", lock=mode)
        with pytest.raises(StateError, match='ignores conditional writes.*set \\[state\\] lock = "dynamodb"'):
            unsafe.lock(LockInfo.new("apply", "x"))


def test_terraform_lock_item_shape_and_store_without_conditional_writes(s3_state, moto_endpoint, monkeypatch):
    import boto3
    from s3proxy import S3Proxy

    from airflow_infra.state.s3 import S3StateBackend

    b = S3StateBackend(
        bucket=s3_state,
        key="tf/dev/airflow-infra.json",
        region="us-east-1",
        lock="dynamodb",
        dynamodb_table="terraform-" + s3_state,
        lease_seconds=30,
    )
    info = LockInfo.new("apply", b.location)
    b.lock(info)
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName="terraform-" + s3_state, Key={"LockID": {"S": f"{s3_state}/tf/dev/airflow-infra.json"}}
    )["Item"]
    assert json.loads(item["Info"]["S"])["ID"] == info.ID
    b.unlock(info.ID)
    b.close()

    class Forgetful(S3Proxy):
        pass

    with Forgetful(moto_endpoint) as store:
        store.drop_headers = {"If-None-Match"}
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", store.url)
        try:
            from airflow_infra.state import s3 as s3mod

            s3mod.forget_probes()
            unsafe = S3StateBackend(bucket=s3_state, key="tf/x.json", region="us-east-1", lock="s3")
            with pytest.raises(StateError, match='ignores conditional writes.*lock = "dynamodb"'):
                unsafe.lock(LockInfo.new("apply", "x"))
        finally:
            s3mod.forget_probes()


def test_every_registered_backend_runs_the_contract():
    """The suite is derived from plugins.STATE_BACKENDS: a registered backend without a contract class
    here fails, as does a class for a backend no longer registered."""
    from airflow_infra.plugins import STATE_BACKENDS

    def subclasses(cls: type) -> set[type]:
        return {c for s in cls.__subclasses__() for c in {s, *subclasses(s)}}

    suites = {c.BACKEND for c in subclasses(StateBackendContract) if c.__name__.startswith("Test")}
    assert suites == set(STATE_BACKENDS.names), f"without a suite: {sorted(set(STATE_BACKENDS.names) - suites)}"
    for name in STATE_BACKENDS.names:
        assert callable(STATE_BACKENDS.load(name).from_config)
