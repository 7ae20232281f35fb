"""Take a Secret over from the Sealed Secrets controller: drop the owner link it left behind.

Why this module exists: Bitnami's controller makes each Secret with an ``ownerReference`` to the
SealedSecret it opened (``controller: true``). When our operator applies the same sealed file from
Git, server-side apply makes every field we send ours, but it cannot remove a list entry another
field manager wrote, so the link stays. Once Sealed Secrets is uninstalled (its SealedSecret
objects deleted, the usual cascade), the garbage collector follows that link and deletes the Secret
we now manage; the next reconcile makes it again under a new uid, and every consumer sees the
Secret vanish in between. Found by the handover test against the real controller
(``tests/peers/test_handover.py``).

So after writing a core Secret, an owner reference to a SealedSecret (group ``bitnami.com``) is
removed with a JSON patch guarded by a ``test`` of its uid (if the controller changed the list
meanwhile, the patch fails and the next reconcile tries again). Only that kind of owner is dropped:
an owner reference to anything else was put there by someone on purpose and stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sealed_gitops.cluster.client import KubeClient
from sealed_gitops.cluster.discovery import Resource
from sealed_gitops.plan.ids import ObjectId

__all__ = ["JSON_PATCH", "SEALED_SECRETS_GROUP", "release_sealed_secret_owner", "sealed_owners"]

JSON_PATCH = "application/json-patch+json"
SEALED_SECRETS_GROUP = "bitnami.com"


def sealed_owners(obj: Mapping[str, Any]) -> list[tuple[int, str]]:
    """(index, uid) of each owner reference of ``obj`` that points at a Bitnami SealedSecret."""
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    found = []
    for index, owner in enumerate(owners):
        if not isinstance(owner, Mapping):
            continue
        group = str(owner.get("apiVersion", "")).partition("/")[0]
        if owner.get("kind") == "SealedSecret" and group == SEALED_SECRETS_GROUP:
            found.append((index, str(owner.get("uid", ""))))
    return found


def release_sealed_secret_owner(
    client: KubeClient,
    resource: Resource,
    written: Mapping[str, Any],
    oid: ObjectId,
) -> str | None:
    """Remove SealedSecret owner references from the Secret just ``written`` (the API's answer).

    Returns the new resourceVersion, or None when there was nothing to remove. A failure raises
    ClusterError like any write, so the caller records it as this object's failure.
    """
    owners = sealed_owners(written)
    if not owners:
        return None
    ops: list[dict[str, Any]] = []
    # highest index first, so each removal leaves the earlier indexes where they were
    for index, uid in sorted(owners, reverse=True):
        path = f"/metadata/ownerReferences/{index}"
        ops.append({"op": "test", "path": f"{path}/uid", "value": uid})
        ops.append({"op": "remove", "path": path})
    answer = client.request(
        "PATCH",
        resource.path(namespace=oid.namespace, name=oid.name),
        body=ops,
        content_type=JSON_PATCH,
        action="release the SealedSecret owner of",
        what=oid.describe(),
        sensitive=True,
    )
    return str((answer.get("metadata") or {}).get("resourceVersion", ""))
