"""Kubernetes Events on the Sync: what changed and what failed, never a value.

Why this module exists: Events are what ``kubectl describe`` shows a person, and in Flux's history
they were one of the paths values leaked by (kustomize-controller #419, #1371). Every message is
passed through :func:`sealed_gitops.redact.redact` here, at the last moment before it leaves the
process, whatever the caller already did, and only then cut to the API's size limit (a value cut
in half would no longer be recognised). A message built with :func:`sealed_gitops.redact.compose`
keeps the commit, author and object names it names as they are (invariant 8).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from sealed_gitops.cluster.client import KubeClient
from sealed_gitops.redact import cut

__all__ = ["COMPONENT", "EventType", "event_time", "record_event"]

COMPONENT = "sealed-gitops"
#: The API server refuses core/v1 Event messages longer than this many bytes.
_MAX_MESSAGE = 1024


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


def record_event(
    client: KubeClient,
    *,
    involved: Mapping[str, Any],
    reason: str,
    message: str,
    type: EventType | str = EventType.NORMAL,
    action: str = "Reconcile",
    component: str = COMPONENT,
) -> dict[str, Any]:
    """Create a core/v1 Event about ``involved`` (the Sync as read from the API) and return it.

    The Event lives in the involved object's namespace and refers to it by kind, name, uid and
    resourceVersion, so ``kubectl describe`` lists it under that object.
    """
    meta = involved.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    name = str(meta.get("name") or "")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ref = {
        "apiVersion": involved.get("apiVersion"),
        "kind": involved.get("kind"),
        "name": name,
        "namespace": namespace,
    }
    for source, target in (("uid", "uid"), ("resourceVersion", "resourceVersion")):
        if meta.get(source):
            ref[target] = meta[source]
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{secrets.token_hex(8)}", "namespace": namespace},
        "involvedObject": ref,
        "reason": reason,
        "message": cut(message, limit=_MAX_MESSAGE, unit="bytes"),
        "type": str(type),
        "action": action,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    return client.request(
        "POST",
        f"/api/v1/namespaces/{quote(namespace, safe='')}/events",
        body=event,
        action="record event on",
        what=f"{ref['kind']} {namespace}/{name}",
    )


def event_time(event: Mapping[str, Any]) -> str:
    """When an Event last happened, whichever API generation wrote it (core/v1's
    ``lastTimestamp``, events.k8s.io's ``series``/``eventTime``), for sorting and showing."""
    series = event.get("series") or {}
    return str(
        event.get("lastTimestamp")
        or series.get("lastObservedTime")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )
