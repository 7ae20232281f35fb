"""Events on the Sync: written to the API with reason and type, and never carrying a value."""

from __future__ import annotations

import secrets

import pytest

from sealed_gitops.cluster import EventType, KubeClient, record_event
from sealed_gitops.redact import MASK, register

pytestmark = pytest.mark.e2e


def _involved(kube: KubeClient, namespace: str) -> dict[str, object]:
    """Stands in for the Sync (its CRD belongs to the operator's area): any object will do."""
    return kube.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                        body={"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "sync-standin"}},
                        action="create", what="ConfigMap")


def _events(kube: KubeClient, namespace: str) -> list[dict[str, object]]:
    listed = kube.request("GET", f"/api/v1/namespaces/{namespace}/events", action="list",
                          what="events")
    return list(listed.get("items") or [])


@pytest.mark.parametrize("kind", [EventType.NORMAL, EventType.WARNING])
def test_event_is_recorded_on_the_involved_object(
    kube: KubeClient, namespace: str, kind: EventType
) -> None:
    involved = _involved(kube, namespace)
    involved.setdefault("apiVersion", "v1")
    involved.setdefault("kind", "ConfigMap")
    record_event(kube, involved=involved, reason="Progressing",
                 message="update Secret a/db (changed: password)", type=kind)
    (event,) = _events(kube, namespace)
    assert event["reason"] == "Progressing"
    assert event["type"] == kind.value
    assert event["message"] == "update Secret a/db (changed: password)"
    ref = event["involvedObject"]
    assert isinstance(ref, dict)
    assert (ref["kind"], ref["name"], ref["uid"]) == (
        "ConfigMap", "sync-standin", involved["metadata"]["uid"])  # type: ignore[index]


def test_canary_never_reaches_an_event(kube: KubeClient, namespace: str) -> None:
    canary = f"canary-{secrets.token_hex(12)}"
    register(canary)
    involved = _involved(kube, namespace)
    involved.update(apiVersion="v1", kind="ConfigMap")
    record_event(kube, involved=involved, reason="ApplyFailed", type=EventType.WARNING,
                 message=f"apply Secret a/db failed: value {canary} refused")
    (event,) = _events(kube, namespace)
    assert canary not in str(event)
    assert MASK in str(event["message"])


def test_long_messages_are_cut_to_the_api_limit(kube: KubeClient, namespace: str) -> None:
    involved = _involved(kube, namespace)
    involved.update(apiVersion="v1", kind="ConfigMap")
    record_event(kube, involved=involved, reason="Progressing", message="é" * 2000)
    (event,) = _events(kube, namespace)
    assert len(str(event["message"]).encode("utf-8")) <= 1024
