"""What a Sync reconcile reports: its status, conditions, Events and metrics.

Why apart from the phases in ``sync.py``: the phases say what runs and what is kept on a failure;
this module says how each outcome is written down, as Flux writes it (``main@sha1:<sha>``
revisions, observedGeneration, Ready/Reconciling/Stalled with shared reasons, counts), and it holds
the economy rule that a reconcile which changed nothing writes nothing: the status is compared
before it is patched, counts describe the last reconcile that did work, and Events are sent only
when something changed or the failure message is new. Every message passes through redact;
the revision, author and object names in it are :class:`~sealed_gitops.redact.Identity` parts of
a message built with :func:`~sealed_gitops.redact.compose`, so no committed value blanks them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sealed_gitops.cluster import ApplyResult, EventType, PruneResult, record_event
from sealed_gitops.errors import (
    ClusterError,
    ConfigError,
    CryptoError,
    InputError,
    KeyProviderError,
    LimitExceeded,
    SealedGitopsError,
    SourceError,
    VerificationFailed,
)
from sealed_gitops.keys.usage_record import next_status
from sealed_gitops.operator.conditions import (
    READY,
    RECONCILING,
    STALLED,
    Reason,
    failure_conditions,
    remove_condition,
    set_condition,
)
from sealed_gitops.operator.context import OperatorContext, SyncMemory
from sealed_gitops.operator.health_checks import POLL_AGAIN, HealthReport
from sealed_gitops.operator.ownership import conflict_lines
from sealed_gitops.operator.resources import patch_status, update_status
from sealed_gitops.operator.sync_events import (
    MAX_EVENT_LINES,
    drift_event,
    event_names,
    warn,
)
from sealed_gitops.operator.tenancy import TenancyRefused
from sealed_gitops.pipeline import BuildResult
from sealed_gitops.plan import Inventory
from sealed_gitops.plan.names import InvalidName
from sealed_gitops.redact import Identity, compose, redact

__all__ = [
    "MAX_EVENT_LINES",
    "DependencyNotReady",
    "SyncOutcome",
    "failed",
    "progressing",
    "reason_for",
    "succeeded",
]

log = logging.getLogger("sealed_gitops.operator.sync")


@dataclass(frozen=True)
class SyncOutcome:
    requeue_after: float
    result: str  # success, failure, partial, suspended


class DependencyNotReady(SealedGitopsError):
    """The Sync's Repository is missing or has published no revision yet (not Stalled)."""

    code = Reason.DEPENDENCY_NOT_READY


def reason_for(exc: SealedGitopsError) -> str:
    if isinstance(exc, DependencyNotReady):
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
    if isinstance(exc, InvalidName):
        return Reason.INVALID_NAME
    if isinstance(exc, ConfigError):
        return Reason.INVALID_SPEC
    if isinstance(exc, InputError) and exc.code == "NotEncrypted":
        return Reason.DECRYPTION_FAILED
    return Reason.BUILD_FAILED


def _failure_lines(result: BuildResult) -> list[dict[str, Any]]:
    return [
        {"file": f.file, "index": f.index, "object": f.object, "reason": redact(f.reason)}
        for f in result.failures
    ]


def progressing(ctx: OperatorContext, sync: dict[str, Any], *, revision: str) -> None:
    """Reconciling=True (Progressing) when this reconcile has a new revision or generation.

    One status write, only when there is work: a reconcile of what was already handled writes
    nothing. The condition is removed again by the final status write of the reconcile.
    """
    meta = sync["metadata"]
    status = dict(sync.get("status") or {})
    generation = meta.get("generation")
    if revision == status.get("lastAttemptedRevision") and generation == status.get(
        "observedGeneration"
    ):
        return
    conditions = set_condition(
        status.get("conditions"),
        type_=RECONCILING,
        status=True,
        reason=Reason.PROGRESSING,
        message=compose("Reconciliation in progress for revision ", Identity(revision)),
        generation=generation,
    )
    patch_status(ctx.client, "Sync", meta["namespace"], meta["name"], {"conditions": conditions})
    sync["status"] = {**status, "conditions": conditions}


def succeeded(
    ctx: OperatorContext,
    sync: dict[str, Any],
    memory: SyncMemory,
    *,
    built: BuildResult,
    applied: ApplyResult,
    pruned: PruneResult | None,
    inventory: Inventory,
    inventory_status: Any = None,
    revision: str,
    author: str | None = None,
    isolate: bool,
    interval: float,
    retry: float,
    started: float,
    in_use: Mapping[str, Any] | None = None,
    health: HealthReport | None = None,
) -> SyncOutcome:
    """The status after a revision went through apply (and prune); ``health`` is the health
    phase's report when what was applied is not healthy (spec.wait / spec.healthChecks): final
    (HealthCheckFailed) or still within the timeout (Progressing, looked at again soon).
    ``inventory_status``: ``inventory.to_status()`` when the caller has it already."""
    meta = sync["metadata"]
    namespace, generation = meta["namespace"], meta.get("generation")
    status = dict(sync.get("status") or {})
    # Writes that carried Git's changes; drift corrections are reported apart (_drift).
    changed = [o.describe() for o in applied.changed]
    deleted = [
        o.describe() for o in (pruned.outcomes if pruned else ()) if o.result.value == "deleted"
    ]
    failed_docs = _failure_lines(built)
    conflicts = bool(applied.conflicts)
    problems = [o.describe() for o in applied.errors] + [
        f"{f['file']} (document {f['index']}): {f['object'] or 'document'}: {f['reason']}"
        for f in failed_docs
    ]
    if pruned and not pruned.ok:
        problems += [o.describe() for o in pruned.outcomes if o.error is not None]
    ok = not problems
    healthy = ok and health is None
    pending = ok and health is not None and not health.final
    conditions = status.get("conditions")
    if ok and health is not None:
        # Applied but not running (yet): Flux's HealthCheckFailed, and not the applied revision.
        message = health.message
        conditions = set_condition(
            conditions,
            type_=READY,
            status=False,
            reason=Reason.PROGRESSING if pending else Reason.HEALTH_CHECK_FAILED,
            message=message,
            generation=generation,
        )
    elif ok:
        message = compose("Applied revision: ", Identity(revision))
        conditions = set_condition(
            conditions,
            type_=READY,
            status=True,
            reason=Reason.SUCCEEDED,
            message=message,
            generation=generation,
        )
    else:
        reason = (
            Reason.PRUNE_FAILED
            if pruned and not pruned.ok
            else Reason.OWNERSHIP_CONFLICT
            if conflicts
            # Atomic: the revision failed, whatever went through before the failure.
            else (
                Reason.PARTIALLY_APPLIED
                if isolate and (applied.applied or applied.unchanged)
                else Reason.APPLY_FAILED
            )
        )
        message = compose(
            f"{len(problems)} of {len(applied.outcomes) + len(failed_docs)} objects failed at ",
            Identity(revision),
            ": " + "; ".join(problems[:5]),
        )
        conditions = set_condition(
            conditions,
            type_=READY,
            status=False,
            reason=reason,
            message=message,
            generation=generation,
        )
    memory.failures = 0 if healthy else memory.failures + (0 if pending else 1)
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
        "inventory": inventory.to_status() if inventory_status is None else inventory_status,
        "counts": counts,
        # Isolate lists what it left out; a conflict is left out like a failed document.
        "failures": (failed_docs + _conflict_lines(memory, applied, isolate=isolate)) or None,
    }
    if healthy:
        new_status["lastAppliedRevision"] = revision
    if in_use is not None:
        # The keys this revision needs, for `keys retire` (issue 15, Must 4).
        new_status["decryptionKeys"] = next_status(status.get("decryptionKeys"), in_use, applied=ok)
    update_status(ctx.client, "Sync", sync, new_status)
    if changed:
        # Who committed it, so the Event alone answers "who changed this Secret?".
        by = [" by ", Identity(author)] if author else []
        record_event(
            ctx.client,
            involved=sync,
            reason="Applied",
            message=compose(Identity(revision), *by, "\n", *event_names(changed)),
        )
        ctx.metrics.applied.labels(namespace=namespace).inc(len(changed))
    if deleted:
        record_event(
            ctx.client, involved=sync, reason="Pruned", message=compose(*event_names(deleted))
        )
        ctx.metrics.pruned.labels(namespace=namespace).inc(len(deleted))
    if applied.corrected:
        drift_event(ctx, sync, applied)
    if message != _ready_message(status):
        warn(
            ctx, sync, applied, problems=problems, unhealthy=None if healthy or pending else message
        )
    result = "success" if healthy else "progressing" if pending else "partial"
    _observe(
        ctx,
        meta,
        result,
        ready=healthy,
        undecrypted=sum(reason_for(f.error) == Reason.DECRYPTION_FAILED for f in built.failures),
        started=started,
    )
    memory.last_revision = revision
    return SyncOutcome(
        requeue_after=(
            interval
            if healthy
            else POLL_AGAIN
            if pending
            else ctx.backoff(memory.failures, base=retry)
        ),
        result=result,
    )


def _observe(
    ctx: OperatorContext,
    meta: Mapping[str, Any],
    result: str,
    *,
    ready: bool,
    undecrypted: int,
    started: float,
) -> None:
    """The reconcile's metrics: its result and duration, the Sync's Ready state and the files
    it could not decrypt (``state_metrics``: what the alerts read)."""
    ctx.metrics.observe_reconcile("Sync", result, started=started)
    ctx.metrics.state.sync_status(
        meta["namespace"], meta["name"], ready=ready, decryption_failures=undecrypted
    )


def _conflict_lines(
    memory: SyncMemory, applied: ApplyResult, *, isolate: bool
) -> list[dict[str, Any]]:
    if not isolate or not applied.conflicts:
        return []
    sources = dict(memory.desired.sources) if memory.desired is not None else {}
    return conflict_lines(applied, sources)


def _ready_message(status: dict[str, Any]) -> str | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == READY:
            return str(cond.get("message"))
    return None


def failed(
    ctx: OperatorContext,
    sync: dict[str, Any],
    memory: SyncMemory,
    exc: SealedGitopsError,
    *,
    revision: str | None,
    retry: float,
    started: float,
    in_use: Mapping[str, Any] | None = None,
) -> SyncOutcome:
    meta = sync["metadata"]
    namespace, name, generation = meta["namespace"], meta["name"], meta.get("generation")
    status = dict(sync.get("status") or {})
    reason = reason_for(exc)
    message = str(exc)
    conditions = failure_conditions(
        status.get("conditions"),
        reason=reason,
        message=message,
        generation=generation,
        # A missing Repository or revision may appear on its own (DependencyNotReady is no
        # ConfigError): only a spec the operator cannot use stalls, or a revision over a limit
        # (an alias or overlay bomb fails the same way on every retry until Git changes).
        stalled=isinstance(exc, ConfigError | LimitExceeded),
    )
    new_status: dict[str, Any] = {"observedGeneration": generation, "conditions": conditions}
    if revision:
        new_status["lastAttemptedRevision"] = revision
    if in_use is not None:
        new_status["decryptionKeys"] = next_status(
            status.get("decryptionKeys"), in_use, applied=False
        )
    try:
        update_status(ctx.client, "Sync", sync, new_status)
        if message != _ready_message(status):
            record_event(
                ctx.client, involved=sync, reason=reason, message=message, type=EventType.WARNING
            )
    except ClusterError as status_error:
        log.warning("Sync %s/%s: cannot write status: %s", namespace, name, status_error)
    log.warning("Sync %s/%s: %s: %s", namespace, name, reason, message)
    memory.failures += 1
    undecrypted = 1 if reason == Reason.DECRYPTION_FAILED else 0
    _observe(ctx, meta, "failure", ready=False, undecrypted=undecrypted, started=started)
    # Over a limit: no fast retry loop (a new revision or spec triggers a reconcile anyway).
    delay = (
        ctx.settings.max_backoff
        if isinstance(exc, LimitExceeded)
        else ctx.backoff(memory.failures, base=retry)
    )
    return SyncOutcome(requeue_after=delay, result="failure")
