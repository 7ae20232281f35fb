"""Live state: read in few requests, absent and unserved ids left out, failures per object."""

from __future__ import annotations

import pytest

from sealed_gitops.cluster import Discovery, KubeClient, SyncRef, apply, read_live
from sealed_gitops.errors import ApiUnavailable, ClusterError
from sealed_gitops.plan import ObjectId
from sealed_gitops.testing import KubeEmulator
from tests.cluster.manifests import config_map


@pytest.mark.e2e
def test_owned_objects_are_read_with_one_list(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    objects = [config_map(namespace, f"c{i}") for i in range(6)]
    applied = apply(kube, objects, sync=sync)
    discovery = Discovery(kube)
    discovery.resource("v1", "ConfigMap")  # warm the cache: count only the reads below
    gets = kube.counts.get("GET", 0)
    wanted = {e.id: "v1" for e in applied.inventory.entries}
    wanted[ObjectId(namespace, "absent", "", "ConfigMap")] = "v1"
    wanted[ObjectId(namespace, "x", "nowhere.example.com", "Thing")] = "nowhere.example.com/v1"
    live = read_live(kube, discovery, wanted, sync=sync)
    assert set(live) == applied.inventory.ids
    # One labelled LIST, one unlabelled GET for the absent one, one discovery miss of the group.
    assert kube.counts["GET"] - gets <= 3
    assert all(obj["kind"] == "ConfigMap" and obj["apiVersion"] == "v1" for obj in live.values())


@pytest.mark.e2e
def test_first_read_of_many_unlabelled_objects_is_two_lists(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    discovery = Discovery(kube)
    discovery.resource("v1", "ConfigMap")
    wanted = {ObjectId(namespace, f"n{i}", "", "ConfigMap"): "v1" for i in range(20)}
    gets = kube.counts.get("GET", 0)
    assert read_live(kube, discovery, wanted, sync=sync) == {}
    assert kube.counts["GET"] - gets == 2


def test_read_failures_are_collected_per_object(
    emulator: KubeEmulator, kube: KubeClient, namespace: str
) -> None:
    discovery = Discovery(kube)
    discovery.resource("v1", "ConfigMap")
    emulator.faults.add(verb="get", resource="configmaps", namespace=namespace, name="bad",
                        status=503)
    wanted = {ObjectId(namespace, n, "", "ConfigMap"): "v1" for n in ("bad", "good")}
    failures: dict[ObjectId, ClusterError] = {}
    assert read_live(kube, discovery, wanted, failures=failures) == {}
    assert list(failures) == [ObjectId(namespace, "bad", "", "ConfigMap")]
    assert isinstance(failures[ObjectId(namespace, "bad", "", "ConfigMap")], ApiUnavailable)
    emulator.faults.add(verb="get", resource="configmaps", namespace=namespace, status=503)
    with pytest.raises(ApiUnavailable):
        read_live(kube, discovery, wanted)
