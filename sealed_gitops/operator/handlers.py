"""The kopf wiring: one reconcile loop (a kopf daemon) per Repository and per Sync.

Why daemons and not timers: a loop per object can sleep until *either* its interval passes *or*
its trigger fires (a new revision of its Repository, a webhook, a spec change, a
``sealed-gitops.io/requested-at`` annotation), so a push reaches the cluster in about a second
while an idle Sync costs nothing. The blocking work (git, decryption, API calls) runs in a worker
thread so kopf's event loop keeps serving watches. Each operator gets its own registry, so several
can run in one process (tests, the demo).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from sealed_gitops import redact
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.operator import log_context
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.diff_request import register_diff_request_handler
from sealed_gitops.operator.keyring import register_keyring_handlers
from sealed_gitops.operator.repository import reconcile_repository
from sealed_gitops.operator.resources import GROUP, REQUESTED_AT, VERSION, get_object
from sealed_gitops.operator.sharding import Shard
from sealed_gitops.operator.sync import finalize_sync, reconcile_sync
from sealed_gitops.operator.wakeup import sleep_until_woken

__all__ = ["REQUESTED_AT", "build_registry", "configure_kopf"]

log = logging.getLogger(__name__)

#: Prefix of kopf's bookkeeping annotations (progress, last handled configuration).
KOPF_PREFIX = f"kopf.{GROUP}"

#: Longest single wait between checks of the daemon's stop flag, in seconds.
_POLL = 0.5


async def _sleep_until_woken(
    ctx: OperatorContext, kind: str, namespace: str, name: str, *, seconds: float, stopped: Any
) -> list[str]:
    """Wait for the trigger, the interval or the stop flag, whichever comes first (without
    polling: :mod:`.wakeup`)."""
    trigger = ctx.triggers.get(kind, namespace, name)
    return await sleep_until_woken(trigger, seconds=seconds, stopped=stopped)


async def _loop(ctx: OperatorContext, kind: str, namespace: str, name: str, stopped: Any) -> None:
    # This daemon's task (and the threads it starts) register and redact as its tenant: a value
    # committed for one namespace cannot blank another namespace's status (issue 11, finding 10).
    redact.enter_scope(namespace)
    # ... and every line it logs names its object (`sealed-gitops logs`, issue 15 Must 7).
    log_context.about(kind, namespace, name)
    while not stopped:
        # A Sync waits for its turn (settings.concurrent_syncs: how much passing memory runs at
        # once) before it reads its body, so it reconciles what the API holds when it starts.
        turn = ctx.sync_turns if kind == "Sync" else contextlib.nullcontext()
        async with turn:
            body = await asyncio.to_thread(get_object, ctx.client, kind, namespace, name)
            if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
                return
            if ctx.settings.shard.owns(body):
                delay = await _reconcile(ctx, kind, namespace, name, body)
                if delay is None:
                    return
            else:
                # Relabelled to another shard since kopf spawned this loop: kopf stops it when it
                # sees the change; until then, wait rather than reconcile another shard's object
                # (and rather than return: should the label come back, kopf may never respawn it).
                _stop_reporting(ctx, kind, namespace, name)
                delay = _POLL
        await _sleep_until_woken(ctx, kind, namespace, name, seconds=delay, stopped=stopped)
    # Stopped by kopf: the object was relabelled to another shard (kopf stops the loop at once,
    # before it wakes to see the label), or the operator stops.
    _stop_reporting(ctx, kind, namespace, name)


async def _reconcile(
    ctx: OperatorContext, kind: str, namespace: str, name: str, body: dict[str, Any]
) -> float | None:
    """One reconcile in a worker thread; seconds until the next, or None once the operator
    has halted (the loop ends)."""
    try:
        if kind == "Repository":
            repo_outcome = await asyncio.to_thread(reconcile_repository, ctx, body)
            if repo_outcome.new_revision:
                ctx.triggers.repository_changed(
                    namespace, name, reason=f"revision {repo_outcome.new_revision}"
                )
            return repo_outcome.requeue_after
        return (await asyncio.to_thread(reconcile_sync, ctx, body)).requeue_after
    except SealedGitopsError as exc:
        if ctx.client.halted.is_set():
            log.info("%s %s/%s: stopped mid-reconcile (%s)", kind, namespace, name, exc)
            return None
        # Status could not even be written (API down): keep everything, retry with backoff.
        memory = (
            ctx.sync_memory(namespace, name)
            if kind == "Sync"
            else ctx.repository_memory(namespace, name)
        )
        memory.failures += 1
        delay = ctx.backoff(memory.failures, base=5.0)
        log.warning("%s %s/%s: %s (retry in %.0fs)", kind, namespace, name, exc, delay)
        return delay


def _stop_reporting(ctx: OperatorContext, kind: str, namespace: str, name: str) -> None:
    """Drop the object's alert series (``state_metrics``) once this process no longer
    reconciles it: kept, a last not-Ready would stand next to the owning shard's series and
    keep an alert firing for a Sync another shard has fixed."""
    if kind == "Sync":
        ctx.metrics.state.forget_sync(namespace, name)


def build_registry(ctx: OperatorContext) -> kopf.OperatorRegistry:
    """The handlers of one operator, bound to its context.

    Every handler of our kinds takes only the objects of this operator's shard
    (``ctx.settings.shard``, a kopf ``when=`` filter): kopf then neither starts a loop for
    another shard's object nor puts this shard's finalizer on it, and stops the loop of an
    object relabelled away.
    """
    registry = kopf.OperatorRegistry()
    owned = ctx.settings.shard.kopf_owned

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        details = ctx.client.connection_details()
        return kopf.ConnectionInfo(
            server=details["server"],
            ca_path=details["ca_path"],
            insecure=details["insecure"],
            token=details["token"],
            scheme="Bearer" if details["token"] else None,
            certificate_path=details["certificate_path"],
            private_key_path=details["private_key_path"],
        )

    @kopf.daemon(
        GROUP, VERSION, "repositories", registry=registry, cancellation_timeout=5.0, when=owned
    )
    async def repository_daemon(
        *, stopped: Any, namespace: str | None, name: str, **_: Any
    ) -> None:
        await _loop(ctx, "Repository", str(namespace), name, stopped)

    @kopf.daemon(GROUP, VERSION, "syncs", registry=registry, cancellation_timeout=5.0, when=owned)
    async def sync_daemon(*, stopped: Any, namespace: str | None, name: str, **_: Any) -> None:
        await _loop(ctx, "Sync", str(namespace), name, stopped)

    # async: kopf runs plain functions in a worker thread, and the triggers' asyncio events
    # must be set from the event loop that waits on them.
    @kopf.on.update(GROUP, VERSION, "repositories", registry=registry, when=owned)
    async def repository_changed(
        *, old: Any, new: Any, namespace: str | None, name: str, **_: Any
    ) -> None:
        _wake_on_change(ctx, "Repository", old, new, key=(str(namespace), name))

    @kopf.on.update(GROUP, VERSION, "syncs", registry=registry, when=owned)
    async def sync_changed(
        *, old: Any, new: Any, namespace: str | None, name: str, **_: Any
    ) -> None:
        _wake_on_change(ctx, "Sync", old, new, key=(str(namespace), name))

    register_keyring_handlers(registry, ctx)
    register_diff_request_handler(registry, ctx, when=owned)
    _wake_on_foreign_revisions(registry, ctx)

    @kopf.on.delete(GROUP, VERSION, "syncs", registry=registry, when=owned)
    async def sync_deleted(*, body: Any, namespace: str | None, name: str, **_: Any) -> None:
        try:
            deleted = await asyncio.to_thread(finalize_sync, ctx, dict(body))
        except SealedGitopsError as exc:
            raise kopf.TemporaryError(str(exc), delay=10) from exc
        log.info("Sync %s/%s deleted; pruned %d objects", namespace, name, deleted)

    return registry


def _wake_on_foreign_revisions(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    """A Sync of this shard may use a Repository of another shard: that shard fetches and
    publishes the revision, and this one wakes its followers when the published revision
    changes (as its own Repository loop would), instead of at the Sync's next interval."""
    published: dict[tuple[str, str], str] = {}

    @kopf.on.event(
        GROUP, VERSION, "repositories", registry=registry, when=ctx.settings.shard.kopf_foreign
    )
    async def foreign_repository(
        *, body: Any, type: str | None, namespace: str | None, name: str, **_: Any
    ) -> None:
        key = (str(namespace), name)
        if type == "DELETED":
            published.pop(key, None)
            return
        artifact = (body.get("status") or {}).get("artifact") or {}
        revision = str(artifact.get("revision") or "")
        before = published.get(key)
        published[key] = revision
        # The first sight (at start-up, or as the Repository leaves this shard) is no news.
        if revision and before is not None and revision != before:
            ctx.triggers.repository_changed(*key, reason=f"revision {revision}")


def _wake_on_change(
    ctx: OperatorContext, kind: str, old: Any, new: Any, *, key: tuple[str, str]
) -> None:
    """Spec changes and a new requested-at annotation wake the loop at once."""
    old, new = old or {}, new or {}
    reasons = []
    if old.get("spec") != new.get("spec"):
        reasons.append("spec changed")
    before = ((old.get("metadata") or {}).get("annotations") or {}).get(REQUESTED_AT)
    after = ((new.get("metadata") or {}).get("annotations") or {}).get(REQUESTED_AT)
    if after and after != before:
        reasons.append("requested")
    for reason in reasons:
        ctx.triggers.fire(kind, *key, reason=reason)


def configure_kopf(
    settings: kopf.OperatorSettings, *, shard: Shard | None = None
) -> kopf.OperatorSettings:
    """Our names for kopf's own bookkeeping, and no Events from kopf's log lines."""
    # One finalizer per shard: kopf strips its finalizer from objects none of its handlers
    # match, so a shared name would have the shards strip each other's (sharding.py).
    settings.persistence.finalizer = (shard or Shard.of()).finalizer
    # A prefix of kopf's own: kopf ignores every annotation under its storage prefix when it
    # looks for changes, and requested-at (under GROUP) must wake the loop.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.enabled = False
    settings.watching.server_timeout = 60
    settings.watching.client_timeout = 90
    settings.networking.request_timeout = 30
    return settings
