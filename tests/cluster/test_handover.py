"""A Secret taken over from the Sealed Secrets controller stops being its SealedSecret's child.

The real controller's side of this (uninstall, garbage collector) is proved against the real
controller in tests/peers/test_handover.py; here the apply step itself, on both tiers (the
emulator and the real control plane, or the cluster SEALED_GITOPS_E2E_KUBECONFIG names): the
real API server's ownerReferences patch semantics are what the release relies on.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from sealed_gitops.cluster import KubeClient, Result, SyncRef, apply
from sealed_gitops.cluster.handover import sealed_owners
from tests.cluster.manifests import config_map, secret

pytestmark = pytest.mark.e2e

REV = "main@sha1:" + "3" * 40


def _owner(kind: str, api_version: str, name: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": str(uuid.uuid4()),
            "controller": kind == "SealedSecret", "blockOwnerDeletion": True}  # fmt: skip


def _create(kube: KubeClient, namespace: str, obj: dict[str, Any]) -> None:
    kind = obj["kind"].lower() + "s"
    kube.request("POST", f"/api/v1/namespaces/{namespace}/{kind}", body=obj,
                 action="create", what=obj["metadata"]["name"])  # fmt: skip


def _get(kube: KubeClient, path: str) -> dict[str, Any]:
    return kube.request("GET", path, action="read", what=path)


def test_apply_drops_only_the_sealed_secret_owner_of_a_secret_it_takes_over(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    sealed = _owner("SealedSecret", "bitnami.com/v1alpha1", "db")
    # someone's deliberate owner: it stays. It exists, as the real garbage collector would
    # otherwise delete the Secret for a dangling owner in the middle of the test.
    _create(kube, namespace, config_map(namespace, "keeper", {}))
    keeper = _get(kube, f"/api/v1/namespaces/{namespace}/configmaps/keeper")
    other = _owner("ConfigMap", "v1", "keeper") | {"uid": keeper["metadata"]["uid"]}
    _create(kube, namespace, secret(namespace, "db", {"password": "from-the-controller"},
                                    ownerReferences=[other, sealed]))  # fmt: skip
    result = apply(kube, [secret(namespace, "db", {"password": "from-the-controller"})],
                   sync=sync, revision=REV)  # fmt: skip
    [outcome] = result.outcomes
    assert outcome.result is Result.CONFIGURED
    live = _get(kube, f"/api/v1/namespaces/{namespace}/secrets/db")
    assert [o["uid"] for o in live["metadata"]["ownerReferences"]] == [other["uid"]]
    assert sync.owns(live)
    # the recorded resourceVersion is the one after the release: the next apply writes nothing
    assert outcome.resource_version == live["metadata"]["resourceVersion"]
    again = apply(kube, [secret(namespace, "db", {"password": "from-the-controller"})],
                  sync=sync, revision=REV, recorded=result.records)  # fmt: skip
    assert [o.result for o in again.outcomes] == [Result.UNCHANGED]


def test_owner_references_of_other_objects_and_kinds_are_left_alone(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    # a ConfigMap owned by a SealedSecret (odd, but someone's choice): not a Secret we took over
    sealed = _owner("SealedSecret", "bitnami.com/v1alpha1", "settings")
    _create(kube, namespace, config_map(namespace, "settings", {"level": "info"},
                                        ownerReferences=[sealed]))  # fmt: skip
    apply(kube, [config_map(namespace, "settings", {"level": "debug"})], sync=sync, revision=REV)
    live = _get(kube, f"/api/v1/namespaces/{namespace}/configmaps/settings")
    assert [o["uid"] for o in live["metadata"]["ownerReferences"]] == [sealed["uid"]]
    # a look-alike kind from another group is not Bitnami's
    assert sealed_owners({"metadata": {"ownerReferences": [
        _owner("SealedSecret", "evil.example.com/v1", "x")]}}) == []  # fmt: skip
