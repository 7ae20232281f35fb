"""Where a Sync's objects may go: target namespace, defaults, and the tenancy rule.

Why a phase of its own: invariant 4 says a Sync writes only into the namespaces it is allowed to.
With ``serviceAccountName`` the API server's RBAC decides (the Sync acts as that account). Without
it, the operator itself would be writing, so the operator decides: namespaced objects only in the
Sync's own namespace or in the operator's allow-list, cluster-scoped objects only when the
allow-list is ``*``. The check runs on the whole revision before anything is applied.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from sealed_gitops.errors import ConfigError
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.plan import ObjectId
from sealed_gitops.plan.order import CLUSTER_SCOPED_KINDS
from sealed_gitops.render.decrypt import RenderedObject
from sealed_gitops.render.placement import landing_namespace

__all__ = ["TenancyRefused", "place_objects"]


class TenancyRefused(ConfigError):
    """Objects outside what a Sync without ``serviceAccountName`` may write (Ready reason
    AccessDenied; Stalled, since only a change of the spec, Git or the allow-list helps)."""

    code = "AccessDenied"


def _namespaced(ctx: OperatorContext, obj: dict[str, Any]) -> bool:
    """Scope from API discovery; for kinds the server does not know yet, the built-in list."""
    kind = str(obj.get("kind", ""))
    resource = ctx.discovery.find(str(obj.get("apiVersion", "")), kind)
    if resource is not None:
        return resource.namespaced
    return kind not in CLUSTER_SCOPED_KINDS


def place_objects(
    ctx: OperatorContext,
    objects: Sequence[RenderedObject],
    *,
    sync_namespace: str,
    target_namespace: str | None,
    service_account: str | None,
) -> tuple[list[dict[str, Any]], dict[ObjectId, str]]:
    """The objects with their namespaces settled, and each one's source path.

    ``targetNamespace`` overrides the namespace of every namespaced object (as Flux does);
    otherwise a namespaced object without one goes to the Sync's namespace.
    """
    allow = ctx.settings.target_namespace_allowlist
    placed: list[dict[str, Any]] = []
    sources: dict[ObjectId, str] = {}
    refused: list[str] = []
    for rendered in objects:
        obj = rendered.data
        if _namespaced(ctx, obj):
            meta = obj.get("metadata") or {}
            # The same rule the decrypt stage opened sealed values under (render/placement.py).
            wanted = landing_namespace(
                meta.get("namespace"),
                target_namespace=target_namespace,
                default_namespace=sync_namespace,
            ) or sync_namespace
            if meta.get("namespace") != wanted:
                obj = copy.copy(obj)
                obj["metadata"] = {**meta, "namespace": wanted}
            foreign = wanted != sync_namespace and "*" not in allow and wanted not in allow
            if not service_account and foreign:
                refused.append(f"{ObjectId.of(obj).describe()} (namespace {wanted})")
        elif not service_account and "*" not in allow:
            refused.append(f"{ObjectId.of(obj).describe()} (cluster-scoped)")
        placed.append(obj)
        sources[ObjectId.of(obj)] = rendered.file
    if refused:
        raise TenancyRefused(
            f"a Sync without serviceAccountName may only write into its own namespace "
            f"{sync_namespace}; refused: {', '.join(refused[:10])}"
            + (f" and {len(refused) - 10} more" if len(refused) > 10 else "")
        )
    return placed, sources
