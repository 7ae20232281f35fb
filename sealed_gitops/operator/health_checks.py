"""``spec.wait`` and ``spec.healthChecks``: Ready=True only once what was applied is healthy.

Why a phase of its own: applying is not the same as running. With ``wait: true`` every object of
the revision must reach kstatus Current (:mod:`sealed_gitops.cluster.health`); with
``healthChecks`` the listed objects must (they need not be the Sync's own: a HelmRelease or a
Deployment another controller creates). The phase runs after apply and prune, as in Flux, and
shares ``spec.timeout`` with apply: the deadline is the apply's start plus the timeout. An object
that turns Failed ends the wait at once (no point waiting out the timeout on a stalled rollout);
otherwise, when the deadline passes, the report names each object that is not healthy and why.

The wait does not hold a worker thread for the whole timeout (the operator's threads are shared by
every Sync and Repository, and a 5-minute rollout would starve them): one reconcile waits at most
``PATIENCE`` seconds, then reports the wait as pending (Ready=False, reason Progressing) and the
Sync looks again ``POLL_AGAIN`` seconds later; the next reconcile re-applies (a no-op when nothing
changed) and continues the same wait, with the deadline of the first apply of that revision and
generation kept in the Sync's memory.

Reading follows the tenancy rule of writing: the objects are read as the identity the Sync
writes with, and a Sync that writes with the operator's own rights may check only the namespaces
it may write into (:mod:`.tenancy`), so a health check cannot be used to watch another tenant.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from sealed_gitops.cluster import Discovery, KubeClient
from sealed_gitops.cluster.health import Health, Status, read_health
from sealed_gitops.cluster.live import api_version_of
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.operator.context import OperatorContext, SyncMemory
from sealed_gitops.operator.specs import SyncSpec
from sealed_gitops.operator.tenancy import TenancyRefused, write_account
from sealed_gitops.plan import Inventory, ObjectId
from sealed_gitops.plan.ids import split_api_version
from sealed_gitops.redact import Identity, compose

__all__ = ["MAX_REPORTED", "POLL_AGAIN", "HealthReport", "await_health", "health_phase",
           "health_targets"]  # fmt: skip

#: Seconds between two reads of the objects while waiting: a rollout takes seconds to minutes.
POLL = 1.0
#: Most seconds one reconcile waits before it hands its thread back (see the module docstring).
PATIENCE = 5.0
#: Seconds until the next reconcile continues a pending wait.
POLL_AGAIN = 2.0
#: Objects named in a HealthCheckFailed message; the rest are counted.
MAX_REPORTED = 10


@dataclass(frozen=True)
class HealthReport:
    """What is not healthy, and why."""

    message: str
    #: True: the wait is over (HealthCheckFailed); False: still within the timeout, look again
    final: bool


def health_phase(
    ctx: OperatorContext,
    client: KubeClient,
    parsed: SyncSpec,
    inventory: Inventory,
    *,
    memory: SyncMemory,
    key: tuple[object, ...],
    deadline: float,
    discovery: Discovery,
) -> HealthReport | None:
    """The phase as the reconcile runs it: None when healthy (or nothing to check), else the
    report; a refused or unreadable target is a failed check too. ``key`` (revision and
    generation) says which wait this is: a wait already under way keeps its first ``deadline``.
    ``discovery`` is the target cluster's (the operator's own, or a remote one: ``remote.py``);
    required, so a forgotten one cannot silently read the other cluster's kinds."""
    if not (parsed.wait or parsed.health_checks):
        memory.health_wait = None
        return None
    if memory.health_wait is not None and memory.health_wait[0] == key:
        deadline = memory.health_wait[1]
    try:
        targets = health_targets(ctx, parsed, inventory, discovery=discovery)
        report = await_health(
            client,
            discovery,
            targets,
            deadline=deadline,
            timeout=parsed.timeout,
            patience=PATIENCE,
        )
    except SealedGitopsError as exc:
        report = HealthReport(compose("health check: ", str(exc)), final=True)
    memory.health_wait = (key, deadline) if report is not None and not report.final else None
    return report


def health_targets(
    ctx: OperatorContext,
    parsed: SyncSpec,
    inventory: Inventory,
    *,
    discovery: Discovery,
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
        resource = discovery.find(ref.api_version, ref.kind)
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
    patience: float | None = None,
) -> HealthReport | None:
    """None once every target is Current; a final report when one is Failed or ``deadline`` (a
    ``time.monotonic()`` value) passes; a pending one after ``patience`` seconds (or when the
    operator stops) while the deadline is still ahead. Reports name each object and why."""
    if not targets:
        return None
    until = deadline if patience is None else min(deadline, time.monotonic() + patience)
    while True:
        health = read_health(client, discovery, targets)
        failed = {oid: h for oid, h in health.items() if h.status is Status.FAILED}
        if failed:
            return HealthReport(_report("health check failed: ", failed), final=True)
        waiting = {oid: h for oid, h in health.items() if not h.current}
        if not waiting:
            return None
        now = time.monotonic()
        if now >= deadline:
            prefix = f"health check timed out after {_seconds(timeout)}: "
            return HealthReport(_report(prefix, waiting), final=True)
        # A stopping operator halts the client: stop waiting then, not at the deadline.
        if now >= until or client.halted.wait(min(POLL, until - now)):
            return HealthReport(_report("waiting for health checks: ", waiting), final=False)


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
