"""Status conditions as Kubernetes conventions and Flux write them: Ready, Reconciling, Stalled.

Why a module: every handler sets the same three conditions with the same reasons, and users' tools
(kubectl wait, Flux-aware dashboards, alerts) key on those names; keeping them in one place stops
two handlers from spelling a reason two ways. Messages are redacted, then cut, before they are
stored (:func:`sealed_gitops.redact.cut`: cutting first would leave half a value unrecognised).
Pure: dicts in, dicts out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sealed_gitops.redact import cut

__all__ = [
    "READY",
    "RECONCILING",
    "STALLED",
    "Reason",
    "failure_conditions",
    "now_rfc3339",
    "remove_condition",
    "set_condition",
    "summarize",
]

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"

#: Longest message stored in a condition; Kubernetes allows 32 KiB, people read a screen.
MAX_MESSAGE = 2048


class Reason:
    """Condition reasons, shared by the Repository, Sync and KeyRing handlers.

    There is no ``Suspended``: a suspended object keeps the status of its last reconcile (as in
    Flux), so ``kubectl wait --for=condition=Ready`` and alerts do not flip on a deliberate
    pause; ``spec.suspend`` itself is what says it is paused (``sealed-gitops status`` shows it).
    """

    SOURCE_FAILED = "SourceFailed"
    VERIFICATION_FAILED = "VerificationFailed"
    BUILD_FAILED = "BuildFailed"
    DECRYPTION_FAILED = "DecryptionFailed"
    APPLY_FAILED = "ApplyFailed"
    PRUNE_FAILED = "PruneFailed"
    PROGRESSING = "Progressing"
    SUCCEEDED = "Succeeded"
    PARTIALLY_APPLIED = "PartiallyApplied"
    DEPENDENCY_NOT_READY = "DependencyNotReady"
    ACCESS_DENIED = "AccessDenied"
    INVALID_SPEC = "InvalidSpec"
    #: a name or namespace in the spec that Kubernetes would not admit (issue 11): Stalled
    INVALID_NAME = "InvalidName"
    #: an object of the Sync is live under another Sync that claims it (issue 15): not applied
    OWNERSHIP_CONFLICT = "OwnershipConflict"
    #: applied, but spec.wait / spec.healthChecks objects are not healthy (kstatus) in time
    HEALTH_CHECK_FAILED = "HealthCheckFailed"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    *,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """Return ``conditions`` with ``type_`` set; lastTransitionTime changes only with the status."""
    text = cut(message, limit=MAX_MESSAGE)
    wanted = "True" if status else "False"
    out: list[dict[str, Any]] = []
    found = False
    for cond in conditions or ():
        if cond.get("type") != type_:
            out.append(dict(cond))
            continue
        found = True
        transition = cond.get("lastTransitionTime") if cond.get("status") == wanted else None
        out.append(
            _condition(
                type_,
                wanted,
                reason=reason,
                message=text,
                generation=generation,
                when=transition or now,
            )
        )
    if not found:
        out.append(
            _condition(type_, wanted, reason=reason, message=text, generation=generation, when=now)
        )
    return out


def remove_condition(
    conditions: Sequence[Mapping[str, Any]] | None, type_: str
) -> list[dict[str, Any]]:
    return [dict(c) for c in conditions or () if c.get("type") != type_]


def failure_conditions(
    conditions: Sequence[Mapping[str, Any]] | None,
    *,
    reason: str,
    message: str,
    generation: int | None,
    stalled: bool,
) -> list[dict[str, Any]]:
    """``conditions`` after a failed reconcile: Ready=False, no longer Reconciling, and Stalled
    (same reason and message) only when ``stalled``, i.e. a retry cannot help without a change of
    the spec."""
    out = set_condition(
        conditions,
        type_=READY,
        status=False,
        reason=reason,
        message=message,
        generation=generation,
    )
    if stalled:
        out = set_condition(
            out, type_=STALLED, status=True, reason=reason, message=message, generation=generation
        )
    else:
        out = remove_condition(out, STALLED)
    return remove_condition(out, RECONCILING)


def _condition(
    type_: str,
    status: str,
    *,
    reason: str,
    message: str,
    generation: int | None,
    when: str | None,
) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": when or now_rfc3339(),
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def summarize(conditions: Sequence[Mapping[str, Any]] | None) -> tuple[str, str]:
    """(Ready status, message) for tables: "True"/"False"/"Unknown"."""
    for cond in conditions or ():
        if cond.get("type") == READY:
            return str(cond.get("status", "Unknown")), str(cond.get("message", ""))
    return "Unknown", ""
