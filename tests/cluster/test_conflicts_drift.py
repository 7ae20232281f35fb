"""Issue 15, Musts 2-3 at the cluster layer: the first owner keeps an object; drift is not Git.

``apply`` leaves an object another Sync still claims alone (an OwnershipConflict outcome, the rest
by the failure policy) and adopts one whose owner is stale; a write that restores a live edit of
an object Git did not change is marked as drift, names the edit's field manager, and keeps the
commit annotation of the commit that set the values.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from sealed_gitops.cluster import (
    AUTHOR_ANNOTATION,
    COMMIT_ANNOTATION,
    ApplyResult,
    KubeClient,
    Policy,
    Result,
    SyncRef,
    apply,
    owner_of,
)
from sealed_gitops.cluster.drift import editors
from sealed_gitops.errors import OwnershipConflict
from sealed_gitops.plan import ObjectId
from tests.cluster.manifests import config_map, secret

pytestmark = pytest.mark.e2e

REV1 = "main@sha1:" + "1" * 40
REV2 = "main@sha1:" + "2" * 40
ALICE, BOB = "Alice <alice@example.invalid>", "Bob <bob@example.invalid>"


def _get(kube: KubeClient, path: str) -> dict[str, Any]:
    return kube.request("GET", path, action="read", what=path)


def _edit(kube: KubeClient, path: str, body: dict[str, Any], *, manager: str) -> None:
    kube.request(
        "PATCH",
        path,
        query={"fieldManager": manager},
        body=body,
        content_type="application/merge-patch+json",
        action="edit",
        what=path,
    )


def _apply_next(
    kube: KubeClient, desired: list[dict[str, Any]], *, sync: SyncRef, after: ApplyResult
) -> ApplyResult:
    """Bob's commit (REV2) applied after Alice's ``after``, carrying its records as a
    reconcile does, so drift since then is found and blamed on the right commit."""
    return apply(
        kube,
        desired,
        sync=sync,
        revision=REV2,
        author=BOB,
        recorded=after.records,
        set_by=after.set_by,
    )


def _shared(namespace: str) -> list[dict[str, Any]]:
    return [config_map(namespace, "shared", {"k": "v"}), config_map(namespace, "mine", {"a": "b"})]


@pytest.mark.parametrize(
    ("policy", "mine"), [(Policy.ATOMIC, Result.SKIPPED), (Policy.ISOLATE, Result.CREATED)]
)
def test_an_object_another_sync_claims_is_left_alone(
    kube: KubeClient, namespace: str, sync: SyncRef, policy: Policy, mine: Result
) -> None:
    owner = SyncRef(namespace, "owner")
    apply(kube, _shared(namespace)[:1], sync=owner)
    asked: list[tuple[SyncRef, ObjectId]] = []

    def claims(who: SyncRef, oid: ObjectId) -> bool:
        asked.append((who, oid))
        return True

    result = apply(kube, _shared(namespace), sync=sync, claims=claims, policy=policy)
    by_name = {o.id.name: o for o in result.outcomes}
    shared, other = by_name["shared"], by_name["mine"]
    assert shared.result is Result.FAILED and isinstance(shared.error, OwnershipConflict)
    assert shared.error.owner == f"{namespace}/owner"
    assert f"Sync {namespace}/owner" in str(shared.error) and "shared" in str(shared.error)
    assert other.result is mine
    assert result.conflicts == (shared,)
    assert [who for who, _ in asked] == [owner]
    live = _get(kube, f"/api/v1/namespaces/{namespace}/configmaps/shared")
    assert owner_of(live) == owner
    assert shared.id not in result.next_inventory(result.inventory)


def test_without_claims_every_other_owner_counts_and_a_stale_owner_is_adopted(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    apply(kube, _shared(namespace)[:1], sync=SyncRef(namespace, "gone"))
    refused = apply(kube, _shared(namespace)[:1], sync=sync)
    assert refused.outcomes[0].result is Result.FAILED
    adopted = apply(kube, _shared(namespace)[:1], sync=sync, claims=lambda who, oid: False)
    assert adopted.outcomes[0].result is Result.CONFIGURED
    live = _get(kube, f"/api/v1/namespaces/{namespace}/configmaps/shared")
    assert owner_of(live) == sync


def test_a_live_edit_is_corrected_as_drift_and_keeps_the_commit(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets/db"
    desired = [secret(namespace, "db", {"password": "from-git", "user": "app"})]
    first = apply(kube, desired, sync=sync, revision=REV1, author=ALICE)
    assert first.outcomes[0].drift is None and first.outcomes[0].commit == REV1
    edited = base64.b64encode(b"edited-live").decode()
    _edit(kube, path, {"data": {"password": edited}}, manager="alice-console")
    _edit(kube, path, {"metadata": {"labels": {"team": "a"}}}, manager="labeller")

    second = _apply_next(kube, desired, sync=sync, after=first)
    [outcome] = second.outcomes
    assert outcome.result is Result.CONFIGURED
    assert outcome.drift is not None
    # only the manager whose field we set again; the one that added a label of its own is not
    assert outcome.drift.managers == ("alice-console",)
    assert (outcome.drift.commit, outcome.drift.author) == (REV1, ALICE)
    assert second.corrected == (outcome,) and not second.changed
    live = _get(kube, path)
    assert base64.b64decode(live["data"]["password"]) == b"from-git"
    notes = live["metadata"]["annotations"]
    assert (notes[COMMIT_ANNOTATION], notes[AUTHOR_ANNOTATION]) == (REV1, ALICE)
    assert editors(live, {"data": {"password": "x"}}) == ()  # the field is ours again


def test_a_deleted_object_is_recreated_as_drift_with_the_commit_it_had(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets/db"
    desired = [secret(namespace, "db", {"password": "from-git"})]
    first = apply(kube, desired, sync=sync, revision=REV1, author=ALICE)
    kube.request("DELETE", path, action="delete", what=path)
    second = _apply_next(kube, desired, sync=sync, after=first)
    [outcome] = second.outcomes
    assert outcome.result is Result.CREATED
    assert outcome.drift is not None and outcome.drift.managers == ()
    assert outcome.drift.by == "unknown"
    notes = _get(kube, path)["metadata"]["annotations"]
    assert (notes[COMMIT_ANNOTATION], notes[AUTHOR_ANNOTATION]) == (REV1, ALICE)


def test_a_live_editor_cannot_rename_the_commit_a_drift_correction_restores(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets/db"
    desired = [secret(namespace, "db", {"password": "from-git"})]
    first = apply(kube, desired, sync=sync, revision=REV1, author=ALICE)
    forged = {COMMIT_ANNOTATION: "main@sha1:" + "f" * 40, AUTHOR_ANNOTATION: "Mallory <m@x>"}
    patch = {"metadata": {"annotations": forged}, "data": {"password": "bGl2ZQ=="}}
    _edit(kube, path, patch, manager="mallory")
    second = _apply_next(kube, desired, sync=sync, after=first)
    [outcome] = second.outcomes
    assert outcome.drift is not None
    assert (outcome.drift.commit, outcome.drift.author) == (REV1, ALICE)
    notes = _get(kube, path)["metadata"]["annotations"]
    assert (notes[COMMIT_ANNOTATION], notes[AUTHOR_ANNOTATION]) == (REV1, ALICE)


def test_a_change_from_git_is_not_drift_even_after_a_live_edit(
    kube: KubeClient, namespace: str, sync: SyncRef
) -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets/db"
    first = apply(
        kube, [secret(namespace, "db", {"password": "v1"})], sync=sync, revision=REV1, author=ALICE
    )
    _edit(kube, path, {"data": {"password": base64.b64encode(b"live").decode()}}, manager="x")
    second = _apply_next(
        kube, [secret(namespace, "db", {"password": "v2"})], sync=sync, after=first
    )
    [outcome] = second.outcomes
    assert outcome.drift is None and second.changed == (outcome,)
    notes = _get(kube, path)["metadata"]["annotations"]
    assert (notes[COMMIT_ANNOTATION], notes[AUTHOR_ANNOTATION]) == (REV2, BOB)


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"manager": "kubectl-edit", "fieldsV1": {"f:data": {"f:password": {}}}}, True),
        ({"manager": "kubectl-edit", "fieldsV1": {"f:data": {"f:other": {}}}}, False),
        ({"manager": "sealed-gitops", "fieldsV1": {"f:data": {"f:password": {}}}}, False),
        ({"manager": "kubelet", "subresource": "status", "fieldsV1": {"f:data": {}}}, False),
        ({"manager": "ctl", "fieldsV1": {"f:spec": {"f:ports": {'k:{"port":80}': {}}}}}, True),
    ],
)
def test_editors_names_only_managers_of_fields_we_send(entry: dict[str, Any], named: bool) -> None:
    live = {"metadata": {"managedFields": [entry]}}
    sent = {"data": {"password": "x"}, "spec": {"ports": [{"port": 80}]}}
    assert editors(live, sent) == ((entry["manager"],) if named else ())
