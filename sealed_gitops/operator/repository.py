"""Reconcile one Repository: ask the remote for the ref's commit, fetch and verify it if new.

Why it is separate from the Sync: one Repository may feed several Syncs, and fetching is the only
network step that is not the API server. A Repository publishes only verified commits in its status
(``status.artifact``); Syncs apply exactly that commit. A failure keeps the last good artifact, so
the Syncs keep what they applied, and the condition says why.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sealed_gitops.errors import ConfigError, SealedGitopsError, VerificationFailed
from sealed_gitops.operator.conditions import (
    READY,
    RECONCILING,
    STALLED,
    Reason,
    failure_conditions,
    now_rfc3339,
    remove_condition,
    set_condition,
)
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.resources import read_secret_data, update_status
from sealed_gitops.operator.specs import RepositorySpec
from sealed_gitops.plan.names import InvalidName
from sealed_gitops.source import Artifact, Auth, Ref, Verification, auth_from_secret_data, check
from sealed_gitops.source import fetch as git_fetch

__all__ = ["RepositoryOutcome", "artifact_status", "reconcile_repository", "repository_source"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepositoryOutcome:
    """When to look again, and the revision now published (None when unchanged or failed)."""

    requeue_after: float
    new_revision: str | None = None


@dataclass(frozen=True)
class RepositorySource:
    """Everything needed to fetch a Repository's commits, read from its spec and Secrets."""

    url: str
    ref: Ref
    auth: Auth | None
    verification: Verification
    timeout: float


def _verification(ctx: OperatorContext, spec: RepositorySpec) -> Verification:
    """``spec.verify``: absent means off; a block without ``mode`` means HEAD.

    The safe reading, and the one the CRD's schema default gives: whoever wrote a verify block
    wanted commits checked, so a missing mode must not quietly switch checking off (an object
    stored before the default existed, or sent to a server that does not apply defaults).
    """
    if spec.verify_mode is None:
        return Verification()
    keys = None
    if spec.verify_secret_name:
        keys, _ = read_secret_data(
            ctx.client,
            spec.meta.namespace,
            spec.verify_secret_name,
            purpose="signers' public keys",
        )
    return Verification.from_spec(spec.verify_mode, keys)


def repository_source(
    ctx: OperatorContext, spec: RepositorySpec, *, verify: bool = True
) -> RepositorySource:
    """Read the spec's Secrets (in the Repository's own namespace only: the names were checked
    when ``spec`` was parsed, so none can climb out of it).

    ``verify=False`` for a Sync, which fetches only a commit its Repository has already
    verified and published: it needs no signers' keys, so their Secret is not read again.
    """
    namespace = spec.meta.namespace
    url = spec.url
    if not url:
        raise ConfigError("spec.url is empty")
    auth = None
    if spec.secret_name:
        data, _ = read_secret_data(
            ctx.client, namespace, spec.secret_name, purpose="Git credentials"
        )
        auth = auth_from_secret_data(data, url=url)
    verification = _verification(ctx, spec) if verify else Verification()
    timeout = ctx.settings.default_fetch_timeout if spec.timeout is None else spec.timeout
    return RepositorySource(
        url=url,
        # No ref (the schema has no default for it): the remote's HEAD, as ``git clone`` does.
        ref=Ref.from_spec(spec.ref),
        auth=auth,
        verification=verification,
        timeout=timeout,
    )


def artifact_status(artifact: Artifact) -> dict[str, Any]:
    return {
        "url": artifact.url,
        "revision": artifact.revision,
        "commit": artifact.commit,
        "author": f"{artifact.author.name} <{artifact.author.email}>",
        "committer": f"{artifact.committer.name} <{artifact.committer.email}>",
        "signer": artifact.signer,
        "message": artifact.message.splitlines()[0][:200] if artifact.message else "",
        "lastUpdateTime": now_rfc3339(),
    }


def _reason(exc: SealedGitopsError) -> str:
    if isinstance(exc, InvalidName):
        return Reason.INVALID_NAME
    if isinstance(exc, VerificationFailed):
        return Reason.VERIFICATION_FAILED
    if isinstance(exc, ConfigError):
        return Reason.INVALID_SPEC
    return Reason.SOURCE_FAILED


def _failed(
    ctx: OperatorContext,
    repo: dict[str, Any],
    exc: SealedGitopsError,
    *,
    interval: float,
    started: float,
) -> RepositoryOutcome:
    """The Repository's status after a failed check: Ready=False (and Stalled when only a
    change of the spec helps), the last good artifact kept; retry with backoff."""
    meta = repo.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    generation = meta.get("generation")
    status = dict(repo.get("status") or {})
    memory = ctx.repository_memory(namespace, name)
    memory.failures += 1
    ctx.metrics.fetches.labels(result="failure").inc()
    reason = _reason(exc)
    conditions = failure_conditions(
        status.get("conditions"),
        reason=reason,
        message=str(exc),
        generation=generation,
        stalled=isinstance(exc, ConfigError),
    )
    failed_status: dict[str, Any] = {"conditions": conditions, "observedGeneration": generation}
    update_status(ctx.client, "Repository", repo, failed_status)
    log.warning("Repository %s/%s: %s", namespace, name, exc)
    ctx.metrics.observe_reconcile("Repository", "failure", started=started)
    retry = ctx.backoff(memory.failures, base=min(interval, 30.0))
    return RepositoryOutcome(requeue_after=retry)


def reconcile_repository(ctx: OperatorContext, repo: dict[str, Any]) -> RepositoryOutcome:
    """One look at the remote; fetches, verifies and publishes a new commit when there is one."""
    meta = repo.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    generation = meta.get("generation")
    status = dict(repo.get("status") or {})
    memory = ctx.repository_memory(namespace, name)
    try:
        # Parsed once, here: every name is checked before a request is sent with it.
        spec = RepositorySpec.parse(repo)
    except ConfigError as exc:
        return _failed(ctx, repo, exc, interval=60.0, started=time.monotonic())
    interval = spec.interval
    if spec.suspend:
        return RepositoryOutcome(requeue_after=interval)
    started = time.monotonic()
    current = status.get("artifact") or {}
    try:
        source = repository_source(ctx, spec)
        commit = check(
            source.url,
            source.ref,
            source.auth,
            timeout=source.timeout,
            schemes=ctx.settings.allowed_schemes,
        )
        unchanged = commit == current.get("commit") and generation == status.get(
            "observedGeneration"
        )
        if unchanged:
            artifact_doc = current
            ctx.metrics.fetches.labels(result="unchanged").inc()
        else:
            artifact = git_fetch(
                source.url,
                source.ref,
                source.auth,
                timeout=source.timeout,
                cache_dir=ctx.cache_dir,
                verify=source.verification,
                schemes=ctx.settings.allowed_schemes,
            )
            artifact_doc = artifact_status(artifact)
            ctx.metrics.fetches.labels(result="fetched").inc()
    except SealedGitopsError as exc:
        return _failed(ctx, repo, exc, interval=interval, started=started)

    memory.failures = 0
    revision = str(artifact_doc.get("revision", ""))
    conditions = set_condition(
        status.get("conditions"),
        type_=READY,
        status=True,
        reason=Reason.SUCCEEDED,
        message=f"stored artifact for revision {revision}",
        generation=generation,
    )
    conditions = remove_condition(remove_condition(conditions, STALLED), RECONCILING)
    changed = artifact_doc is not current and revision != current.get("revision")
    new_status: dict[str, Any] = {"conditions": conditions, "observedGeneration": generation}
    if artifact_doc is not current:
        new_status["artifact"] = artifact_doc
    update_status(ctx.client, "Repository", repo, new_status)
    if changed:
        log.info("Repository %s/%s: new revision %s", namespace, name, revision)
    ctx.metrics.observe_reconcile("Repository", "success", started=started)
    return RepositoryOutcome(requeue_after=interval, new_revision=revision if changed else None)
