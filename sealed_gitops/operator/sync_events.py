"""The Events a Sync reconcile sends: object lists cut to a readable size, warnings, drift.

Why apart from :mod:`.sync_status`: that module decides *whether* something is written down (the
economy rule, conditions); this one says how an Event reads. Object names and field managers are
tenant-controlled, so each is an :class:`~sealed_gitops.redact.Identity` part of a message built
with :func:`~sealed_gitops.redact.compose`, and lists stop at :data:`MAX_EVENT_LINES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sealed_gitops.cluster import ApplyResult, EventType, record_event
from sealed_gitops.operator.conditions import Reason
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.ownership import tell_owners
from sealed_gitops.redact import Identity, compose

__all__ = ["MAX_EVENT_LINES", "drift_event", "event_names", "event_summary", "warn"]

#: Lines of object changes in one Event; the rest is counted, not listed.
MAX_EVENT_LINES = 20


def event_summary(lines: Iterable[str]) -> str:
    items = list(lines)
    shown = items[:MAX_EVENT_LINES]
    more = len(items) - len(shown)
    return "\n".join(shown) + (f"\n... and {more} more" if more > 0 else "")


def event_names(lines: Iterable[str]) -> list[str]:
    """:func:`event_summary` of object names, as parts for :func:`compose` (names: identities)."""
    items = list(lines)
    parts: list[str] = []
    for line in items[:MAX_EVENT_LINES]:
        parts += [Identity(line), "\n"]
    more = len(items) - MAX_EVENT_LINES
    return [*parts[:-1], f"\n... and {more} more"] if more > 0 else parts[:-1]


def warn(
    ctx: OperatorContext,
    sync: dict[str, Any],
    applied: ApplyResult,
    *,
    problems: list[str],
    unhealthy: str | None,
) -> None:
    """The Warning Event of a new failure: objects that failed or conflict, or (all applied)
    what is not healthy."""
    if problems:
        conflicts = bool(applied.conflicts)
        record_event(
            ctx.client,
            involved=sync,
            reason=Reason.OWNERSHIP_CONFLICT if conflicts else Reason.PARTIALLY_APPLIED,
            message=event_summary(problems),
            type=EventType.WARNING,
        )
        if conflicts:
            tell_owners(ctx, sync, applied)
    elif unhealthy is not None:
        record_event(
            ctx.client,
            involved=sync,
            reason=Reason.HEALTH_CHECK_FAILED,
            message=unhealthy,
            type=EventType.WARNING,
        )


def drift_event(ctx: OperatorContext, sync: dict[str, Any], applied: ApplyResult) -> None:
    """The DriftCorrected Event and metric: what was restored and whose live edit it reverted.

    Never a commit author: nobody committed these changes (issue 15, Must 3).
    """
    namespace = sync["metadata"]["namespace"]
    managers = sorted({m for o in applied.corrected if o.drift for m in o.drift.managers})
    by: list[str] = [" (live change by "]
    for index, manager in enumerate(managers):
        by += [", " if index else "", Identity(manager)]
    record_event(
        ctx.client,
        involved=sync,
        reason="DriftCorrected",
        message=compose(
            "Restored the last applied state",
            *((*by, ")") if managers else ()),
            "\n",
            *event_names(o.describe() for o in applied.corrected),
        ),
    )
    for outcome in applied.corrected:
        manager = outcome.drift.by if outcome.drift else "unknown"
        ctx.metrics.observe_drift(namespace, manager)
