"""Change sets, Secret key changes by digest, digests, prune protection; never a value."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealed_gitops.plan import (
    Change,
    Inventory,
    ObjectId,
    digest,
    object_diff,
    plan_changes,
    secret_key_changes,
)

CANARY = "canary-Zq81-never-print-me"
CANARY2 = "canary-Wx42-second-value"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str = "db", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "app"},
            "type": "Opaque", "data": {k: b64(v) for k, v in data.items()}}


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "app"}, "data": dict(data)}


def live(obj: dict[str, Any], rv: str = "7", **annotations: str) -> dict[str, Any]:
    """What the API server returns for an applied object: defaults and server fields added."""
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    meta.update(resourceVersion=rv, uid="u-1", creationTimestamp="2026-01-01T00:00:00Z",
                managedFields=[{"manager": "sealed-gitops"}])
    if annotations:
        meta["annotations"] = dict(annotations)
    if out["kind"] == "Secret":
        out.setdefault("type", "Opaque")
    return out


@pytest.mark.parametrize(
    ("desired", "current", "expected"),
    [
        ({"password": CANARY}, {"password": CANARY}, [("password", Change.UNCHANGED)]),
        ({"password": CANARY}, {"password": CANARY2}, [("password", Change.CHANGED)]),
        ({"password": CANARY, "user": "admin"}, {"password": CANARY},
         [("password", Change.UNCHANGED), ("user", Change.ADDED)]),
        ({}, {"password": CANARY}, [("password", Change.REMOVED)]),
    ],
)
def test_secret_key_changes(
    desired: dict[str, str], current: dict[str, str], expected: list[tuple[str, Change]]
) -> None:
    changes = secret_key_changes(secret(**desired), live(secret(**current)))
    assert [(k.key, k.change) for k in changes] == expected
    assert CANARY not in repr(changes) and b64(CANARY) not in repr(changes)


def test_string_data_is_compared_with_data() -> None:
    desired = secret()
    desired["stringData"] = {"password": CANARY}
    assert [(k.key, k.change) for k in
            secret_key_changes(desired, live(secret(password=CANARY)))] == [
        ("password", Change.UNCHANGED)
    ]


def test_plan_create_update_unchanged_prune_keep() -> None:
    desired = [cm("same", a="1"), cm("changed", a="2"), cm("new", a="1"),
               secret("s", password=CANARY)]
    current = {
        ObjectId.of(o): o
        for o in [
            live(cm("same", a="1")),
            live(cm("changed", a="1")),
            live(secret("s", password=CANARY2)),
            live(cm("gone", a="1")),
            live(cm("kept", a="1"), **{"sealed-gitops.io/prune": "disabled"}),
        ]
    }
    previous = Inventory.new([cm("same"), cm("changed"), secret("s"), cm("gone"), cm("kept"),
                              cm("already-deleted")])
    plan = plan_changes(desired, current, previous=previous)
    names = {c: [o.id.name for o in getattr(plan, c)] for c in
             ("create", "update", "unchanged", "prune", "keep")}
    assert names == {"create": ["new"], "update": ["changed", "s"], "unchanged": ["same"],
                     "prune": ["gone"], "keep": ["kept"]}
    s_change = next(o for o in plan.update if o.id.kind == "Secret")
    assert s_change.describe() == "update Secret app/s (changed: password)"
    assert [str(e.id) for e in plan.inventory.entries] == [
        "app_changed__ConfigMap", "app_new__ConfigMap", "app_s__Secret", "app_same__ConfigMap"
    ]
    everything = repr(plan) + "".join(o.describe() for o in plan.changes)
    assert CANARY not in everything and CANARY2 not in everything
    assert b64(CANARY) not in everything


def test_nothing_is_pruned_without_a_previous_inventory() -> None:
    plan = plan_changes([], {ObjectId.of(cm("x")): live(cm("x"))})
    assert plan.empty and plan.prune == ()


def test_recorded_digest_and_resource_version_skip_the_comparison() -> None:
    desired = cm("x", a="1")
    oid = ObjectId.of(desired)
    stale_live = live(cm("x", a="drifted"), rv="9")
    same = plan_changes([desired], {oid: stale_live}, recorded={oid: (digest(desired), "9")})
    assert [o.id.name for o in same.unchanged] == ["x"]
    # Someone edited the object (new resourceVersion): compare fields, find the drift.
    drift = plan_changes([desired], {oid: live(cm("x", a="drifted"), rv="10")},
                         recorded={oid: (digest(desired), "9")})
    assert [o.id.name for o in drift.update] == ["x"]


@pytest.mark.parametrize(
    ("desired", "current", "same"),
    [
        ({"spec": {"replicas": 1}}, {"spec": {"replicas": 1, "paused": False}}, True),
        ({"spec": {"replicas": 1}}, {"spec": {"replicas": 2}}, False),
        ({"spec": {"ports": [{"port": 80}]}},
         {"spec": {"ports": [{"port": 80, "protocol": "TCP"}]}}, True),
        ({"spec": {"ports": [{"port": 80}]}}, {"spec": {"ports": []}}, False),
        ({"spec": {"flag": True}}, {"spec": {"flag": 1}}, False),
        ({"spec": {"x": 1}}, {"spec": {"x": 1.0}}, True),
        ({"spec": {"labels": {}}}, {"spec": {}}, True),
        ({"metadata": {"name": "d", "resourceVersion": "1"}},
         {"metadata": {"name": "d", "resourceVersion": "2"}}, True),
    ],
)
def test_field_comparison(desired: dict[str, Any], current: dict[str, Any], same: bool) -> None:
    base: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "n"}}
    d = {**base, **desired}
    c = {**base, **current}
    if "metadata" not in desired:
        c["metadata"] = {**base["metadata"], "resourceVersion": "1"}
    d["metadata"] = {**d["metadata"], "namespace": "n"}
    c["metadata"] = {**c["metadata"], "namespace": "n"}
    plan = plan_changes([d], {ObjectId.of(d): c})
    assert (len(plan.unchanged) == 1) is same


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                     children, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_digest_is_independent_of_key_order(obj: dict[str, Any]) -> None:
    reordered = dict(reversed(list(obj.items())))
    assert digest(obj) == digest(reordered)
    assert len(digest(obj)) == 64


def test_digest_changes_with_content_and_key() -> None:
    a = secret(password=CANARY)
    assert digest(a) != digest(secret(password=CANARY2))
    assert digest(a, key=b"k1") != digest(a, key=b"k2") != digest(a)
    assert CANARY not in digest(a)


def test_canary_never_in_any_output() -> None:
    """Every text the plan layer produces for Secrets, on every path, is free of values."""
    desired = secret("db", password=CANARY, token=CANARY2)
    desired["stringData"] = {"extra": CANARY + "-sd"}
    previous = live(secret("db", password=CANARY2, old=CANARY))
    outputs = [
        object_diff(desired, previous),
        object_diff(desired, None),
        object_diff(None, previous),
        repr(plan_changes([desired], {ObjectId.of(desired): previous})),
        repr(plan_changes([], {ObjectId.of(desired): previous},
                          previous=Inventory.new([desired]))),
        repr(secret_key_changes(desired, previous)),
    ]
    for text in outputs:
        for value in (CANARY, CANARY2, CANARY + "-sd"):
            assert value not in text
            assert b64(value) not in text
