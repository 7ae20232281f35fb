"""Reconcile one Sync: the pipeline's phases against the cluster, then its report.

Why this reads as a list: each phase is a function of its own package (source, render + decrypt in
``pipeline.build``, tenancy here, ``cluster.apply``, ``cluster.prune``); this module says in which
order they run, what a failure of each means for the Sync's conditions, and what is kept when one
fails. What is kept: everything already applied. Nothing is pruned unless the whole revision
rendered and decrypted and every object applied (invariant 3); with the Isolate policy the failing
documents are left out and their previously applied versions stay in the inventory. An object
another Sync owns is left to it (:mod:`.ownership`), and a write that only undoes a live edit is
drift, never a change by the current commit's author (:mod:`sealed_gitops.cluster.drift`). How
each outcome is written down (status, conditions, Events, metrics) is :mod:`.sync_status`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sealed_gitops.audit.log import IDENTITY_ATTRIBUTE
from sealed_gitops.cluster import (
    ApplyResult,
    Desired,
    Discovery,
    Policy,
    PruneResult,
    SyncRef,
    apply,
    prepare_desired,
    prune,
)
from sealed_gitops.errors import (
    ConfigError,
    NoMatchingKey,
    SealedGitopsError,
)
from sealed_gitops.operator.artifact_memo import remembered_artifact
from sealed_gitops.operator.building import build_for_sync
from sealed_gitops.operator.context import OperatorContext, SyncMemory
from sealed_gitops.operator.deletion import finalize_sync
from sealed_gitops.operator.dependencies import check_dependencies
from sealed_gitops.operator.health_checks import health_phase
from sealed_gitops.operator.heap import release_free_heap
from sealed_gitops.operator.inventory_memo import (
    expect_inventory,
    inventory_status,
    next_inventory,
    previous_inventory,
)
from sealed_gitops.operator.keyring import keyring_decryption_keys
from sealed_gitops.operator.keyring_access import explain_retired
from sealed_gitops.operator.keys_in_use import keys_in_use
from sealed_gitops.operator.ownership import claims_of
from sealed_gitops.operator.post_build import post_build_variables
from sealed_gitops.operator.remote import target_cluster
from sealed_gitops.operator.repository import repository_source
from sealed_gitops.operator.resources import get_object
from sealed_gitops.operator.specs import RepositorySpec, SyncSpec
from sealed_gitops.operator.sync_status import (
    DependencyNotReady,
    SyncOutcome,
    failed,
    progressing,
    succeeded,
)
from sealed_gitops.operator.tenancy import place_objects
from sealed_gitops.pipeline import BuildResult, FailurePolicy
from sealed_gitops.plan import Inventory
from sealed_gitops.render.decrypt import DecryptionKeys
from sealed_gitops.source import Artifact, Ref
from sealed_gitops.source import fetch as git_fetch

__all__ = [
    "SyncOutcome",
    "decryption_keys",
    "finalize_sync",
    "published_artifact",
    "reconcile_sync",
]

log = logging.getLogger(__name__)
audit_log = logging.getLogger("sealed_gitops.audit")


def published_artifact(
    ctx: OperatorContext, parsed: SyncSpec, *, memory: SyncMemory | None = None
) -> tuple[Any, dict[str, Any]]:
    """Phase 1, source: the commit the Repository published, checked out from the cache.

    With ``memory`` (the Sync's), the checkout of its last reconcile is reused while the
    commit, URL and credentials are the same and it is still on disk (:mod:`.artifact_memo`).
    """
    namespace, repo_name = parsed.meta.namespace, parsed.repository
    repo = get_object(ctx.client, "Repository", namespace, repo_name)
    if repo is None:
        raise DependencyNotReady(f"Repository {namespace}/{repo_name} not found")
    published = (repo.get("status") or {}).get("artifact") or {}
    if not published.get("commit"):
        raise DependencyNotReady(f"Repository {namespace}/{repo_name} has no verified revision yet")
    source = repository_source(ctx, RepositorySpec.parse(repo), verify=False)
    commit = str(published["commit"])

    def fetch() -> Artifact:
        return git_fetch(
            source.url,
            Ref(commit=commit),
            source.auth,
            timeout=source.timeout,
            cache_dir=ctx.cache_dir,
            schemes=ctx.settings.allowed_schemes,
        )

    if memory is None:
        return fetch(), published
    key = (source.url, source.auth, ctx.cache_dir, ctx.settings.allowed_schemes)
    memory.artifact = remembered_artifact(memory.artifact, key=key, commit=commit, fetch=fetch)
    return memory.artifact[1], published


def decryption_keys(ctx: OperatorContext, memory: SyncMemory, parsed: SyncSpec) -> DecryptionKeys:
    namespace = parsed.meta.namespace
    if parsed.keyring is not None:
        return keyring_decryption_keys(ctx, namespace, parsed.keyring)
    if not parsed.decryption_secret:
        fallback = ctx.settings.global_decryption_secret
        if not fallback:
            return DecryptionKeys()
        # Flux's global key: only for a Sync that names no keys of its own (Flux's precedence)
        owner, _, name = fallback.partition("/")
        return DecryptionKeys(sops=ctx.keyring_for(memory, namespace=owner, secret=name))
    return DecryptionKeys(
        sops=ctx.keyring_for(memory, namespace=namespace, secret=parsed.decryption_secret)
    )


def _desired(
    ctx: OperatorContext,
    memory: SyncMemory,
    built: BuildResult,
    *,
    ref: SyncRef,
    parsed: SyncSpec,
    discovery: Discovery,
) -> Desired:
    """Phase 4a, tenancy and preparation: the build's objects placed in their namespaces (or
    refused) and prepared for apply; kept while the build and the placement rules are the same,
    so a no-op reconcile does not copy, digest and sort every object again."""
    target, account = parsed.target_namespace, parsed.service_account
    rules = (target, account, tuple(ctx.settings.target_namespace_allowlist), discovery)
    # The build by identity: build_for_sync returns the very same object while it is valid
    # (the key holds the build itself, so its identity cannot pass to a newer one).
    if (
        memory.desired is not None
        and memory.desired_key
        and memory.desired_key[0] is built
        and memory.desired_key[1:] == rules
    ):
        return memory.desired
    objects, sources = place_objects(
        ctx,
        built.objects,
        sync_namespace=ref.namespace,
        target_namespace=target,
        service_account=account,
        discovery=discovery,  # the target cluster's: a remote one knows its own kinds
    )
    memory.desired = prepare_desired(
        objects, sync=ref, sources=sources, digest_key=ctx.digest_key, discovery=discovery
    )
    memory.desired_key = (built, *rules)
    return memory.desired


def _settle(memory: SyncMemory, applied: ApplyResult, inventory: Inventory, written: Any) -> None:
    """After the status write: the inventory just written is the next reconcile's parse of it
    (:mod:`.inventory_memo`), and after a reconcile that wrote objects (the first one, one after
    a commit, a drift correction) the C allocator's free pages go back (:mod:`.heap`); a quiet
    apply, a no-op, allocated little and skips it."""
    expect_inventory(memory, inventory, written)
    if not applied.quiet:
        release_free_heap()


def _audit(sync: str, published: dict[str, Any], applied: ApplyResult) -> None:
    """One JSON line per changed Secret (no values): a change from Git names its commit and
    author; a drift correction names the field manager whose live edit it reverted and the
    commit whose values it restored, and no author (nobody committed it)."""
    for outcome in applied.outcomes:
        change = outcome.change
        if outcome.id.kind != "Secret" or outcome.id.group or change is None:
            continue
        if outcome.result.value not in ("created", "configured"):
            continue
        keys = {k.key: k.change.value for k in change.keys if k.change.value != "unchanged"}
        # Who changed what comes from Git and the API: the audit stream puts these fields in
        # after redaction, so no committed value can blank them (invariant 8).
        identity: dict[str, Any] = {
            "sync": sync,
            "object": f"Secret/{outcome.id.namespace}/{outcome.id.name}",
            "keys": keys,
        }
        if outcome.drift is not None:
            event = "drift-corrected"
            identity["manager"] = ",".join(outcome.drift.managers) or None
            identity["restoredCommit"] = outcome.drift.commit
        else:
            event = "secret-applied"
            identity["commit"] = published.get("commit")
            identity["revision"] = published.get("revision")
            identity["author"] = published.get("author")
        audit_log.info(
            json.dumps({"event": event, **identity}, sort_keys=True),
            extra={IDENTITY_ATTRIBUTE: identity},
        )


def _dependencies(
    ctx: OperatorContext,
    sync: dict[str, Any],
    memory: SyncMemory,
    parsed: SyncSpec,
    *,
    started: float,
) -> SyncOutcome | None:
    """Phase 0, order: None when every dependsOn Sync is Ready at its latest revision, else the
    outcome of waiting (retried at retryInterval: the wait is expected, not a growing failure)
    or of a refused reference or a cycle (the spec must change)."""
    try:
        check_dependencies(ctx, parsed)
    except SealedGitopsError as exc:
        outcome = failed(
            ctx, sync, memory, exc, revision=None, retry=parsed.retry_interval, started=started
        )
        if isinstance(exc, DependencyNotReady):  # expected: no growing backoff
            return SyncOutcome(requeue_after=parsed.retry_interval, result=outcome.result)
        return outcome
    return None


def reconcile_sync(ctx: OperatorContext, sync: dict[str, Any]) -> SyncOutcome:
    """One reconcile of ``sync`` (as read from the API); returns when to run again."""
    meta = sync.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    spec = sync.get("spec") or {}
    status = dict(sync.get("status") or {})
    memory = ctx.sync_memory(namespace, name)
    try:
        # Parsed once, here: every name is checked before anything below sends a request.
        parsed = SyncSpec.parse(sync)
    except ConfigError as exc:
        return failed(ctx, sync, memory, exc, revision=None, retry=30.0, started=time.monotonic())
    interval, retry = parsed.interval, parsed.retry_interval
    ctx.triggers.follow(sync=(namespace, name), repository=(namespace, parsed.repository))
    if parsed.suspend:
        return SyncOutcome(requeue_after=interval, result="suspended")

    started = time.monotonic()
    waiting = _dependencies(ctx, sync, memory, parsed, started=started)
    if waiting is not None:
        return waiting
    policy = FailurePolicy.parse(str(spec.get("failurePolicy") or "Atomic"))
    previous = previous_inventory(memory, status.get("inventory"))
    ref = SyncRef(namespace, name)
    revision: str | None = None
    in_use: dict[str, Any] | None = None
    try:
        artifact, published = published_artifact(ctx, parsed, memory=memory)
        revision = str(published.get("revision") or artifact.revision)
        progressing(ctx, sync, revision=revision)
        keys = decryption_keys(ctx, memory, parsed)
        # Which KeyRing keys this revision needs, for `keys retire` (recorded even if it fails).
        in_use = keys_in_use(
            ctx,
            keyring=parsed.keyring,
            commit=artifact.commit,
            root=artifact.path,
            revision=revision,
        )
        built = build_for_sync(
            memory,
            artifact=artifact,
            spec=spec,
            policy=policy,
            keys=keys,
            namespace=namespace,  # where objects land (with targetNamespace): scopes need it
            target_namespace=parsed.target_namespace,
            # postBuild variables, read as the Sync; substituted in the build, before placement
            variables=post_build_variables(
                ctx.client_as(namespace, parsed.service_account), parsed
            ),
            observe_decrypted=ctx.metrics.sops_files_decrypted.inc,
        )
        # Where the objects live: this cluster, or the one spec.kubeConfig names (remote.py).
        cluster = target_cluster(ctx, memory, parsed)
        desired = _desired(ctx, memory, built, ref=ref, parsed=parsed, discovery=cluster.discovery)
        client = cluster.client
        # spec.timeout bounds apply and the health checks together (Flux's rule).
        deadline = time.monotonic() + parsed.timeout
        applied = apply(
            client,
            desired,
            sync=ref,
            revision=revision,
            author=published.get("author"),
            recorded=memory.records,
            set_by=memory.set_by,
            claims=claims_of(ctx),
            policy=Policy.ISOLATE if policy is FailurePolicy.ISOLATE else Policy.ATOMIC,
            digest_key=ctx.digest_key,
            discovery=cluster.discovery,
        )
    except SealedGitopsError as exc:
        if isinstance(exc, NoMatchingKey) and parsed.keyring is not None:
            exc = explain_retired(ctx, parsed.keyring, exc)
        return failed(
            ctx, sync, memory, exc, revision=revision, retry=retry, started=started, in_use=in_use
        )

    if not applied.quiet:  # a quiet apply repeats the records it was given: nothing to merge
        memory.records = {**memory.records, **applied.records}
        memory.set_by = {**memory.set_by, **applied.set_by}
    inventory = next_inventory(memory, applied, previous, desired)
    complete = built.complete and applied.ok
    if not complete:
        # Nothing is pruned after an incomplete revision, so everything applied before is still
        # live and ours: keep tracking it (a failed document's object, a removed file's object),
        # or no later complete revision could ever prune it.
        inventory = previous.merge(inventory)
    pruned: PruneResult | None = None
    if complete and parsed.prune:
        pruned = prune(
            client, previous=previous, current=inventory, sync=ref, discovery=cluster.discovery
        )
    _audit(f"{namespace}/{name}", published, applied)
    # Phase 6, health (spec.wait / healthChecks): Ready only once what was applied runs; a long
    # wait is spread over reconciles (Progressing meanwhile), not held in this thread.
    health = (
        health_phase(
            ctx,
            client,
            parsed,
            inventory,
            memory=memory,
            key=(revision, meta.get("generation")),
            deadline=deadline,
            discovery=cluster.discovery,
        )
        if complete
        else None
    )
    written = inventory_status(memory, inventory, status.get("inventory"))
    outcome = succeeded(
        ctx,
        sync,
        memory,
        built=built,
        applied=applied,
        pruned=pruned,
        inventory=inventory,
        inventory_status=written,
        revision=revision,
        author=published.get("author"),
        isolate=policy is FailurePolicy.ISOLATE,
        interval=interval,
        retry=retry,
        started=started,
        in_use=in_use,
        health=health,
    )
    _settle(memory, applied, inventory, written)
    return outcome
