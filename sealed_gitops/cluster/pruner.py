"""Deleting what left the inventory, in reverse apply order, and only what is still ours.

Why this module exists: prune is the one operation that destroys, so it is guarded three ways.

1. **Precondition (the caller's duty):** call :func:`prune` only after the new revision rendered,
   decrypted and applied completely. An error while rendering must never make objects look
   "removed from Git"; the pipeline skips prune on any earlier failure (issue 6, item 3). With the
   Isolate policy, merge the previous inventory's entries for the failed documents into the new
   inventory first, so a failing document is not pruned.
2. **Protection:** a live object annotated ``sealed-gitops.io/prune: disabled`` is kept.
3. **Ownership:** a live object that no longer carries this Sync's labels (adopted by someone
   else, or re-labelled by hand) is kept.

Deletion runs in reverse apply order: namespaced objects before their Namespace, custom resources
before their CRD, so a deletion never cascades into objects we were going to report on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sealed_gitops.cluster.client import KubeClient
from sealed_gitops.cluster.discovery import Discovery
from sealed_gitops.cluster.live import api_version_of, read_object
from sealed_gitops.cluster.ownership import SyncRef, prune_disabled
from sealed_gitops.errors import ApiNotFound, ClusterError
from sealed_gitops.plan.ids import Inventory, InventoryEntry, ObjectId
from sealed_gitops.plan.order import order_key

__all__ = ["PruneOutcome", "PruneResult", "Pruned", "prune"]


class Pruned(StrEnum):
    DELETED = "deleted"
    GONE = "gone"  # already absent: nothing to do
    PROTECTED = "protected"  # sealed-gitops.io/prune: disabled
    NOT_OWNED = "not-owned"  # live object no longer labelled as this Sync's
    FAILED = "failed"


@dataclass(frozen=True)
class PruneOutcome:
    id: ObjectId
    result: Pruned
    error: ClusterError | None = None

    def describe(self) -> str:
        text = f"prune {self.id.describe()}: {self.result.value}"
        return f"{text}: {self.error}" if self.error is not None else text


@dataclass(frozen=True)
class PruneResult:
    outcomes: tuple[PruneOutcome, ...]

    def _count(self, result: Pruned) -> int:
        return sum(1 for o in self.outcomes if o.result is result)

    @property
    def deleted(self) -> int:
        return self._count(Pruned.DELETED)

    @property
    def failed(self) -> int:
        return self._count(Pruned.FAILED)

    @property
    def kept(self) -> tuple[ObjectId, ...]:
        return tuple(
            o.id for o in self.outcomes if o.result in (Pruned.PROTECTED, Pruned.NOT_OWNED)
        )

    @property
    def ok(self) -> bool:
        return not self.failed


def _reverse_apply_order(
    entries: list[InventoryEntry], discovery: Discovery
) -> list[InventoryEntry]:
    versions = {e.id: e.version for e in entries}

    def is_cluster_scoped(oid: ObjectId) -> bool:
        resource = discovery.find(api_version_of(oid, versions[oid]), oid.kind)
        return (not resource.namespaced) if resource is not None else not oid.namespace

    # Reverse apply order: namespaced objects before their Namespace, CRs before their CRDs.
    ordered = sorted(entries, key=lambda e: order_key(e.id, is_cluster_scoped=is_cluster_scoped))
    return ordered[::-1]


def prune(
    client: KubeClient,
    *,
    previous: Inventory,
    current: Inventory,
    sync: SyncRef,
    discovery: Discovery | None = None,
) -> PruneResult:
    """Delete the objects of ``previous`` that are not in ``current`` (see the module docstring).

    Precondition: the render of the revision that produced ``current`` fully succeeded. Every
    candidate gets an outcome; one failed deletion does not stop the others.
    """
    discovery = discovery or Discovery(client)
    outcomes: list[PruneOutcome] = []
    for entry in _reverse_apply_order(previous.diff(current), discovery):
        oid = entry.id
        try:
            resource = discovery.find(api_version_of(oid, entry.version), oid.kind)
            if resource is None:  # its CRD is gone, and with it every object of the kind
                outcomes.append(PruneOutcome(oid, Pruned.GONE))
                continue
            live = read_object(client, resource, oid)
            if live is None:
                outcomes.append(PruneOutcome(oid, Pruned.GONE))
            elif prune_disabled(live):
                outcomes.append(PruneOutcome(oid, Pruned.PROTECTED))
            elif not sync.owns(live):
                outcomes.append(PruneOutcome(oid, Pruned.NOT_OWNED))
            else:
                uid = str((live.get("metadata") or {}).get("uid", ""))
                body = {
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "propagationPolicy": "Background",
                }
                if uid:
                    # Delete exactly the object we inspected, not one re-created since.
                    body["preconditions"] = {"uid": uid}  # type: ignore[assignment]
                client.request(
                    "DELETE",
                    resource.path(namespace=oid.namespace, name=oid.name),
                    body=body,
                    action="prune",
                    what=oid.describe(),
                )
                outcomes.append(PruneOutcome(oid, Pruned.DELETED))
        except ApiNotFound:
            outcomes.append(PruneOutcome(oid, Pruned.GONE))
        except ClusterError as exc:
            outcomes.append(PruneOutcome(oid, Pruned.FAILED, exc))
    return PruneResult(tuple(outcomes))
