"""Where a Sync's objects may go: target namespace, defaults, and the tenancy rule.

Why a phase of its own: invariant 4 says a Sync writes only into the namespaces it is allowed to.
With ``serviceAccountName`` the API server's RBAC decides (the Sync acts as that account). Without
it the operator decides as well: namespaced objects only in the Sync's own namespace or in the
operator's allow-list, cluster-scoped objects only when the allow-list is ``*``. The check runs on
the whole revision before anything is applied. Such a Sync is then written as the operator's
``--default-service-account`` of its namespace (as deployed), so RBAC decides too; only when that
setting is unset (tests, the demo) does the operator write with its own rights.

:func:`write_account` is the one place that says which account a Sync writes as (issue 11,
finding 14): never one of the accounts in ``kube-system`` and the other system namespaces, where
the controllers' accounts live, whatever RBAC an admin may have granted by mistake.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sealed_gitops.errors import ConfigError
from sealed_gitops.plan import ObjectId
from sealed_gitops.plan.order import CLUSTER_SCOPED_KINDS
from sealed_gitops.render.decrypt import RenderedObject
from sealed_gitops.render.placement import landing_namespace

if TYPE_CHECKING:
    # Only for annotations: context.py imports write_account from here.
    from sealed_gitops.cluster import Discovery
    from sealed_gitops.operator.context import OperatorContext
    from sealed_gitops.operator.settings import OperatorSettings

__all__ = ["SYSTEM_NAMESPACES", "TenancyRefused", "place_objects", "write_account"]

#: Namespaces whose ServiceAccounts the operator never acts as: kube-system holds the
#: controllers' accounts (namespace-controller, clusterrole-aggregation-controller, ...), each
#: with cluster-wide rights; the other two belong to the cluster, not to a tenant.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


class TenancyRefused(ConfigError):
    """Objects outside what a Sync without ``serviceAccountName`` may write (Ready reason
    AccessDenied; Stalled, since only a change of the spec, Git or the allow-list helps)."""

    code = "AccessDenied"


def write_account(
    settings: OperatorSettings, *, namespace: str, service_account: str | None
) -> str | None:
    """The ServiceAccount of ``namespace`` a Sync writes as, or None for the operator's own rights.

    The Sync's ``serviceAccountName``, else ``settings.default_service_account``; None only when
    both are unset (the explicit opt-out of tests and the demo). Refused in the system namespaces.
    """
    account = service_account or settings.default_service_account
    if account and namespace in SYSTEM_NAMESPACES:
        raise TenancyRefused(
            f"the operator never acts as a ServiceAccount of {namespace}; "
            f"a Sync there cannot be applied as {account}"
        )
    return account or None


def _namespaced(discovery: Discovery, obj: dict[str, Any]) -> bool:
    """Scope from API discovery; for kinds the server does not know yet, the built-in list."""
    kind = str(obj.get("kind", ""))
    resource = discovery.find(str(obj.get("apiVersion", "")), kind)
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
    discovery: Discovery,
) -> tuple[list[dict[str, Any]], dict[ObjectId, str]]:
    """The objects with their namespaces settled, and each one's source path.

    ``targetNamespace`` overrides the namespace of every namespaced object (as Flux does);
    otherwise a namespaced object without one goes to the Sync's namespace. ``discovery`` is
    the target cluster's (the operator's own, or a remote one: ``remote.py``); required, so a
    forgotten one cannot silently judge scopes by the other cluster's kinds.
    """
    allow = ctx.settings.target_namespace_allowlist
    placed: list[dict[str, Any]] = []
    sources: dict[ObjectId, str] = {}
    refused: list[str] = []
    for rendered in objects:
        obj = rendered.data
        if _namespaced(discovery, obj):
            meta = obj.get("metadata") or {}
            # The same rule the decrypt stage opened sealed values under (render/placement.py).
            wanted = (
                landing_namespace(
                    meta.get("namespace"),
                    target_namespace=target_namespace,
                    default_namespace=sync_namespace,
                )
                or sync_namespace
            )
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
