"""The ``scale`` subresource of Deployments and StatefulSets (what ``kubectl scale`` patches).

A real server presents ``spec.replicas`` of the parent as an ``autoscaling/v1`` ``Scale`` object and
writes changes to it back to the parent; the emulator does the same, so the parent's generation,
resourceVersion and managedFields move exactly as if its ``spec.replicas`` had been patched.
"""

from __future__ import annotations

from typing import Any

from sealed_gitops.testing.kube.objects import Objects
from sealed_gitops.testing.kube.patch import (
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_patch,
)
from sealed_gitops.testing.kube.resources import ResourceType
from sealed_gitops.testing.kube.status import bad_request, conflict, unsupported_media_type

__all__ = ["get_scale", "write_scale"]

_PATCHES = {
    "application/json-patch+json": apply_json_patch,
    "application/merge-patch+json": apply_merge_patch,
    "application/strategic-merge-patch+json": apply_strategic_patch,
}


def _selector(obj: dict[str, Any]) -> str:
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _as_scale(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": int((obj.get("spec") or {}).get("replicas", 1))},
        "status": {
            "replicas": int((obj.get("status") or {}).get("replicas", 0)),
            "selector": _selector(obj),
        },
    }


def get_scale(objects: Objects, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
    return _as_scale(objects.get(rt, namespace, name))


def write_scale(
    objects: Objects,
    rt: ResourceType,
    namespace: str,
    name: str,
    *,
    method: str,
    content_type: str,
    body: Any,
    dry_run: bool,
    manager: str,
) -> dict[str, Any]:
    """PUT or PATCH of a Scale: the new replica count goes to the parent's ``spec.replicas``."""
    current = get_scale(objects, rt, namespace, name)
    if method == "PUT":
        wanted = body
    else:
        patcher = _PATCHES.get(content_type)
        if patcher is None:
            raise unsupported_media_type(content_type, list(_PATCHES))
        wanted = patcher(current, body)
    if not isinstance(wanted, dict):
        raise bad_request("the request body is not a Scale object")
    rv = (wanted.get("metadata") or {}).get("resourceVersion")
    if rv and rv != current["metadata"]["resourceVersion"]:
        raise conflict(
            rt.group,
            rt.plural,
            name,
            "the object has been modified; please apply your changes to the latest version and "
            "try again",
        )
    replicas = (wanted.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise bad_request("spec.replicas must be a non-negative integer")
    parent = objects.patch(
        rt,
        namespace,
        name,
        "application/merge-patch+json",
        {"spec": {"replicas": replicas}},
        dry_run=dry_run,
        manager=manager,
        force=False,
    )
    return _as_scale(parent)
