"""``diff --in-cluster``: the key-by-key diff computed where the keys are, answered in status.

Why this module exists: with files encrypted only for the cluster, nobody outside it can tell
whether a change sets a Secret's key to a new value (issue 15, Must 6). The operator can: it
builds and decrypts the revision its Repository published, as a reconcile would, compares each
object with its live version, and writes the answer into the Sync's ``status.diff``. The request
is Kubernetes-style, like ``reconcile``'s requested-at: the CLI sets the annotation
:data:`DIFF_REQUESTED` (which needs only ``patch`` on Syncs), and the operator answers with
that value in ``status.diff.requestedAt``, so the CLI knows the answer is for its request.

What the answer may carry: object kinds and names, an action (create, update, prune) and key
names under added/changed/removed. Never a value, a length or a digest of a value: a digest of
a short password could be brute-forced by anyone who may read the Sync. Key names are a
tenant's to choose, so each is bounded, and so are the lists (:data:`MAX_OBJECTS`,
:data:`MAX_KEYS`); ``truncated`` says when something was left out. Nothing is applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from sealed_gitops import redact
from sealed_gitops.cluster import SyncRef, read_live
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.operator.building import build_for_sync
from sealed_gitops.operator.context import OperatorContext, SyncMemory
from sealed_gitops.operator.post_build import post_build_variables
from sealed_gitops.operator.remote import Target, target_cluster
from sealed_gitops.operator.resources import DIFF_REQUESTED, GROUP, VERSION, patch_status
from sealed_gitops.operator.specs import SyncSpec
from sealed_gitops.operator.sync import decryption_keys, published_artifact
from sealed_gitops.operator.tenancy import place_objects
from sealed_gitops.pipeline import BuildResult, FailurePolicy
from sealed_gitops.plan import Change, Inventory, InventoryEntry, ObjectId, secret_key_changes
from sealed_gitops.plan.changes import is_contained
from sealed_gitops.redact import Identity, compose, cut

__all__ = [
    "DIFF_REQUESTED",
    "MAX_KEYS",
    "MAX_KEY_NAME",
    "MAX_OBJECTS",
    "answer_diff_request",
    "pending_request",
    "register_diff_request_handler",
]

log = logging.getLogger(__name__)

#: Most objects one answer lists; a status is no place for a whole repository.
MAX_OBJECTS = 200
#: Most key names listed per verdict of one object.
MAX_KEYS = 100
#: Longest key name written (a Secret key may be 253 characters long).
MAX_KEY_NAME = 253
#: Longest error message written.
MAX_ERROR = 1024
#: Longest requested-at value echoed (the CLI writes an ISO time).
MAX_TOKEN = 64


def pending_request(sync: Mapping[str, Any]) -> str | None:
    """The Sync's diff request when it has not been answered yet."""
    annotations = (sync.get("metadata") or {}).get("annotations") or {}
    token = annotations.get(DIFF_REQUESTED)
    if not isinstance(token, str) or not token:
        return None
    # Anyone who may patch the Sync writes it: printable before it reaches the status or a
    # log line (a newline would forge a line of the text log); an ISO time stays as it is.
    token = str(compose(Identity(token[:MAX_TOKEN])))
    answered = ((sync.get("status") or {}).get("diff") or {}).get("requestedAt")
    return None if token == answered else token


def _name(text: str) -> str:
    """A key or object name as written: printable and bounded, never matched as a value."""
    return str(compose(Identity(text[:MAX_KEY_NAME])))


def _names(keys: list[str]) -> tuple[list[str], bool]:
    return [_name(k) for k in keys[:MAX_KEYS]], len(keys) > MAX_KEYS


def _entry(oid: ObjectId, action: str, keys: dict[str, list[str]]) -> tuple[dict[str, Any], bool]:
    entry: dict[str, Any] = {"kind": oid.kind, "name": _name(oid.name), "action": action}
    if oid.group:
        entry["group"] = oid.group
    if oid.namespace:
        entry["namespace"] = oid.namespace
    truncated = False
    if keys:
        shown = {}
        for verdict, names in keys.items():
            shown[verdict], cut_here = _names(sorted(names))
            truncated = truncated or cut_here
        entry["keys"] = shown
    return entry, truncated


def _secret(oid: ObjectId) -> bool:
    return oid.kind == "Secret" and oid.group == ""


def _key_verdicts(
    desired: Mapping[str, Any] | None, live: Mapping[str, Any] | None
) -> dict[str, list[str]]:
    verdicts: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    for change in secret_key_changes(desired, live):
        if change.change is not Change.UNCHANGED:
            verdicts[change.change.value].append(change.key)
    return verdicts


def _live_and_desired(
    ctx: OperatorContext,
    sync: Mapping[str, Any],
    parsed: SyncSpec,
    built: BuildResult,
    cluster: Target,
) -> tuple[dict[ObjectId, dict[str, Any]], dict[ObjectId, dict[str, Any]], list[InventoryEntry]]:
    """The placed, prepared objects; their live versions; the inventory entries left behind."""
    namespace = parsed.meta.namespace
    objects, sources = place_objects(
        ctx,
        built.objects,
        sync_namespace=namespace,
        target_namespace=parsed.target_namespace,
        service_account=parsed.service_account,
        discovery=cluster.discovery,
    )
    ref = SyncRef(namespace, parsed.meta.name)
    desired = {}
    for obj in objects:
        oid = ObjectId.of(obj)
        desired[oid] = ref.prepare(obj, source_path=sources.get(oid))
    versions = {oid: str(obj.get("apiVersion", "")) for oid, obj in desired.items()}
    inventory = Inventory.from_status((sync.get("status") or {}).get("inventory"))
    gone = [e for e in inventory.entries if e.id not in desired]
    for entry in gone:
        group = entry.id.group
        versions[entry.id] = f"{group}/{entry.version}" if group else entry.version
    live = read_live(cluster.client, cluster.discovery, versions, sync=ref)
    return live, desired, gone


def _compute(ctx: OperatorContext, sync: Mapping[str, Any]) -> dict[str, Any]:
    """The answer's revision and objects (build, place, read live, compare: nothing applied)."""
    parsed = SyncSpec.parse(dict(sync))
    namespace = parsed.meta.namespace
    spec = sync.get("spec") or {}
    artifact, published = published_artifact(ctx, parsed)
    # A memory of its own: the reconcile loop's (its keyring, caches, remote client) is
    # another thread's. The build, placement and cluster are the reconcile's own phases.
    memory = SyncMemory()
    try:
        built = build_for_sync(
            memory,
            artifact=artifact,
            spec=dict(spec),
            policy=FailurePolicy.ATOMIC,
            keys=decryption_keys(ctx, memory, parsed),
            namespace=namespace,
            target_namespace=parsed.target_namespace,
            variables=post_build_variables(
                ctx.client_as(namespace, parsed.service_account), parsed
            ),
        )
        # This cluster or the one spec.kubeConfig names; as the Sync's own identity, so the
        # answer shows only what its apply could see.
        cluster = target_cluster(ctx, memory, parsed)
        live, desired, gone = _live_and_desired(ctx, sync, parsed, built, cluster)
    finally:
        if memory.keyring is not None:
            memory.keyring.close()
        if memory.remote is not None:
            memory.remote[1].close()
    listed, truncated = _listed(live, desired, gone)
    revision = str(published.get("revision") or artifact.revision)
    return {"revision": str(compose(Identity(revision))), "objects": listed, "truncated": truncated}


def _listed(
    live: Mapping[ObjectId, Mapping[str, Any]],
    desired: Mapping[ObjectId, Mapping[str, Any]],
    gone: list[InventoryEntry],
) -> tuple[list[dict[str, Any]], bool]:
    """The objects that would change, bounded, and whether any was left out."""
    rows: list[tuple[ObjectId, str, dict[str, list[str]]]] = []
    for oid in sorted(desired):
        before, after = live.get(oid), desired[oid]
        if before is None:
            keys = _key_verdicts(after, None) if _secret(oid) else {}
            rows.append((oid, "create", keys))
        elif not is_contained(after, before):
            rows.append((oid, "update", _key_verdicts(after, before) if _secret(oid) else {}))
    for entry in gone:
        if entry.id in live:
            keys = _key_verdicts(None, live[entry.id]) if _secret(entry.id) else {}
            rows.append((entry.id, "prune", keys))
    listed, truncated = [], len(rows) > MAX_OBJECTS
    for oid, action, keys in rows[:MAX_OBJECTS]:
        shown, cut_keys = _entry(oid, action, keys)
        listed.append(shown)
        truncated = truncated or cut_keys
    return listed, truncated


def answer_diff_request(ctx: OperatorContext, sync: Mapping[str, Any]) -> dict[str, Any] | None:
    """Answer the Sync's pending diff request into ``status.diff``; the answer (None: none)."""
    token = pending_request(sync)
    if token is None:
        return None
    meta = sync.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    answer: dict[str, Any] = {"requestedAt": token}
    # As the tenant, like its reconcile loop: what this build decrypts is registered for
    # redaction in its namespace's scope, so it cannot blank another tenant's text.
    with redact.scope(namespace):
        try:
            answer.update(_compute(ctx, sync))
        except SealedGitopsError as exc:
            # Redacted, then cut: an error may quote a file, never a value (invariant 1).
            answer["error"] = cut(str(exc), limit=MAX_ERROR)
    answer["computedAt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch_status(ctx.client, "Sync", namespace, name, {"diff": answer})
    log.info("Sync %s/%s: answered diff request %s", namespace, name, token)
    return answer


def register_diff_request_handler(
    registry: kopf.OperatorRegistry,
    ctx: OperatorContext,
    *,
    when: Callable[..., bool] | None = None,
) -> None:
    """Answer diff requests when a Sync's annotation changes (called by ``build_registry``;
    ``when``: the shard filter the other handlers of our kinds use).

    No resume handler: kopf keeps the last handled state in the object, so a request made
    while no operator ran is an update to the one that starts next.
    """
    import asyncio

    @kopf.on.update(GROUP, VERSION, "syncs", registry=registry, when=when)
    async def sync_diff_requested(*, body: Any, **_: Any) -> None:
        # ``body``, not ``new``: kopf's ``new`` is the essence, without the status that says
        # whether this request was answered already.
        if pending_request(body or {}) is not None:
            # In a thread: building and decrypting must not stall kopf's event loop.
            await asyncio.to_thread(answer_diff_request, ctx, dict(body))
