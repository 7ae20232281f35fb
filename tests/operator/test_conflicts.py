"""Issue 15, Must 2: two Syncs that render the same object do not fight over it.

The first owner (the Sync whose labels the live object carries, while it exists and lists the
object in its inventory) keeps applying it; the second is Ready=False, reason OwnershipConflict,
naming the owner and the object, with an Event on both Syncs; deleting the second prunes nothing
it does not own. The rest of the second Sync follows its failure policy: Atomic writes nothing,
Isolate applies the rest and lists the conflict in ``status.failures``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from sealed_gitops.operator.runner import OperatorThread

from .conftest import Setup, is_ready, ready, wait_for
from .manifests import config_doc, secret_doc

pytestmark = pytest.mark.e2e

OperatorFactory = Callable[..., OperatorThread]
SYNC_NAME_LABEL = "sealed-gitops.io/sync-name"


def _owner(setup: Setup, name: str) -> str | None:
    live = setup.kube.secret(name) or {}
    return ((live.get("metadata") or {}).get("labels") or {}).get(SYNC_NAME_LABEL)


def _second_sync(setup: Setup, *, name: str, path: str, policy: str) -> None:
    setup.kube.create(
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Sync",
            "metadata": {"name": name, "namespace": setup.namespace},
            "spec": {
                "repositoryRef": {"name": "app"},
                "path": path,
                "interval": "1s",
                "retryInterval": "1s",
                "prune": True,
                "failurePolicy": policy,
                "decryption": {"secretRef": {"name": "sops-keys"}},
            },
        }
    )


def _events(setup: Setup, sync: str, reason: str) -> list[dict[str, Any]]:
    return [
        e
        for e in setup.kube.events()
        if e.get("reason") == reason and (e.get("involvedObject") or {}).get("name") == sync
    ]


def _push_shared(setup: Setup) -> None:
    ns = setup.namespace
    shared = setup.encrypt(secret_doc("shared", ns, password="shared-value-1"))
    setup.push(
        {
            "deploy/shared.yaml": shared,
            "other/shared.yaml": shared,
            "other/own.yaml": config_doc("b-own", ns, level="info"),
        }
    )


def _conflicted(setup: Setup, name: str) -> dict[str, Any] | None:
    cond = ready(setup.kube.sync(name))
    if cond and cond["status"] == "False" and cond["reason"] == "OwnershipConflict":
        return cond
    return None


@pytest.mark.parametrize("policy", ["Atomic", "Isolate"])
def test_the_second_sync_is_refused_and_its_deletion_prunes_nothing_it_does_not_own(
    setup: Setup, operator_factory: OperatorFactory, policy: str
) -> None:
    ns = setup.namespace
    _push_shared(setup)
    setup.objects()
    operator_factory(ns)
    wait_for(
        lambda: is_ready(setup.kube.sync()) and setup.kube.status().get("inventory"),
        what="Sync app Ready with an inventory",
    )
    assert _owner(setup, "shared") == "app"
    _second_sync(setup, name="other", path="./other", policy=policy)

    cond = wait_for(lambda: _conflicted(setup, "other"), what="other: OwnershipConflict")
    assert f"{ns}/app" in cond["message"] and "shared" in cond["message"]
    wait_for(lambda: _events(setup, "other", "OwnershipConflict"), what="Event on other")
    [on_owner] = wait_for(
        lambda: _events(setup, "app", "OwnershipConflict"), what="Event on the owner"
    )
    assert f"{ns}/other" in on_owner["message"] and "shared" in on_owner["message"]

    status = setup.kube.status("other")
    if policy == "Isolate":
        # the rest of the Sync is applied; the conflict is listed like a failed document
        wait_for(
            lambda: setup.kube.get(f"/api/v1/namespaces/{ns}/configmaps/b-own"),
            what="b-own applied under Isolate",
        )
        [failure] = status["failures"]
        assert failure["object"] == f"Secret {ns}/shared"  # as failed documents name it
        assert failure["file"] == "other/shared.yaml"
        assert f"{ns}/app" in failure["reason"]
    else:
        # Atomic: a conflict is known before anything is written, so nothing of the Sync is
        assert setup.kube.get(f"/api/v1/namespaces/{ns}/configmaps/b-own") is None
        assert not status.get("failures")

    # no fight: several reconciles later the owner is unchanged, still Ready, and the owner
    # got no new Applied Event
    applied_before = len(_events(setup, "app", "Applied"))
    time.sleep(3.5)
    assert _owner(setup, "shared") == "app"
    assert is_ready(setup.kube.sync())
    assert len(_events(setup, "app", "Applied")) == applied_before
    assert len(_events(setup, "other", "OwnershipConflict")) == 1  # not one per reconcile

    # deleting the second Sync never prunes the object it does not own
    setup.kube.delete(setup.kube.sync_path("other"))
    wait_for(lambda: setup.kube.get(setup.kube.sync_path("other")) is None, what="other gone")
    assert _owner(setup, "shared") == "app"
    if policy == "Isolate":
        assert setup.kube.get(f"/api/v1/namespaces/{ns}/configmaps/b-own") is None


def test_a_stale_owner_is_adopted_once_its_sync_is_gone(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    ns = setup.namespace
    _push_shared(setup)
    setup.objects(prune=False)  # deleting it leaves its objects, labelled with its name
    operator_factory(ns)
    wait_for(lambda: is_ready(setup.kube.sync()), what="Sync app Ready")
    _second_sync(setup, name="other", path="./other", policy="Atomic")
    wait_for(lambda: _conflicted(setup, "other"), what="other: OwnershipConflict")

    setup.kube.delete(setup.kube.sync_path("app"))
    wait_for(lambda: is_ready(setup.kube.sync("other")), what="other Ready after adoption")
    assert _owner(setup, "shared") == "other"
    assert setup.kube.get(f"/api/v1/namespaces/{ns}/configmaps/b-own") is not None
