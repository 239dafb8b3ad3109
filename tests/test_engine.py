"""The engine against the provider contract (providers/base.py), with a provider of its own: a dict."""

from __future__ import annotations

import pytest

from airflow_infra.engine.apply import apply_plan
from airflow_infra.engine.plan import make_plan
from airflow_infra.errors import ApplyFailed
from airflow_infra.providers.base import Provider
from airflow_infra.resources import Observed, Resource
from airflow_infra.state.base import State, transaction
from airflow_infra.state.local import LocalStateBackend


class DictProvider(Provider):
    """Resources kept in a dict; `lose` names those whose create forgets what it made."""

    type = "thing"

    def __init__(self) -> None:
        self.things: dict[str, dict] = {}
        self.lose: set[str] = set()

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        found = self.things.get(r.name)
        return Observed(found) if found is not None else None

    def create(self, r: Resource) -> Observed:  # type: ignore[override]
        if r.name in self.lose:
            return None  # type: ignore[return-value]  # a provider bug: the engine must not take it as "deleted"
        self.things[r.name] = dict(r.attrs)
        return Observed(dict(r.attrs))

    def update(self, r: Resource, prior: Observed) -> Observed:
        self.things[r.name] = dict(r.attrs)
        return Observed(dict(r.attrs))

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        self.things.pop(r.name, None)


def test_a_create_that_reads_back_nothing_is_a_failure_not_a_deletion(tmp_path):
    provider = DictProvider()
    provider.lose = {"b"}
    backend = LocalStateBackend(tmp_path / "state.json")
    desired = [Resource("thing", "a", {"x": 1}), Resource("thing", "b", {"x": 2})]
    plan = make_plan(State(), desired, {"thing": provider})
    with (
        pytest.raises(ApplyFailed, match="thing.b: create reported success, but the resource reads back as absent"),
        transaction(backend, "apply") as txn,
    ):
        apply_plan(plan, txn, {"thing": provider}, backup_dir=tmp_path / "backups")
    assert sorted(backend.read().resources) == ["thing.a"] and backend.lock_info() is None


def test_optional_hooks_have_defaults():
    p = DictProvider()
    r = Resource("thing", "a", {})
    assert p.holds_data(r, Observed({})) is None and p.warnings(Observed({})) == [] and p.notes == {}
    assert p.check_change(r, Observed({})) is None and p.deleted_with == frozenset()


class GroupProvider(DictProvider):
    """Gives what it makes a new id, as AWS does: a replaced group has another one."""

    type = "group"
    force_new = frozenset({"name"})

    def __init__(self) -> None:
        super().__init__()
        self.made = 0

    def create(self, r: Resource) -> Observed:
        self.made += 1
        self.things[r.name] = {**r.attrs, "id": f"g-{self.made}"}
        return Observed(self.things[r.name])


def test_a_ref_is_known_after_apply_and_follows_a_replaced_dependency(tmp_path):
    """The engine resolves a Ref from what the dependency reads back, and keeps it unknown while
    this very plan makes (or remakes) the dependency; the saved plan keeps it as a Ref."""
    from airflow_infra.cli.render import plan_text
    from airflow_infra.engine.plan import Plan
    from airflow_infra.resources import Ref

    groups, things = GroupProvider(), DictProvider()
    providers: dict[str, Provider] = {"group": groups, "thing": things}
    backend = LocalStateBackend(tmp_path / "state.json")

    def desired(group_name: str) -> list[Resource]:
        return [
            Resource("group", "g", {"name": group_name}),
            Resource("thing", "t", {"group_id": Ref("group.g", "id")}, ("group.g",)),
        ]

    def apply(group_name: str) -> Plan:
        plan = make_plan(backend.read(), desired(group_name), providers)
        plan = Plan.from_json(plan.to_json())  # as a saved plan would be
        with transaction(backend, "apply") as txn:
            apply_plan(plan, txn, providers, backup_dir=tmp_path / "backups")
        return plan

    first = apply("a")
    assert "group_id: (known after apply: group.g.id)" in plan_text(first)
    assert things.things["t"]["group_id"] == "g-1"
    assert backend.read().resources["thing.t"].attrs["group_id"] == "g-1"
    assert not make_plan(backend.read(), desired("a"), providers).changes

    second = apply("b")  # the group is replaced: a new id, which the thing follows in the same apply
    assert {c.address: c.action for c in second.changes} == {"group.g": "replace", "thing.t": "update"}
    assert things.things["t"]["group_id"] == "g-2"
    assert not make_plan(backend.read(), desired("b"), providers).changes


def test_a_ref_outside_depends_on_is_refused():
    from airflow_infra.resources import Ref

    with pytest.raises(ValueError, match="refers to"):
        make_plan(State(), [Resource("thing", "t", {"x": Ref("group.g", "id")})], {"thing": DictProvider()})


class MarkedProvider(DictProvider):
    """Things carry a marker; one made without it (a create cut short) is nobody's we know unless the
    state records it or a pending create names it. `cut` names creates that stop after the call."""

    force_new = frozenset({"name"})

    def __init__(self) -> None:
        super().__init__()
        self.cut: set[str] = set()

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        found = self.things.get(r.attrs["name"])
        if found is None:
            return None
        ours = found["marked"] or prior is not None
        return Observed({"name": r.attrs["name"], "marked": found["marked"]}, foreign=not ours, whose="unmarked")

    def create(self, r: Resource) -> Observed:
        if r.attrs["name"] in self.cut:
            self.things[r.attrs["name"]] = {"marked": False}
            raise RuntimeError("killed between the create and its marker")
        self.things[r.attrs["name"]] = {"marked": True}
        return Observed({"name": r.attrs["name"], "marked": True})

    def update(self, r: Resource, prior: Observed) -> Observed:
        self.things[r.attrs["name"]] = {"marked": True}
        return Observed({"name": r.attrs["name"], "marked": True})

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        self.things.pop(r.attrs["name"], None)


def test_a_replacement_cut_short_is_adopted_by_the_next_plan(tmp_path):
    """invariant 2 on the replace path: the old one's delete is recorded before the new one's create,
    whose name is pending, so what a kill leaves unmarked is adopted, never refused as foreign."""
    provider = MarkedProvider()
    providers: dict[str, Provider] = {"thing": provider}
    backend = LocalStateBackend(tmp_path / "state.json")
    with transaction(backend, "apply") as txn:
        apply_plan(
            make_plan(State(), [Resource("thing", "a", {"name": "old", "marked": True})], providers),
            txn,
            providers,
            backup_dir=tmp_path / "backups",
        )
    provider.cut = {"new"}
    wanted = [Resource("thing", "a", {"name": "new", "marked": True})]
    with pytest.raises(ApplyFailed, match="killed between"), transaction(backend, "apply") as txn:
        apply_plan(make_plan(backend.read(), wanted, providers), txn, providers, backup_dir=tmp_path / "backups")
    stored = backend.read()
    assert "thing.a" not in stored.resources and stored.pending == {"thing.a": "new"}
    again = make_plan(stored, wanted, providers)
    assert not again.conflicts and [(c.action, c.changed) for c in again.changes] == [("update", ("marked",))]


class StuckProvider(DictProvider):
    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        from airflow_infra.errors import ProviderError

        raise ProviderError(f"{r.address}: still in use")


def test_a_failed_destroy_says_destroy_failed(tmp_path):
    provider = StuckProvider()
    backend = LocalStateBackend(tmp_path / "state.json")
    with transaction(backend, "apply") as txn:
        apply_plan(
            make_plan(State(), [Resource("thing", "a", {"x": 1})], {"thing": provider}),
            txn,
            {"thing": provider},
            backup_dir=tmp_path / "backups",
        )
    plan = make_plan(backend.read(), [], {"thing": provider}, operation="destroy")
    with (
        pytest.raises(ApplyFailed, match=r"^destroy failed; finished steps are saved in the state: thing.a"),
        transaction(backend, "destroy") as txn,
    ):
        apply_plan(plan, txn, {"thing": provider}, backup_dir=tmp_path / "backups")
    assert sorted(backend.read().resources) == ["thing.a"]
