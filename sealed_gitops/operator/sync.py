"""Reconcile one Sync: the pipeline's phases against the cluster, then status, Events and metrics.

Why this reads as a list: each phase is a function of its own package (source, render + decrypt in
``pipeline.build``, tenancy here, ``cluster.apply``, ``cluster.prune``); this module says in which
order they run, what a failure of each means for the Sync's conditions, and what is kept when one
fails. What is kept: everything already applied. Nothing is pruned unless the whole revision
rendered and decrypted and every object applied (invariant 3); with the Isolate policy the failing
documents are left out and their previously applied versions stay in the inventory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sealed_gitops.cluster import (
    ApplyResult,
    EventType,
    Policy,
    PruneResult,
    SyncRef,
    apply,
    prune,
    record_event,
)
from sealed_gitops.errors import (
    ClusterError,
    ConfigError,
    CryptoError,
    InputError,
    KeyProviderError,
    SealedGitopsError,
    SourceError,
    VerificationFailed,
)
from sealed_gitops.operator.building import build_for_sync
from sealed_gitops.operator.conditions import (
    READY,
    RECONCILING,
    STALLED,
    Reason,
    remove_condition,
    set_condition,
)
from sealed_gitops.operator.context import OperatorContext, SyncMemory
from sealed_gitops.operator.keyring import keyring_decryption_keys
from sealed_gitops.operator.repository import repository_source
from sealed_gitops.operator.resources import get_object, patch_status, requested_at
from sealed_gitops.operator.settings import parse_duration
from sealed_gitops.operator.tenancy import TenancyRefused, place_objects
from sealed_gitops.pipeline import BuildResult, FailurePolicy
from sealed_gitops.plan import Inventory
from sealed_gitops.redact import redact
from sealed_gitops.render.decrypt import DecryptionKeys
from sealed_gitops.source import Ref
from sealed_gitops.source import fetch as git_fetch

__all__ = ["SyncOutcome", "finalize_sync", "reconcile_sync"]

log = logging.getLogger(__name__)
audit_log = logging.getLogger("sealed_gitops.audit")

#: Lines of object changes in one Event; the rest is counted, not listed.
MAX_EVENT_LINES = 20


@dataclass(frozen=True)
class SyncOutcome:
    requeue_after: float
    result: str  # success, failure, partial, suspended


class _Dependency(SealedGitopsError):
    code = Reason.DEPENDENCY_NOT_READY


def _reason(exc: SealedGitopsError) -> str:
    if isinstance(exc, _Dependency):
        return Reason.DEPENDENCY_NOT_READY
    if isinstance(exc, VerificationFailed):
        return Reason.VERIFICATION_FAILED
    if isinstance(exc, SourceError):
        return Reason.SOURCE_FAILED
    if isinstance(exc, CryptoError | KeyProviderError):
        return Reason.DECRYPTION_FAILED
    if isinstance(exc, ClusterError):
        return Reason.APPLY_FAILED
    if isinstance(exc, TenancyRefused):
        return Reason.ACCESS_DENIED
    if isinstance(exc, ConfigError):
        return Reason.INVALID_SPEC
    if isinstance(exc, InputError) and exc.code == "NotEncrypted":
        return Reason.DECRYPTION_FAILED
    return Reason.BUILD_FAILED


def _artifact(
    ctx: OperatorContext, namespace: str, spec: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """Phase 1, source: the commit the Repository published, checked out from the cache."""
    repo_name = str((spec.get("repositoryRef") or {}).get("name") or "")
    if not repo_name:
        raise ConfigError("spec.repositoryRef.name is empty")
    repo = get_object(ctx.client, "Repository", namespace, repo_name)
    if repo is None:
        raise _Dependency(f"Repository {namespace}/{repo_name} not found")
    published = (repo.get("status") or {}).get("artifact") or {}
    if not published.get("commit"):
        raise _Dependency(f"Repository {namespace}/{repo_name} has no verified revision yet")
    source = repository_source(ctx, repo)
    artifact = git_fetch(
        source.url,
        Ref(commit=str(published["commit"])),
        source.auth,
        timeout=source.timeout,
        cache_dir=ctx.cache_dir,
        schemes=ctx.settings.allowed_schemes,
    )
    return artifact, published


def _keys(
    ctx: OperatorContext, memory: SyncMemory, namespace: str, spec: dict[str, Any]
) -> DecryptionKeys:
    decryption = spec.get("decryption") or {}
    if decryption.get("keyRingRef"):
        return keyring_decryption_keys(ctx, namespace, decryption["keyRingRef"])
    secret = (decryption.get("secretRef") or {}).get("name")
    if not secret:
        return DecryptionKeys()
    return DecryptionKeys(sops=ctx.keyring_for(memory, namespace=namespace, secret=secret))


def _failure_lines(result: BuildResult) -> list[dict[str, Any]]:
    return [
        {"file": f.file, "index": f.index, "object": f.object, "reason": redact(f.reason)}
        for f in result.failures
    ]


def _summary(lines: Iterable[str]) -> str:
    items = list(lines)
    shown = items[:MAX_EVENT_LINES]
    more = len(items) - len(shown)
    return "\n".join(shown) + (f"\n... and {more} more" if more > 0 else "")


def _audit(sync: str, published: dict[str, Any], applied: ApplyResult) -> None:
    """One JSON line per changed Secret: who committed it and which keys changed (no values)."""
    for outcome in applied.outcomes:
        change = outcome.change
        if outcome.id.kind != "Secret" or outcome.id.group or change is None:
            continue
        if outcome.result.value not in ("created", "configured"):
            continue
        keys = {k.key: k.change.value for k in change.keys if k.change.value != "unchanged"}
        audit_log.info(
            json.dumps(
                {
                    "event": "secret-applied",
                    "sync": sync,
                    "object": f"Secret/{outcome.id.namespace}/{outcome.id.name}",
                    "commit": published.get("commit"),
                    "revision": published.get("revision"),
                    "author": published.get("author"),
                    "keys": keys,
                },
                sort_keys=True,
            )
        )


def reconcile_sync(ctx: OperatorContext, sync: dict[str, Any]) -> SyncOutcome:
    """One reconcile of ``sync`` (as read from the API); returns when to run again."""
    meta = sync.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    spec = sync.get("spec") or {}
    status = dict(sync.get("status") or {})
    memory = ctx.sync_memory(namespace, name)
    interval = parse_duration(spec.get("interval"), default=300.0, what="spec.interval")
    retry = parse_duration(spec.get("retryInterval"), default=30.0, what="spec.retryInterval")
    repo_name = str((spec.get("repositoryRef") or {}).get("name") or "")
    if repo_name:
        ctx.triggers.follow(sync=(namespace, name), repository=(namespace, repo_name))
    if spec.get("suspend"):
        return SyncOutcome(requeue_after=interval, result="suspended")

    started = time.monotonic()
    policy = FailurePolicy.parse(str(spec.get("failurePolicy") or "Atomic"))
    previous = Inventory.from_status(status.get("inventory"))
    ref = SyncRef(namespace, name)
    revision: str | None = None
    try:
        artifact, published = _artifact(ctx, namespace, spec)
        revision = str(published.get("revision") or artifact.revision)
        _progressing(ctx, sync, revision=revision)
        built = build_for_sync(
            memory,
            artifact=artifact,
            spec=spec,
            policy=policy,
            keys=_keys(ctx, memory, namespace, spec),
        )
        objects, sources = place_objects(
            ctx,
            built.objects,
            sync_namespace=namespace,
            target_namespace=spec.get("targetNamespace"),
            service_account=spec.get("serviceAccountName"),
        )
        client = ctx.client_as(namespace, spec.get("serviceAccountName"))
        applied = apply(
            client,
            objects,
            sync=ref,
            revision=revision,
            author=published.get("author"),
            sources=sources,
            recorded=memory.records,
            policy=Policy.ISOLATE if policy is FailurePolicy.ISOLATE else Policy.ATOMIC,
            digest_key=ctx.digest_key,
            discovery=ctx.discovery,
        )
    except SealedGitopsError as exc:
        return _failed(ctx, sync, memory, exc, revision=revision, retry=retry, started=started)

    memory.records = {**memory.records, **applied.records}
    inventory = applied.next_inventory(previous)
    complete = built.complete and applied.ok
    pruned: PruneResult | None = None
    if complete and spec.get("prune", True):
        pruned = prune(
            client, previous=previous, current=inventory, sync=ref, discovery=ctx.discovery
        )
    _audit(f"{namespace}/{name}", published, applied)
    return _succeeded(
        ctx,
        sync,
        memory,
        built=built,
        applied=applied,
        pruned=pruned,
        inventory=inventory,
        revision=revision,
        isolate=policy is FailurePolicy.ISOLATE,
        interval=interval,
        retry=retry,
        started=started,
    )


def _progressing(ctx: OperatorContext, sync: dict[str, Any], *, revision: str) -> None:
    """Reconciling=True (Progressing) when this reconcile has a new revision or generation.

    One status write, only when there is work: a reconcile of what was already handled writes
    nothing. The condition is removed again by the final status write of the reconcile.
    """
    meta = sync["metadata"]
    status = dict(sync.get("status") or {})
    generation = meta.get("generation")
    if (
        revision == status.get("lastAttemptedRevision")
        and generation == status.get("observedGeneration")
    ):
        return
    conditions = set_condition(
        status.get("conditions"),
        type_=RECONCILING,
        status=True,
        reason=Reason.PROGRESSING,
        message=f"Reconciliation in progress for revision {revision}",
        generation=generation,
    )
    patch_status(ctx.client, "Sync", meta["namespace"], meta["name"], {"conditions": conditions})
    sync["status"] = {**status, "conditions": conditions}


def _succeeded(
    ctx: OperatorContext,
    sync: dict[str, Any],
    memory: SyncMemory,
    *,
    built: BuildResult,
    applied: ApplyResult,
    pruned: PruneResult | None,
    inventory: Inventory,
    revision: str,
    isolate: bool,
    interval: float,
    retry: float,
    started: float,
) -> SyncOutcome:
    meta = sync["metadata"]
    namespace, name, generation = meta["namespace"], meta["name"], meta.get("generation")
    status = dict(sync.get("status") or {})
    changed = [
        o.describe() for o in applied.outcomes if o.result.value in ("created", "configured")
    ]
    deleted = [
        o.describe() for o in (pruned.outcomes if pruned else ()) if o.result.value == "deleted"
    ]
    failed_docs = _failure_lines(built)
    problems = [o.describe() for o in applied.errors] + [
        f"{f['file']} (document {f['index']}): {f['object'] or 'document'}: {f['reason']}"
        for f in failed_docs
    ]
    if pruned and not pruned.ok:
        problems += [o.describe() for o in pruned.outcomes if o.error is not None]
    ok = not problems
    conditions = status.get("conditions")
    if ok:
        message = f"Applied revision: {revision}"
        conditions = set_condition(
            conditions,
            type_=READY,
            status=True,
            reason=Reason.SUCCEEDED,
            message=message,
            generation=generation,
        )
        memory.failures = 0
    else:
        reason = (
            Reason.PRUNE_FAILED
            if pruned and not pruned.ok
            else (
                # Atomic: the revision failed, whatever went through before the failure.
                Reason.PARTIALLY_APPLIED
                if isolate and (applied.applied or applied.unchanged)
                else Reason.APPLY_FAILED
            )
        )
        message = (
            f"{len(problems)} of {len(applied.outcomes) + len(failed_docs)} objects failed "
            f"at {revision}: " + "; ".join(problems[:5])
        )
        conditions = set_condition(
            conditions,
            type_=READY,
            status=False,
            reason=reason,
            message=message,
            generation=generation,
        )
        memory.failures += 1
    conditions = remove_condition(remove_condition(conditions, RECONCILING), STALLED)
    counts = {
        "objects": len(inventory.entries),
        "applied": applied.applied,
        "failed": applied.failed + applied.skipped + len(failed_docs),
        "pruned": pruned.deleted if pruned else 0,
    }
    if ok and not changed and not deleted and status.get("counts"):
        # Counts describe the last reconcile that did something: a no-op keeps them, so it
        # writes no status at all (issue 6: a reconcile without drift writes nothing).
        counts = {**dict(status["counts"]), "objects": counts["objects"], "failed": 0}
    new_status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": conditions,
        "lastAttemptedRevision": revision,
        "inventory": inventory.to_status(),
        "counts": counts,
        "failures": failed_docs or None,
    }
    if ok:
        new_status["lastAppliedRevision"] = revision
    handled = requested_at(sync)
    if handled:
        new_status["lastHandledReconcileAt"] = handled
    before = {k: status.get(k) for k in new_status}
    if new_status != before:
        patch_status(ctx.client, "Sync", namespace, name, new_status)
    if changed:
        record_event(
            ctx.client, involved=sync, reason="Applied", message=f"{revision}\n" + _summary(changed)
        )
        ctx.metrics.applied.labels(namespace=namespace).inc(len(changed))
    if deleted:
        record_event(ctx.client, involved=sync, reason="Pruned", message=_summary(deleted))
        ctx.metrics.pruned.labels(namespace=namespace).inc(len(deleted))
    if problems and message != _ready_message(status):
        record_event(
            ctx.client,
            involved=sync,
            reason=Reason.PARTIALLY_APPLIED,
            message=_summary(problems),
            type=EventType.WARNING,
        )
    result = "success" if ok else "partial"
    ctx.metrics.reconciles.labels(kind="Sync", result=result).inc()
    ctx.metrics.reconcile_duration.labels(kind="Sync", result=result).observe(
        time.monotonic() - started
    )
    memory.last_revision = revision
    return SyncOutcome(
        requeue_after=interval if ok else ctx.backoff(memory.failures, base=retry), result=result
    )


def _ready_message(status: dict[str, Any]) -> str | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == READY:
            return str(cond.get("message"))
    return None


def _failed(
    ctx: OperatorContext,
    sync: dict[str, Any],
    memory: SyncMemory,
    exc: SealedGitopsError,
    *,
    revision: str | None,
    retry: float,
    started: float,
) -> SyncOutcome:
    meta = sync["metadata"]
    namespace, name, generation = meta["namespace"], meta["name"], meta.get("generation")
    status = dict(sync.get("status") or {})
    reason = _reason(exc)
    message = str(exc)
    conditions = set_condition(
        status.get("conditions"),
        type_=READY,
        status=False,
        reason=reason,
        message=message,
        generation=generation,
    )
    if isinstance(exc, ConfigError) and not isinstance(exc, _Dependency):
        conditions = set_condition(
            conditions,
            type_=STALLED,
            status=True,
            reason=reason,
            message=message,
            generation=generation,
        )
    else:
        conditions = remove_condition(conditions, STALLED)
    conditions = remove_condition(conditions, RECONCILING)
    new_status: dict[str, Any] = {"observedGeneration": generation, "conditions": conditions}
    if revision:
        new_status["lastAttemptedRevision"] = revision
    handled = requested_at(sync)
    if handled:
        new_status["lastHandledReconcileAt"] = handled
    try:
        if new_status != {k: status.get(k) for k in new_status}:
            patch_status(ctx.client, "Sync", namespace, name, new_status)
        if message != _ready_message(status):
            record_event(
                ctx.client, involved=sync, reason=reason, message=message, type=EventType.WARNING
            )
    except ClusterError as status_error:
        log.warning("Sync %s/%s: cannot write status: %s", namespace, name, status_error)
    log.warning("Sync %s/%s: %s: %s", namespace, name, reason, message)
    memory.failures += 1
    ctx.metrics.reconciles.labels(kind="Sync", result="failure").inc()
    ctx.metrics.reconcile_duration.labels(kind="Sync", result="failure").observe(
        time.monotonic() - started
    )
    return SyncOutcome(requeue_after=ctx.backoff(memory.failures, base=retry), result="failure")


def finalize_sync(ctx: OperatorContext, sync: dict[str, Any]) -> int:
    """On deletion of a Sync with prune on: delete every object of its inventory."""
    meta = sync.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    spec = sync.get("spec") or {}
    deleted = 0
    if spec.get("prune", True) and not spec.get("suspend"):
        previous = Inventory.from_status((sync.get("status") or {}).get("inventory"))
        client = ctx.client_as(namespace, spec.get("serviceAccountName"))
        result = prune(
            client,
            previous=previous,
            current=Inventory(),
            sync=SyncRef(namespace, name),
            discovery=ctx.discovery,
        )
        if not result.ok:
            raise ClusterError("; ".join(o.describe() for o in result.outcomes if o.error))
        deleted = result.deleted
    ctx.forget_sync(namespace, name)
    return deleted
