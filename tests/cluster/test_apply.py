"""Server-side apply: creates, writes nothing when nothing changed, updates, CRD and CR together."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from sealed_gitops.cluster import (
    COMMIT_ANNOTATION,
    FIELD_MANAGER,
    SOURCE_PATH_ANNOTATION,
    SYNC_ANNOTATION,
    Discovery,
    KubeClient,
    Policy,
    Result,
    SyncRef,
    apply,
    prepare_desired,
    read_live,
)
from sealed_gitops.cluster.ownership import LAST_APPLIED_ANNOTATION
from sealed_gitops.plan import Change, ObjectId
from tests.cluster.manifests import config_map, crd, namespace_object, secret

pytestmark = pytest.mark.e2e

REV1 = "main@sha1:" + "1" * 40
REV2 = "main@sha1:" + "2" * 40


def _get(kube: KubeClient, path: str) -> dict[str, Any]:
    return kube.request("GET", path, action="read", what=path)


def _objects(namespace: str) -> list[dict[str, Any]]:
    return [
        config_map(namespace, "settings", {"level": "debug"},
                   annotations={LAST_APPLIED_ANNOTATION: '{"kind":"ConfigMap"}'}),
        secret(namespace, "db", {"password": "correct-horse-battery"}),
    ]


def test_apply_creates_labelled_objects_without_last_applied(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    result = apply(kube, _objects(namespace), sync=sync, revision=REV1,
                   sources={ObjectId(namespace, "db", "", "Secret"): "deploy/db.sops.yaml"})
    assert [(o.id.kind, o.result) for o in result.outcomes] == [
        ("ConfigMap", Result.CREATED), ("Secret", Result.CREATED)]
    assert (result.applied, result.unchanged, result.failed) == (2, 0, 0)
    cm = _get(kube, f"/api/v1/namespaces/{namespace}/configmaps/settings")
    assert sync.owns(cm)
    assert LAST_APPLIED_ANNOTATION not in (cm["metadata"].get("annotations") or {})
    assert {m["manager"]: m["operation"] for m in cm["metadata"]["managedFields"]} == {
        FIELD_MANAGER: "Apply"}
    sec = _get(kube, f"/api/v1/namespaces/{namespace}/secrets/db")
    assert sec["metadata"]["annotations"] == {
        SYNC_ANNOTATION: str(sync), SOURCE_PATH_ANNOTATION: "deploy/db.sops.yaml",
        COMMIT_ANNOTATION: REV1}
    assert base64.b64decode(sec["data"]["password"]) == b"correct-horse-battery"
    assert result.outcomes[1].resource_version == sec["metadata"]["resourceVersion"]
    # The Secret's outcome names the added key and nothing else.
    assert result.outcomes[1].describe() == f"create Secret {namespace}/db (added: password)"


@pytest.mark.parametrize("with_records", [True, False], ids=["recorded", "compared"])
def test_reapply_without_change_writes_nothing(
    kube: KubeClient, namespace: str, sync: SyncRef, with_records: bool
) -> None:
    first = apply(kube, _objects(namespace), sync=sync, revision=REV1)
    writes = kube.writes
    again = apply(kube, _objects(namespace), sync=sync, revision=REV2,
                  recorded=first.records if with_records else None)
    assert kube.writes == writes
    assert [o.result for o in again.outcomes] == [Result.UNCHANGED] * 2
    assert (again.applied, again.unchanged, again.failed) == (0, 2, 0)
    assert again.records == first.records
    # The commit annotation still names the revision whose values are live.
    sec = _get(kube, f"/api/v1/namespaces/{namespace}/secrets/db")
    assert sec["metadata"]["annotations"][COMMIT_ANNOTATION] == REV1


def test_a_change_updates_only_that_object(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    first = apply(kube, _objects(namespace), sync=sync, revision=REV1)
    changed = _objects(namespace)
    changed[1]["stringData"] = {"password": "new-password-value", "user": "app"}
    writes = kube.writes
    second = apply(kube, changed, sync=sync, revision=REV2, recorded=first.records)
    assert kube.writes == writes + 1
    cm, sec = second.outcomes
    assert (cm.result, sec.result) == (Result.UNCHANGED, Result.CONFIGURED)
    assert sec.change is not None
    assert {k.key: k.change for k in sec.change.keys} == {
        "password": Change.CHANGED, "user": Change.ADDED}
    live = _get(kube, f"/api/v1/namespaces/{namespace}/secrets/db")
    assert live["metadata"]["annotations"][COMMIT_ANNOTATION] == REV2
    assert sec.resource_version == live["metadata"]["resourceVersion"]


def test_drift_is_corrected(kube: KubeClient, namespace: str, sync: SyncRef) -> None:
    first = apply(kube, _objects(namespace), sync=sync, revision=REV1)
    kube.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/settings",
                 body={"data": {"level": "trace"}},
                 content_type="application/merge-patch+json", action="edit", what="cm")
    second = apply(kube, _objects(namespace), sync=sync, revision=REV1, recorded=first.records)
    assert [o.result for o in second.outcomes] == [Result.CONFIGURED, Result.UNCHANGED]
    cm = _get(kube, f"/api/v1/namespaces/{namespace}/configmaps/settings")
    assert cm["data"] == {"level": "debug"}


def test_an_unrelated_change_by_someone_else_is_not_a_write(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    """A new resourceVersion alone (a label another tool added) does not make us write."""
    first = apply(kube, _objects(namespace), sync=sync, revision=REV1)
    kube.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/settings",
                 body={"metadata": {"labels": {"team": "a"}}},
                 content_type="application/merge-patch+json", action="edit", what="cm")
    writes = kube.writes
    second = apply(kube, _objects(namespace), sync=sync, revision=REV1, recorded=first.records)
    assert kube.writes == writes
    assert second.outcomes[0].result is Result.UNCHANGED
    assert second.records[second.outcomes[0].id] != first.records[first.outcomes[0].id]


def test_namespace_crd_and_custom_resource_in_one_apply(
    kube: KubeClient, make_namespace: Any, sync: SyncRef, cleanup: list[str]
) -> None:
    definition, group = crd()
    target = f"t-new-{sync.name}"
    cleanup.extend([f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                    f"{definition['metadata']['name']}", f"/api/v1/namespaces/{target}"])
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget",
              "metadata": {"name": "w1", "namespace": target}, "spec": {"size": 3}}
    # Given in the worst order: the custom resource first, its namespace and CRD last.
    objects = [widget, config_map(target, "c"), namespace_object(target), definition]
    discovery = Discovery(kube)
    result = apply(kube, objects, sync=sync, revision=REV1, discovery=discovery)
    assert result.ok, [o.describe() for o in result.errors]
    assert [o.id.kind for o in result.outcomes] == [
        "CustomResourceDefinition", "Namespace", "ConfigMap", "Widget"]
    made = _get(kube, f"/apis/{group}/v1/namespaces/{target}/widgets/w1")
    assert made["spec"] == {"size": 3}
    assert sync.owns(made)
    again = apply(kube, objects, sync=sync, recorded=result.records, discovery=discovery)
    assert again.unchanged == 4
    live = read_live(kube, discovery, result.inventory.entries, sync=sync)
    assert set(live) == {o.id for o in result.outcomes}


def test_failed_objects_keep_their_previous_inventory_entry(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    first = apply(kube, [config_map(namespace, "a"), config_map(namespace, "b")], sync=sync)
    broken = [config_map(namespace, "a"), config_map(namespace, "b", {"bad key": "x"})]
    second = apply(kube, broken, sync=sync, recorded=first.records, policy=Policy.ISOLATE)
    assert [o.result for o in second.outcomes] == [Result.UNCHANGED, Result.FAILED]
    assert second.next_inventory(first.inventory) == first.inventory
    assert second.inventory == first.inventory.restrict([second.outcomes[0].id])


def test_a_namespaced_object_without_namespace_fails_on_its_own(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    result = apply(kube, [config_map("", "b"), config_map(namespace, "a")], sync=sync,
                   policy=Policy.ISOLATE)
    by_name = {o.id.name: o for o in result.outcomes}
    assert by_name["a"].result is Result.CREATED
    assert by_name["b"].result is Result.FAILED
    assert "ConfigMap b is namespaced but has no namespace" in str(by_name["b"].error)


def test_prepared_objects_are_reusable_and_still_see_drift(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    """The operator prepares a revision's objects once and applies them on every reconcile of
    that revision: the same outcomes as plain objects, zero writes when nothing changed, and a
    change made in the cluster is still found (by its resourceVersion) and undone."""
    discovery = Discovery(kube)
    sources = {ObjectId(namespace, "db", "", "Secret"): "deploy/db.sops.yaml"}
    desired = prepare_desired(_objects(namespace), sync=sync, sources=sources,
                              digest_key=b"k" * 32, discovery=discovery)
    assert [oid.kind for oid in desired.ids] == ["ConfigMap", "Secret"]
    first = apply(kube, desired, sync=sync, revision=REV1, digest_key=b"k" * 32,
                  discovery=discovery)
    assert [o.result for o in first.outcomes] == [Result.CREATED, Result.CREATED]
    sec = _get(kube, f"/api/v1/namespaces/{namespace}/secrets/db")
    assert sec["metadata"]["annotations"][SOURCE_PATH_ANNOTATION] == "deploy/db.sops.yaml"
    writes = kube.writes
    again = apply(kube, desired, sync=sync, revision=REV1, recorded=first.records,
                  digest_key=b"k" * 32, discovery=discovery)
    assert kube.writes == writes
    assert [o.result for o in again.outcomes] == [Result.UNCHANGED] * 2
    # the same records as plain objects would give (digests of the same prepared objects)
    plain = apply(kube, _objects(namespace), sync=sync, revision=REV1, sources=sources,
                  recorded=first.records, digest_key=b"k" * 32, discovery=discovery)
    assert plain.records == again.records and kube.writes == writes
    kube.request("PATCH", f"/api/v1/namespaces/{namespace}/secrets/db",
                 body={"data": {"password": base64.b64encode(b"edited").decode()}},
                 content_type="application/merge-patch+json", action="edit", what="secret")
    repaired = apply(kube, desired, sync=sync, revision=REV1, recorded=again.records,
                     digest_key=b"k" * 32, discovery=discovery)
    assert [o.result for o in repaired.outcomes] == [Result.UNCHANGED, Result.CONFIGURED]
    sec = _get(kube, f"/api/v1/namespaces/{namespace}/secrets/db")
    assert base64.b64decode(sec["data"]["password"]) == b"correct-horse-battery"
