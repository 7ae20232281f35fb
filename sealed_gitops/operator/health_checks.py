"""``spec.wait`` and ``spec.healthChecks``: Ready=True only once what was applied is healthy.

Why a phase of its own: applying is not the same as running. With ``wait: true`` every object of
the revision must reach kstatus Current (:mod:`sealed_gitops.cluster.health`); with
``healthChecks`` the listed objects must (they need not be the Sync's own: a HelmRelease or a
Deployment another controller creates). The phase runs after apply and prune, as in Flux, and
shares ``spec.timeout`` with apply: the deadline is the apply's start plus the timeout. An object
that turns Failed ends the wait at once (no point waiting out the timeout on a stalled rollout);
otherwise, when the deadline passes, the report names each object that is not healthy and why.

Reading follows the tenancy rule of writing: the objects are read as the identity the Sync
writes with, and a Sync that writes with the operator's own rights may check only the namespaces
it may write into (:mod:`.tenancy`), so a health check cannot be used to watch another tenant.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from sealed_gitops.cluster import Discovery, KubeClient
from sealed_gitops.cluster.health import Health, Status, read_health
from sealed_gitops.cluster.live import api_version_of
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.specs import SyncSpec
from sealed_gitops.operator.tenancy import TenancyRefused, write_account
from sealed_gitops.plan import Inventory, ObjectId
from sealed_gitops.plan.ids import split_api_version
from sealed_gitops.redact import Identity, compose

__all__ = ["MAX_REPORTED", "await_health", "health_phase", "health_targets"]

#: Seconds between two reads of the objects while waiting: a rollout takes seconds to minutes.
POLL = 1.0
#: Objects named in a HealthCheckFailed message; the rest are counted.
MAX_REPORTED = 10


def health_phase(
    ctx: OperatorContext,
    client: KubeClient,
    parsed: SyncSpec,
    inventory: Inventory,
    *,
    deadline: float,
    discovery: Discovery | None = None,
) -> str | None:
    """The phase as the reconcile runs it: None when healthy (or nothing to check), else the
    HealthCheckFailed message; a refused or unreadable target is a failed check too.
    ``discovery`` is the target cluster's (a remote one, ``remote.py``); the operator's by
    default."""
    if not (parsed.wait or parsed.health_checks):
        return None
    try:
        targets = health_targets(ctx, parsed, inventory, discovery=discovery)
        return await_health(
            client, discovery or ctx.discovery, targets, deadline=deadline, timeout=parsed.timeout
        )
    except SealedGitopsError as exc:
        return compose("health check: ", str(exc))


def health_targets(
    ctx: OperatorContext,
    parsed: SyncSpec,
    inventory: Inventory,
    *,
    discovery: Discovery | None = None,
) -> dict[ObjectId, str]:
    """What must be healthy (id -> apiVersion): the revision's objects with ``wait``, else the
    ``healthChecks`` (Flux ignores the list when ``wait`` is on); empty when neither is set."""
    if parsed.wait:
        return {e.id: api_version_of(e.id, e.version) for e in inventory.entries}
    targets: dict[ObjectId, str] = {}
    refused: list[str] = []
    own_rights = (
        write_account(
            ctx.settings,
            namespace=parsed.meta.namespace,
            service_account=parsed.service_account,
        )
        is None
    )
    allow = ctx.settings.target_namespace_allowlist
    for ref in parsed.health_checks:
        group, _ = split_api_version(ref.api_version)
        resource = (discovery or ctx.discovery).find(ref.api_version, ref.kind)
        namespaced = resource.namespaced if resource is not None else True
        oid = ObjectId(
            namespace=ref.namespace if namespaced else "", name=ref.name, group=group, kind=ref.kind
        )
        if own_rights and not (
            "*" in allow or (namespaced and _may_write(parsed, ref.namespace, allow))
        ):
            refused.append(oid.describe())
        targets[oid] = ref.api_version
    if refused:
        raise TenancyRefused(
            f"spec.healthChecks: a Sync without serviceAccountName may only check objects in "
            f"the namespaces it may write into; refused: {', '.join(refused[:MAX_REPORTED])}"
        )
    return targets


def _may_write(parsed: SyncSpec, namespace: str, allow: list[str]) -> bool:
    return namespace == parsed.meta.namespace or namespace in allow


def await_health(
    client: KubeClient,
    discovery: Discovery,
    targets: Mapping[ObjectId, str],
    *,
    deadline: float,
    timeout: float,
) -> str | None:
    """None once every target is Current; else, when one is Failed or ``deadline`` (a
    ``time.monotonic()`` value) passes, a message naming each unhealthy object and why."""
    if not targets:
        return None
    while True:
        health = read_health(client, discovery, targets)
        failed = {oid: h for oid, h in health.items() if h.status is Status.FAILED}
        if failed:
            return _report("health check failed: ", failed)
        waiting = {oid: h for oid, h in health.items() if not h.current}
        if not waiting:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            return _report(f"health check timed out after {_seconds(timeout)}: ", waiting)
        # A stopping operator halts the client: stop waiting then, not at the deadline.
        if client.halted.wait(min(POLL, left)):
            return _report("health check interrupted: ", waiting)


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _report(prefix: str, unhealthy: Mapping[ObjectId, Health]) -> str:
    """``prefix`` and each object as ``Kind/ns/name (Status: why)``; names are identities (from
    the API), the rest passes through redaction like any status text."""
    parts: list[str] = [prefix]
    shown = sorted(unhealthy.items())[:MAX_REPORTED]
    for index, (oid, health) in enumerate(shown):
        parts += ["; " if index else "", Identity(oid.describe()), f" ({health.status.value}: "]
        parts += [health.message[:200], ")"]
    more = len(unhealthy) - len(shown)
    if more > 0:
        parts.append(f"; and {more} more")
    return compose(*parts)
