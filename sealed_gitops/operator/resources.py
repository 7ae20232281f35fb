"""Reading and writing the operator's own objects and the Secrets they point at.

Why here and not in cluster/: these are the operator's conventions (which group and version its
kinds live in, that status goes through the status subresource as a merge patch, that a referenced
Secret must be in the referrer's namespace), built on the one request method of
:class:`~sealed_gitops.cluster.KubeClient`, so nothing here imports the kubernetes client.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sealed_gitops.cluster import KubeClient
from sealed_gitops.errors import ApiNotFound, ConfigError
from sealed_gitops.plan import names
from sealed_gitops.plan.names import segment
from sealed_gitops.redact import register

__all__ = [
    "DIFF_REQUESTED",
    "GROUP",
    "PLURALS",
    "REQUESTED_AT",
    "VERSION",
    "annotate_now",
    "get_object",
    "list_objects",
    "object_path",
    "patch_metadata",
    "patch_status",
    "read_secret_data",
    "request_reconcile",
    "requested_at",
    "secret_path",
    "update_status",
]

GROUP = "sealed-gitops.io"
VERSION = "v1alpha1"
PLURALS = {"Repository": "repositories", "Sync": "syncs", "KeyRing": "keyrings"}

#: Annotation whose change asks for a reconcile now (as Flux's reconcile.fluxcd.io/requestedAt);
#: the Sync echoes the value it handled in ``status.lastHandledReconcileAt``.
REQUESTED_AT = "sealed-gitops.io/requested-at"

#: Annotation whose change asks the operator for a key-by-key diff of a Sync (``diff
#: --in-cluster``); the answer in ``status.diff`` echoes it as ``requestedAt``
#: (:mod:`sealed_gitops.operator.diff_request`).
DIFF_REQUESTED = "sealed-gitops.io/diff-requested"


def requested_at(obj: Mapping[str, Any]) -> str | None:
    """The object's requested-at annotation, if any."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REQUESTED_AT)
    return str(value) if value else None


def request_reconcile(client: KubeClient, kind: str, namespace: str, name: str) -> str:
    """Set the requested-at annotation to now and return the value written.

    Whichever replica leads wakes on the change (its kopf update handler), so this reaches the
    reconcile loop from anywhere: the CLI, or a webhook answered by a standby replica.
    Microseconds: two requests within one second must still differ, or the second one would
    not change the object and wake nothing.
    """
    return annotate_now(client, kind, namespace, name, annotation=REQUESTED_AT)


def annotate_now(
    client: KubeClient, kind: str, namespace: str, name: str, *, annotation: str
) -> str:
    """Set ``annotation`` to the current time (microseconds) and return the value written: how
    a request reaches the leading replica's kopf update handler (reconcile, diff)."""
    value = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    patch_metadata(client, kind, namespace, name, {"annotations": {annotation: value}})
    return value


def object_path(kind: str, namespace: str, name: str = "") -> str:
    """The API path of one of our objects, or of their list in ``namespace``.

    Every name is checked as what Kubernetes admits and each segment quoted (``plan/names``):
    a name such as ``../../team-a/keyrings/x`` must not become another namespace's path once an
    HTTP client normalises it (issue 11, finding 1).
    """
    ns = segment(names.namespace(namespace, field=f"{kind} namespace"))
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURALS[kind]}"
    if not name:
        return base
    return f"{base}/{segment(names.object_name(name, field=f'{kind} name'))}"


def secret_path(namespace: str, name: str) -> str:
    """The API path of Secret ``namespace/name``, checked and quoted as :func:`object_path`."""
    ns = segment(names.namespace(namespace, field="Secret namespace"))
    checked = segment(names.object_name(name, field="Secret name"))
    return f"/api/v1/namespaces/{ns}/secrets/{checked}"


def get_object(client: KubeClient, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    try:
        return client.request(
            "GET",
            object_path(kind, namespace, name),
            action="get",
            what=f"{kind} {namespace}/{name}",
        )
    except ApiNotFound:
        return None


def list_objects(
    client: KubeClient, kind: str, namespace: str | None = None
) -> list[dict[str, Any]]:
    path = object_path(kind, namespace) if namespace else f"/apis/{GROUP}/{VERSION}/{PLURALS[kind]}"
    answer = client.request("GET", path, action="list", what=PLURALS[kind])
    return list(answer.get("items") or [])


def patch_status(
    client: KubeClient, kind: str, namespace: str, name: str, status: Mapping[str, Any]
) -> dict[str, Any]:
    """Merge-patch the status subresource (lists such as conditions are replaced whole)."""
    return client.request(
        "PATCH",
        object_path(kind, namespace, name) + "/status",
        body={"status": dict(status)},
        content_type="application/merge-patch+json",
        action="update status of",
        what=f"{kind} {namespace}/{name}",
    )


def update_status(
    client: KubeClient, kind: str, obj: Mapping[str, Any], status: Mapping[str, Any]
) -> None:
    """The end of a reconcile: patch ``status`` onto ``obj`` only if it changes a field.

    The requested-at value ``obj`` carries is echoed as ``lastHandledReconcileAt``, so that
    ``sealed-gitops reconcile --wait`` knows its request was handled. A reconcile that changed
    nothing writes nothing (issue 6).
    """
    new = dict(status)
    handled = requested_at(obj)
    if handled:
        new["lastHandledReconcileAt"] = handled
    before = obj.get("status") or {}
    if new != {k: before.get(k) for k in new}:
        meta = obj["metadata"]
        patch_status(client, kind, meta["namespace"], meta["name"], new)


def patch_metadata(
    client: KubeClient, kind: str, namespace: str, name: str, metadata: Mapping[str, Any]
) -> dict[str, Any]:
    return client.request(
        "PATCH",
        object_path(kind, namespace, name),
        body={"metadata": dict(metadata)},
        content_type="application/merge-patch+json",
        action="annotate",
        what=f"{kind} {namespace}/{name}",
    )


def read_secret_data(
    client: KubeClient, namespace: str, name: str, *, purpose: str
) -> tuple[dict[str, bytes], str]:
    """The decoded data of a Secret in ``namespace`` and its resourceVersion.

    Every value is registered with the redaction layer: these are keys and tokens. A missing
    Secret is a configuration error that names what it was needed for.
    """
    try:
        secret = client.request(
            "GET",
            secret_path(namespace, name),
            action="read",
            what=f"Secret {namespace}/{name}",
            sensitive=True,
        )
    except ApiNotFound as exc:
        raise ConfigError(f"Secret {namespace}/{name} ({purpose}) not found") from exc
    data: dict[str, bytes] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            data[key] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(f"Secret {namespace}/{name}: entry {key} is not base64") from exc
        register(data[key])
    for key, value in (secret.get("stringData") or {}).items():
        data[key] = str(value).encode()
        register(data[key])
    version = str((secret.get("metadata") or {}).get("resourceVersion", ""))
    return data, version
