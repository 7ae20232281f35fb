"""Ownership conflicts between Syncs, as the operator sees them: who claims what, who is told.

Why a module of its own: :mod:`sealed_gitops.cluster.conflicts` decides which objects another
Sync owns, but whether that other Sync still *claims* an object (it exists, is not being deleted,
and lists the object in its inventory) can only be read with the operator's own client: the
identity a Sync applies as (its ServiceAccount) may not read Syncs at all. And a conflict concerns
two Syncs, so both are told with an Event: the one refused (by its status) and the owner, whose
users would otherwise not know another Sync renders the same object.
"""

from __future__ import annotations

import logging
from typing import Any

from sealed_gitops.cluster import ApplyResult, Claims, EventType, SyncRef, record_event
from sealed_gitops.errors import ClusterError, OwnershipConflict
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.resources import get_object
from sealed_gitops.plan import Inventory
from sealed_gitops.plan.ids import ObjectId
from sealed_gitops.redact import Identity, compose

__all__ = ["claims_of", "conflict_lines", "tell_owners"]

log = logging.getLogger("sealed_gitops.operator.sync")


def claims_of(ctx: OperatorContext) -> Claims:
    """A ``claims(owner, oid)`` for one reconcile: each owner Sync is read once (a failed read
    too: its other objects are not asked for again while the API fails)."""
    seen: dict[SyncRef, Inventory | None] = {}
    unreadable: set[SyncRef] = set()

    def claims(owner: SyncRef, oid: ObjectId) -> bool:
        if owner in unreadable:
            return True
        if owner not in seen:
            try:
                found = get_object(ctx.client, "Sync", owner.namespace, owner.name)
            except ClusterError as exc:
                # Cannot tell whether it still claims the object: do not take it away.
                log.warning("cannot read Sync %s to check ownership: %s", owner, exc)
                unreadable.add(owner)
                return True
            meta = (found or {}).get("metadata") or {}
            gone = found is None or bool(meta.get("deletionTimestamp"))
            status = (found or {}).get("status") or {}
            seen[owner] = None if gone else Inventory.from_status(status.get("inventory"))
        inventory = seen[owner]
        return inventory is not None and oid in inventory

    return claims


def conflict_lines(applied: ApplyResult, sources: dict[ObjectId, str]) -> list[dict[str, Any]]:
    """``status.failures`` entries for the conflicts (the Isolate policy lists what it left out)."""
    return [
        {
            "file": sources.get(o.id),
            "index": None,
            "object": o.id.describe(),
            "reason": str(o.error),
        }
        for o in applied.conflicts
    ]


def tell_owners(ctx: OperatorContext, sync: dict[str, Any], applied: ApplyResult) -> None:
    """A Warning Event on each owner Sync naming the Sync that also renders its objects."""
    meta = sync.get("metadata") or {}
    me = f"{meta.get('namespace')}/{meta.get('name')}"
    by_owner: dict[str, list[str]] = {}
    for outcome in applied.conflicts:
        if isinstance(outcome.error, OwnershipConflict):
            by_owner.setdefault(outcome.error.owner, []).append(outcome.id.describe())
    for owner, objects in sorted(by_owner.items()):
        namespace, _, name = owner.partition("/")
        try:
            found = get_object(ctx.client, "Sync", namespace, name)
            if found is None:
                continue
            parts: list[str] = ["Sync ", Identity(me), " also renders "]
            for index, what in enumerate(objects):
                parts += [", " if index else "", Identity(what)]
            parts.append("; this Sync owns them and keeps applying them")
            record_event(
                ctx.client,
                involved=found,
                reason=OwnershipConflict.code,
                message=compose(*parts),
                type=EventType.WARNING,
            )
        except ClusterError as exc:
            log.warning("cannot tell Sync %s about the conflict: %s", owner, exc)
