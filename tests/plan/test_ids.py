"""Object ids and inventories: the Flux string form, round trips, merge and diff."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealed_gitops.errors import FormatError
from sealed_gitops.plan import Inventory, InventoryEntry, ObjectId

dns_label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")
# Names may hold ':' (RBAC), '.' and '-'; never '_'.
names = st.from_regex(r"\A[a-z0-9:.\-]{1,30}\Z").filter(
    lambda n: n not in (".", "..")
)  # never a path segment
groups = st.one_of(st.just(""), st.from_regex(r"\A[a-z0-9]([a-z0-9.\-]{0,20}[a-z0-9])?\Z"))
kinds = st.from_regex(r"\A[A-Z][A-Za-z0-9]{0,20}\Z")
object_ids = st.builds(
    ObjectId, namespace=st.one_of(st.just(""), dns_label), name=names, group=groups, kind=kinds
)


@given(object_ids)
def test_string_form_round_trips(oid: ObjectId) -> None:
    assert ObjectId.parse(str(oid)) == oid


@given(st.lists(st.tuples(object_ids, st.sampled_from(["v1", "v1beta1", "v2"]))))
def test_inventory_round_trips_through_status(items: list[tuple[ObjectId, str]]) -> None:
    inv = Inventory(tuple(InventoryEntry(oid, v) for oid, v in items))
    assert Inventory.from_status(inv.to_status()) == inv
    assert list(inv.entries) == sorted(inv.entries)


@pytest.mark.parametrize(
    ("oid", "text"),
    [
        (ObjectId("team-a", "db", "", "Secret"), "team-a_db__Secret"),
        (ObjectId("", "admin", "", "Namespace"), "_admin__Namespace"),
        (ObjectId("apps", "web", "apps", "Deployment"), "apps_web_apps_Deployment"),
        (
            ObjectId("", "system:auth-delegator", "rbac.authorization.k8s.io", "ClusterRole"),
            "_system__auth-delegator_rbac.authorization.k8s.io_ClusterRole",
        ),
    ],
)
def test_flux_string_form(oid: ObjectId, text: str) -> None:
    assert str(oid) == text
    assert ObjectId.parse(text) == oid


@pytest.mark.parametrize("text", ["", "a", "a_b", "a_b_c", "ns__g_"])
def test_malformed_ids_are_refused(text: str) -> None:
    with pytest.raises(FormatError):
        ObjectId.parse(text)


def test_of_a_manifest() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "w", "namespace": "n"},
    }
    assert ObjectId.of(obj) == ObjectId("n", "w", "apps", "Deployment")
    assert ObjectId.of(obj).describe() == "Deployment.apps n/w"


def _inv(*pairs: tuple[str, str]) -> Inventory:
    return Inventory(tuple(InventoryEntry(ObjectId.parse(i), v) for i, v in pairs))


def test_inventory_diff_gives_prune_candidates_sorted() -> None:
    old = _inv(("b_x__ConfigMap", "v1"), ("a_y__Secret", "v1"), ("_n__Namespace", "v1"))
    new = _inv(("b_x__ConfigMap", "v1"))
    assert [str(e.id) for e in old.diff(new)] == ["_n__Namespace", "a_y__Secret"]
    assert new.diff(old) == []


def test_inventory_merge_and_new() -> None:
    a = _inv(("n_x_apps_Deployment", "v1beta1"), ("n_y__Secret", "v1"))
    b = _inv(("n_x_apps_Deployment", "v1"))
    merged = a.merge(b)
    assert [(str(e.id), e.version) for e in merged.entries] == [
        ("n_x_apps_Deployment", "v1"),
        ("n_y__Secret", "v1"),
    ]
    new = Inventory.new(
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x", "namespace": "n"},
            }
        ]
    )
    assert new.to_status() == {"entries": [{"id": "n_x_apps_Deployment", "v": "v1"}]}
    assert ObjectId.parse("n_x_apps_Deployment") in new
    assert len(merged.restrict([ObjectId.parse("n_y__Secret")])) == 1
    assert Inventory.from_status(None) == Inventory()
