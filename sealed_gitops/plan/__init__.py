"""Pure planning: object ids, inventory diff, change sets, redacted diffs.

Nothing here does I/O: the cluster layer fetches live objects and carries a plan out.
"""

from __future__ import annotations

from sealed_gitops.plan.changes import (
    PRUNE_ANNOTATION,
    Change,
    ChangeSet,
    KeyChange,
    ObjectChange,
    digest,
    plan_changes,
    secret_key_changes,
)
from sealed_gitops.plan.diff import object_diff
from sealed_gitops.plan.ids import Inventory, InventoryEntry, ObjectId, split_api_version
from sealed_gitops.plan.order import Stage, apply_order, apply_stages, order_key

__all__ = [
    "PRUNE_ANNOTATION",
    "Change",
    "ChangeSet",
    "Inventory",
    "InventoryEntry",
    "KeyChange",
    "ObjectChange",
    "ObjectId",
    "Stage",
    "apply_order",
    "apply_stages",
    "digest",
    "object_diff",
    "order_key",
    "plan_changes",
    "secret_key_changes",
    "split_api_version",
]
