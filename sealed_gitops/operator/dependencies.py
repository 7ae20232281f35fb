"""``spec.dependsOn``: a Sync runs only after the Syncs it depends on are Ready at their latest
revision.

Why a phase of its own: ordering is what lets a platform team ship CRDs (or a namespace, or a
database) in one Sync and what uses them in another, as Flux's Kustomization ``dependsOn`` does.
The check runs before anything is fetched or applied; while a dependency is not ready the Sync is
Ready=False with reason DependencyNotReady naming it, and it is tried again every
``retryInterval`` (not with a growing backoff: the wait is expected, not a failure).

A dependency is ready when it has reconciled its latest generation, its Ready condition is True,
and its ``lastAppliedRevision`` is the revision its Repository publishes now (so a new push is
applied upstream before downstream). A dependency of another namespace follows the project's
cross-namespace rule (``--no-cross-namespace-refs``, the default, refuses it: a tenant must not
observe, or wait on, another tenant's objects). A cycle, including a Sync that depends on itself,
is a spec error: it would never run, so it is reported at once, not waited out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sealed_gitops.errors import ConfigError
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.resources import get_object
from sealed_gitops.operator.specs import DependencyRef, SyncSpec
from sealed_gitops.operator.sync_status import DependencyNotReady
from sealed_gitops.operator.tenancy import TenancyRefused
from sealed_gitops.plan import names

__all__ = ["check_dependencies"]

#: Most Syncs one cycle search reads: a dependency graph is small; a bound keeps a tenant's
#: long chain from costing unbounded requests per reconcile.
MAX_GRAPH = 200


def check_dependencies(ctx: OperatorContext, parsed: SyncSpec) -> None:
    """Return when every dependency of ``parsed`` is ready; else raise.

    Raises :class:`TenancyRefused` for a refused cross-namespace reference, ConfigError for a
    cycle, :class:`DependencyNotReady` naming the first dependency that is not ready and why.
    """
    if not parsed.depends_on:
        return
    own = parsed.meta.namespace
    if not ctx.settings.cross_namespace_refs:
        foreign = [d.describe() for d in parsed.depends_on if d.namespace != own]
        if foreign:
            raise TenancyRefused(
                f"spec.dependsOn names a Sync of another namespace ({', '.join(foreign[:5])}); "
                "this operator refuses cross-namespace references (--no-cross-namespace-refs)"
            )
    _refuse_cycles(ctx, parsed)
    for dep in parsed.depends_on:
        sync = get_object(ctx.client, "Sync", dep.namespace, dep.name)
        if sync is None:
            raise DependencyNotReady(f"dependency {dep.describe()} not found")
        why = _not_ready(ctx, dep, sync)
        if why:
            raise DependencyNotReady(f"dependency {dep.describe()} {why}")


def _ready_condition(sync: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for cond in (sync.get("status") or {}).get("conditions") or ():
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return cond
    return None


def _not_ready(ctx: OperatorContext, dep: DependencyRef, sync: Mapping[str, Any]) -> str | None:
    """Why ``sync`` is not ready (a phrase), or None when it is."""
    status = sync.get("status") or {}
    ready = _ready_condition(sync)
    if ready is None or ready.get("status") != "True":
        reason = f" ({ready.get('reason')})" if ready is not None and ready.get("reason") else ""
        return f"is not Ready{reason}"
    generation = (sync.get("metadata") or {}).get("generation")
    if generation is not None and status.get("observedGeneration") != generation:
        return "has not reconciled its latest spec yet"
    applied = str(status.get("lastAppliedRevision") or "")
    latest = _latest_revision(ctx, dep, sync)
    if latest is None:
        return "has no published Repository revision"
    if not _same_revision(applied, latest):
        return f"is at {applied or 'no revision'}, not yet at its Repository's {latest}"
    return None


def _latest_revision(
    ctx: OperatorContext, dep: DependencyRef, sync: Mapping[str, Any]
) -> str | None:
    ref = ((sync.get("spec") or {}).get("repositoryRef") or {}).get("name")
    if not names.is_subdomain(ref):
        return None
    repo = get_object(ctx.client, "Repository", dep.namespace, ref)
    artifact = ((repo or {}).get("status") or {}).get("artifact") or {}
    latest = artifact.get("revision") or artifact.get("commit")
    return str(latest) if latest else None


def _same_revision(applied: str, latest: str) -> bool:
    # A Sync records the Repository's revision (main@sha1:<sha>) as published; a bare commit
    # (an older status) matches the revision that ends with it.
    return (
        applied == latest
        or (bool(applied) and latest.endswith(f":{applied}"))
        or (bool(applied) and applied.endswith(f":{latest}"))
    )


def _dependencies_of(sync: Mapping[str, Any], namespace: str) -> list[tuple[str, str]]:
    """A live Sync's ``dependsOn`` as (namespace, name), skipping entries that are not names
    (that Sync reports its own spec error; here they only cannot close a cycle)."""
    out: list[tuple[str, str]] = []
    items = (sync.get("spec") or {}).get("dependsOn")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping):
            continue
        name, ns = item.get("name"), item.get("namespace") or namespace
        if names.is_subdomain(name) and names.is_label(ns):
            out.append((ns, name))
    return out


def _refuse_cycles(ctx: OperatorContext, parsed: SyncSpec) -> None:
    """ConfigError naming the cycle when following ``dependsOn`` leads back to this Sync."""
    me = (parsed.meta.namespace, parsed.meta.name)
    # Depth-first, remembering the path to each Sync so the message can show the loop.
    stack: list[tuple[tuple[str, str], tuple[tuple[str, str], ...]]] = [
        ((d.namespace, d.name), (me,)) for d in reversed(parsed.depends_on)
    ]
    seen: set[tuple[str, str]] = set()
    while stack and len(seen) < MAX_GRAPH:
        key, path = stack.pop()
        if key == me:
            loop = " -> ".join(f"{ns}/{name}" for ns, name in (*path, me))
            raise ConfigError(f"spec.dependsOn: dependency cycle {loop}")
        # Refused, an edge into another namespace closes no loop (that Sync never runs), and
        # following it would read another tenant's Syncs with the operator's rights.
        if key in seen or (key[0] != me[0] and not ctx.settings.cross_namespace_refs):
            continue
        seen.add(key)
        sync = get_object(ctx.client, "Sync", *key)
        if sync is None:
            continue
        for nxt in reversed(_dependencies_of(sync, key[0])):
            stack.append((nxt, (*path, key)))
