"""The only package that talks to the Kubernetes API: apply, prune, live state, events.

Everything else in the project is kept free of the ``kubernetes`` client (``.importlinter``);
the operator and the CLI's ``diff`` call the functions below. Planning (ids, inventory, order,
change sets, digests, diffs) is pure and lives in :mod:`sealed_gitops.plan`; this package reads
the cluster, carries a plan out and reports per object, with every API failure mapped to the
:class:`~sealed_gitops.errors.ClusterError` family and every message redacted.

Entry points::

    client = connect(kubeconfig, identity=Identity.service_account(ns, sa))
    result = apply(client, objects, sync=SyncRef(ns, name), revision=rev, recorded=previous,
                   claims=still_claims)  # ownership conflicts: conflicts.py; drift: drift.py
    pruned = prune(client, previous=old_inventory, current=result.inventory, sync=...)
    live = read_live(client, Discovery(client), inventory.entries, sync=...)
    record_event(client, involved=sync_object, reason="Progressing", message=...)
"""

from __future__ import annotations

from sealed_gitops.cluster.applier import Desired, apply, prepare_desired, wait_established
from sealed_gitops.cluster.client import DEFAULT_TIMEOUT, Identity, KubeClient, connect
from sealed_gitops.cluster.conflicts import Claims, owner_of
from sealed_gitops.cluster.discovery import Discovery, Resource
from sealed_gitops.cluster.drift import Drift
from sealed_gitops.cluster.events import EventType, event_time, record_event
from sealed_gitops.cluster.live import read_live
from sealed_gitops.cluster.outcomes import ApplyResult, ObjectOutcome, Policy, Result
from sealed_gitops.cluster.ownership import (
    AUTHOR_ANNOTATION,
    COMMIT_ANNOTATION,
    FIELD_MANAGER,
    SOURCE_PATH_ANNOTATION,
    SYNC_ANNOTATION,
    SYNC_NAME_LABEL,
    SYNC_NAMESPACE_LABEL,
    SyncRef,
)
from sealed_gitops.cluster.pruner import Pruned, PruneOutcome, PruneResult, prune

__all__ = [
    "AUTHOR_ANNOTATION",
    "COMMIT_ANNOTATION",
    "DEFAULT_TIMEOUT",
    "FIELD_MANAGER",
    "SOURCE_PATH_ANNOTATION",
    "SYNC_ANNOTATION",
    "SYNC_NAMESPACE_LABEL",
    "SYNC_NAME_LABEL",
    "ApplyResult",
    "Claims",
    "Desired",
    "Discovery",
    "Drift",
    "EventType",
    "Identity",
    "KubeClient",
    "ObjectOutcome",
    "Policy",
    "PruneOutcome",
    "PruneResult",
    "Pruned",
    "Resource",
    "Result",
    "SyncRef",
    "apply",
    "connect",
    "event_time",
    "owner_of",
    "prepare_desired",
    "prune",
    "read_live",
    "record_event",
    "wait_established",
]
