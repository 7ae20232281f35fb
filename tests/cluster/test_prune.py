"""Prune: what left the inventory goes, protected and foreign objects stay, in reverse order."""

from __future__ import annotations

from typing import Any

import pytest

from sealed_gitops.cluster import KubeClient, Pruned, SyncRef, apply, prune
from sealed_gitops.cluster.ownership import PRUNE_ANNOTATION, SYNC_NAME_LABEL
from sealed_gitops.errors import ApiNotFound
from sealed_gitops.plan import Inventory
from tests.cluster.manifests import config_map, crd, namespace_object, secret

pytestmark = pytest.mark.e2e


def _exists(kube: KubeClient, path: str) -> bool:
    try:
        kube.request("GET", path, action="read", what=path)
    except ApiNotFound:
        return False
    return True


def test_prune_deletes_what_left_and_keeps_protected_and_foreign(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    objects = [
        config_map(namespace, "stays"),
        config_map(namespace, "leaves"),
        config_map(namespace, "protected", annotations={PRUNE_ANNOTATION: "disabled"}),
        config_map(namespace, "adopted"),
        secret(namespace, "old-secret", {"token": "a-token-value"}),
    ]
    first = apply(kube, objects, sync=sync)
    assert first.ok
    # Someone else takes "adopted" over: it no longer carries our labels.
    kube.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/adopted",
                 body={"metadata": {"labels": {SYNC_NAME_LABEL: None}}},
                 content_type="application/merge-patch+json", action="edit", what="adopted")
    second = apply(kube, objects[:1], sync=sync)
    result = prune(kube, previous=first.inventory, current=second.inventory, sync=sync)
    by_name = {o.id.name: o.result for o in result.outcomes}
    assert by_name == {"leaves": Pruned.DELETED, "protected": Pruned.PROTECTED,
                       "adopted": Pruned.NOT_OWNED, "old-secret": Pruned.DELETED}
    assert (result.deleted, result.failed, result.ok) == (2, 0, True)
    base = f"/api/v1/namespaces/{namespace}"
    assert _exists(kube, f"{base}/configmaps/stays")
    assert _exists(kube, f"{base}/configmaps/protected")
    assert _exists(kube, f"{base}/configmaps/adopted")
    assert not _exists(kube, f"{base}/configmaps/leaves")
    assert not _exists(kube, f"{base}/secrets/old-secret")
    # Pruning again finds nothing left to delete.
    again = prune(kube, previous=first.inventory, current=second.inventory, sync=sync)
    assert again.deleted == 0
    assert {o.id.name: o.result for o in again.outcomes}["leaves"] is Pruned.GONE


def test_prune_order_is_reverse_apply_order(
    kube: KubeClient, sync: SyncRef, cleanup: list[str]
) -> None:
    definition, group = crd(scope="Cluster")
    target = f"t-prune-{sync.name}"
    cleanup.extend([f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                    f"{definition['metadata']['name']}", f"/api/v1/namespaces/{target}"])
    widget: dict[str, Any] = {"apiVersion": f"{group}/v1", "kind": "Widget",
                              "metadata": {"name": "w"}}
    objects = [definition, namespace_object(target), config_map(target, "c"), widget]
    applied = apply(kube, objects, sync=sync)
    assert applied.ok, [o.describe() for o in applied.errors]
    result = prune(kube, previous=applied.inventory, current=Inventory(), sync=sync)
    assert [o.id.kind for o in result.outcomes] == [
        "ConfigMap", "Widget", "Namespace", "CustomResourceDefinition"]
    assert result.deleted == 4
