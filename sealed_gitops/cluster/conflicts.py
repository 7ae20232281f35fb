"""Which desired objects another Sync already owns: the first owner keeps them (issue 15, Must 2).

Why this module exists: two Syncs that render the same object used to take turns writing it, each
apply moving the ownership labels to itself, both Ready, an "Applied" Event every time, and
whichever was deleted pruned the shared object. The rule now: the object belongs to the Sync whose
labels the live object carries, for as long as that Sync exists and lists the object in its
inventory. Any other Sync that renders it leaves it alone and reports an
:class:`~sealed_gitops.errors.OwnershipConflict` for it. A *stale* owner (its Sync is gone or
being deleted, or no longer lists the object) gives the object up: the next Sync adopts it.

Whether an owner still claims an object is a question about another Sync, which the identity a
Sync applies as may not be allowed to read; so the caller (the operator, with its own client)
answers it through ``claims``. Without ``claims`` every other owner counts as claiming: when in
doubt, do not take an object away from someone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sealed_gitops.cluster.ownership import SYNC_NAME_LABEL, SYNC_NAMESPACE_LABEL, SyncRef
from sealed_gitops.errors import ConfigError, OwnershipConflict
from sealed_gitops.plan.ids import ObjectId

__all__ = ["Claims", "find_conflicts", "owner_of"]

#: ``claims(owner, oid)``: whether the Sync ``owner`` exists and lists ``oid`` in its inventory.
Claims = Callable[[SyncRef, ObjectId], bool]


def owner_of(obj: Mapping[str, Any] | None) -> SyncRef | None:
    """The Sync named by a live object's ownership labels, or None (unlabelled, or not a pair)."""
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    namespace, name = labels.get(SYNC_NAMESPACE_LABEL), labels.get(SYNC_NAME_LABEL)
    if not namespace or not name:
        return None
    try:
        return SyncRef(str(namespace), str(name))
    except ConfigError:
        return None  # labels nobody of ours could have written: not a Sync's


def find_conflicts(
    live: Mapping[ObjectId, Mapping[str, Any]],
    ids: Iterable[ObjectId],
    *,
    sync: SyncRef,
    claims: Claims | None,
) -> dict[ObjectId, OwnershipConflict]:
    """The ids among ``ids`` whose live object another Sync owns and still claims."""
    conflicts: dict[ObjectId, OwnershipConflict] = {}
    for oid in ids:
        current = live.get(oid)
        labels = ((current or {}).get("metadata") or {}).get("labels") or {}
        if (
            labels.get(SYNC_NAME_LABEL) == sync.name
            and labels.get(SYNC_NAMESPACE_LABEL) == sync.namespace
        ):
            continue  # our own labels, the common case: no owner to parse and check
        owner = owner_of(current)
        if owner is None or owner == sync:
            continue
        if claims is not None and not claims(owner, oid):
            continue  # a stale owner: adopt it
        conflicts[oid] = OwnershipConflict(
            f"{oid.describe()} is already applied by Sync {owner}, which lists it in its "
            f"inventory; Sync {sync} leaves it to that Sync (remove it from one of the two)",
            owner=str(owner),
        )
    return conflicts
