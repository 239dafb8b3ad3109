"""The secret-store contract, one suite over every store (fsspec's abstract test suite, for our stores):
the home's file, the state's encrypted secrets, AWS Secrets Manager (moto in server mode). Each store
supplies how to make it and how to open it again over the same backing. The suite runs over the
table of stores (plugins.SECRET_STORES): a registered store without fixtures here fails it, and so does a store
of the package that is not registered."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from airflow_infra.plugins import SECRET_STORES
from airflow_infra.secretstores import GENERATED_RE, SecretStore, new_password
from airflow_infra.state.base import State


class Backing:
    """One store's backing, and how to open a store over it (again: what another process would see)."""

    def __init__(self, open_: Callable[[], SecretStore]):
        self.open = open_


def _file() -> Iterator[Backing]:
    from airflow_infra.secretstores.file import FileSecretStore

    home = Path(tempfile.mkdtemp(prefix="airflow-infra-store-"))
    yield Backing(lambda: FileSecretStore(home))


def _state(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backing]:
    from airflow_infra.secretstores.state import StateSecretStore

    monkeypatch.setenv("AIRFLOW_INFRA_TEST_PASSPHRASE", "a passphrase for the contract suite")
    held = {"state": State()}

    def commit(change: Callable[[State], State]) -> None:
        held["state"] = change(held["state"])

    def open_() -> SecretStore:
        store = StateSecretStore(passphrase_env="AIRFLOW_INFRA_TEST_PASSPHRASE")
        store.load(replace(held["state"]))
        store.bind(commit)
        return store

    yield Backing(open_)


def _aws(request: pytest.FixtureRequest) -> Iterator[Backing]:
    from airflow_infra.secretstores.aws import AwsSecretsManagerStore

    request.getfixturevalue("moto_endpoint")
    prefix = f"contract-{uuid.uuid4().hex[:8]}/"
    yield Backing(
        lambda: AwsSecretsManagerStore(
            region="us-east-1", prefix=prefix, tags={"ManagedBy": "airflow-infra", "Project": "contract"}
        )
    )


STORES = {"file": _file, "state": _state, "aws-secrets-manager": _aws}  # by their names in plugins.SECRET_STORES


@pytest.fixture(params=SECRET_STORES.names)
def backing(request, monkeypatch) -> Iterator[Backing]:
    if request.param not in STORES:
        pytest.fail(f"the registered secret store {request.param!r} has no contract fixtures in this file")
    make = STORES[request.param]
    args = {"_state": (monkeypatch,), "_aws": (request,)}.get(make.__name__, ())
    yield from make(*args)


def test_every_store_of_the_package_is_in_the_suite():
    import airflow_infra.secretstores.aws
    import airflow_infra.secretstores.file
    import airflow_infra.secretstores.state  # noqa: F401 - each store registers by being a subclass

    def subclasses(cls: type) -> set[type]:
        return {c for s in cls.__subclasses__() for c in {s, *subclasses(s)}}

    ours = {c for c in subclasses(SecretStore) if c.__module__.startswith("airflow_infra.")}
    registered = {SECRET_STORES.load(name) for name in SECRET_STORES.names}
    assert ours and ours <= registered, (
        f"stores not in plugins.SECRET_STORES: {sorted(c.__name__ for c in ours - registered)}"
    )
    assert set(STORES) == set(SECRET_STORES.names)


def test_a_missing_secret_is_none(backing):
    store = backing.open()
    assert store.get("p/dev/nobody") is None and not store.holds("p/dev/nobody")


def test_get_or_create_makes_one_secret_and_keeps_it(backing):
    store = backing.open()
    made = store.get_or_create("p/dev/etl")
    assert GENERATED_RE.fullmatch(made)
    assert store.get_or_create("p/dev/etl") == made and store.get("p/dev/etl") == made and store.holds("p/dev/etl")
    assert backing.open().get("p/dev/etl") == made  # kept: another store over the same backing reads it


def test_put_replaces_and_delete_removes_for_every_reader(backing):
    store = backing.open()
    store.get_or_create("p/dev/reader")
    new = new_password()
    store.put("p/dev/reader", new)
    assert store.get("p/dev/reader") == new and backing.open().get("p/dev/reader") == new
    store.delete("p/dev/reader")
    assert store.get("p/dev/reader") is None and backing.open().get("p/dev/reader") is None
    store.delete("p/dev/reader")  # deleting what is gone is no error


def test_a_value_never_generated_here_is_no_secret(backing):
    store = backing.open()
    store.put("p/dev/typed", "hunter2")  # a word typed by hand, the mask pasted back: never used as a password
    assert backing.open().get("p/dev/typed") is None
    assert GENERATED_RE.fullmatch(backing.open().get_or_create("p/dev/typed"))
