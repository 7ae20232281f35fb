"""What deleting a Sync does to the objects it applied: ``spec.deletionPolicy``, Flux's values.

Why a module: deletion is the one moment a Sync destroys everything it owns at once, so the rule
is spelled out in one place. Nothing is deleted when the Sync is suspended or has no inventory
(as Flux does); otherwise:

- ``MirrorPrune`` (the default): delete when ``spec.prune`` is on, keep when it is off.
- ``Delete``: delete whatever ``spec.prune`` says.
- ``WaitForTermination``: delete, then hold the Sync's finalizer until every deleted object is
  gone (finalizers of their own, foreground deletion of dependents). Each attempt waits up to
  ``spec.timeout``; while objects remain, the attempt fails and is retried, so the Sync stays
  until they are gone. (Flux gives up after the timeout and lets the Sync go; here the brief of
  the policy, "wait for termination", holds.)
- ``Orphan``: keep everything.

Deleting goes through :func:`sealed_gitops.cluster.prune`, so its guards hold here too: an object
annotated ``sealed-gitops.io/prune: disabled``, or no longer labelled as this Sync's (another
Sync owns it), is kept whatever the policy.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sealed_gitops.cluster import Discovery, KubeClient, Pruned, SyncRef, prune
from sealed_gitops.cluster.live import api_version_of, read_object
from sealed_gitops.errors import ClusterError, ConfigError
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.remote import target_cluster
from sealed_gitops.operator.specs import SyncSpec
from sealed_gitops.plan import Inventory, InventoryEntry, ObjectId

__all__ = ["finalize_sync"]

log = logging.getLogger(__name__)

#: Seconds between two looks at the objects being terminated.
POLL = 1.0


def _deletes(parsed: SyncSpec) -> bool:
    if parsed.suspend:
        return False
    policy = parsed.deletion_policy
    return policy in ("Delete", "WaitForTermination") or (policy == "MirrorPrune" and parsed.prune)


def finalize_sync(ctx: OperatorContext, sync: dict[str, Any]) -> int:
    """On deletion of a Sync: apply its deletion policy to its inventory; the number deleted.

    Raises ClusterError while a deletion failed or (WaitForTermination) objects remain, so the
    caller retries and the finalizer stays.
    """
    meta = sync.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    try:
        parsed = SyncSpec.parse(sync)
    except ConfigError as exc:
        # Never destroy on a spec the operator cannot read: what it names is not trustworthy.
        log.warning(
            "Sync %s/%s deleted with an unusable spec (%s): objects kept", namespace, name, exc
        )
        ctx.forget_sync(namespace, name)
        return 0
    previous = Inventory.from_status((sync.get("status") or {}).get("inventory"))
    if not previous.entries or not _deletes(parsed):
        ctx.forget_sync(namespace, name)
        return 0
    try:
        # This cluster, or the remote one spec.kubeConfig names (remote.py).
        target = target_cluster(ctx, ctx.sync_memory(namespace, name), parsed)
    except ConfigError as exc:
        if parsed.kube_config is None:
            raise
        # The kubeconfig Secret is gone (say, its namespace is being deleted) or unusable: the
        # remote cluster cannot be reached as the Sync, and waiting would hold the Sync forever.
        log.warning(
            "Sync %s/%s deleted, its remote cluster is unreachable (%s): objects kept there",
            namespace,
            name,
            exc,
        )
        ctx.forget_sync(namespace, name)
        return 0
    client = target.client
    result = prune(
        client,
        previous=previous,
        current=Inventory(),
        sync=SyncRef(namespace, name),
        discovery=target.discovery,
    )
    if not result.ok:
        raise ClusterError("; ".join(o.describe() for o in result.outcomes if o.error))
    if parsed.deletion_policy == "WaitForTermination":
        # Deleted now or earlier (a retry finds them terminating and deletes them again).
        versions = {e.id: e for e in previous.entries}
        waiting = [versions[o.id] for o in result.outcomes if o.result is Pruned.DELETED]
        _await_termination(
            target.discovery, client, waiting, deadline=time.monotonic() + parsed.timeout
        )
    ctx.forget_sync(namespace, name)
    return result.deleted


def _await_termination(
    discovery: Discovery, client: KubeClient, entries: list[InventoryEntry], *, deadline: float
) -> None:
    """Return once none of ``entries`` exists; ClusterError naming the rest at ``deadline``."""
    remaining: list[ObjectId] = []
    while True:
        remaining = []
        for entry in entries:
            resource = discovery.find(api_version_of(entry.id, entry.version), entry.id.kind)
            if resource is not None and read_object(client, resource, entry.id) is not None:
                remaining.append(entry.id)
        if not remaining:
            return
        left = deadline - time.monotonic()
        if left <= 0 or client.halted.wait(min(POLL, left)):
            break
    shown = ", ".join(oid.describe() for oid in remaining[:10])
    more = f" and {len(remaining) - 10} more" if len(remaining) > 10 else ""
    raise ClusterError(f"deletionPolicy WaitForTermination: still terminating: {shown}{more}")
