"""Apply order: definitions, then cluster-scoped, then namespaced; stable within each."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sealed_gitops.plan import ObjectId, apply_order, apply_stages


def obj(api: str, kind: str, name: str, ns: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": api, "kind": kind, "metadata": meta}


OBJECTS = [
    obj("apps/v1", "Deployment", "web", "app"),
    obj("v1", "Service", "web", "app"),
    obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "hook"),
    obj("v1", "ConfigMap", "b", "app"),
    obj("v1", "ConfigMap", "a", "app"),
    obj("v1", "Secret", "s", "app"),
    obj("example.com/v1", "Widget", "w", "app"),
    obj("rbac.authorization.k8s.io/v1", "ClusterRole", "reader"),
    obj("rbac.authorization.k8s.io/v1", "RoleBinding", "rb", "app"),
    obj("v1", "Namespace", "app"),
    obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
    obj("scheduling.k8s.io/v1", "PriorityClass", "high"),
    obj("v1", "ServiceAccount", "sa", "app"),
]

EXPECTED = [
    ("definitions", "CustomResourceDefinition", "widgets.example.com"),
    ("definitions", "Namespace", "app"),
    ("cluster", "ClusterRole", "reader"),
    ("cluster", "PriorityClass", "high"),
    ("cluster", "ValidatingWebhookConfiguration", "hook"),
    ("namespaced", "ServiceAccount", "sa"),
    ("namespaced", "RoleBinding", "rb"),
    ("namespaced", "ConfigMap", "a"),
    ("namespaced", "ConfigMap", "b"),
    ("namespaced", "Secret", "s"),
    ("namespaced", "Service", "web"),
    ("namespaced", "Deployment", "web"),
    ("namespaced", "Widget", "w"),
]


def test_stages_and_order() -> None:
    got = [(s.name, o["kind"], o["metadata"]["name"]) for s in apply_stages(OBJECTS)
           for o in s.objects]
    assert got == EXPECTED


@given(st.randoms(use_true_random=False))
def test_order_does_not_depend_on_input_order(rnd: random.Random) -> None:
    shuffled = list(OBJECTS)
    rnd.shuffle(shuffled)
    assert apply_order(shuffled) == apply_order(OBJECTS)


def test_discovery_decides_scope_of_custom_kinds() -> None:
    cluster_widget = obj("example.com/v1", "Widget", "w")

    def scoped(oid: ObjectId) -> bool:
        return oid.kind in ("Widget", "ClusterRole")

    stages = apply_stages([cluster_widget, OBJECTS[0]], is_cluster_scoped=scoped)
    assert [(s.name, len(s.objects)) for s in stages] == [("cluster", 1), ("namespaced", 1)]
    assert apply_stages([]) == []
