"""Where an object of a build will land in the cluster: the one rule, for decryption and tenancy.

Why this module exists: a sealed value is bound to a scope (``namespace/name`` or ``namespace``)
and must open only where its Secret will be written. The namespace an object lands in is not the
one written in its file: a Sync's ``targetNamespace`` replaces it, and a file that names none
lands in the Sync's namespace. The decrypt stage runs before the operator places objects, so it
must know that rule too; if it had its own copy of it, the two could drift and a value would be
checked against one namespace and written into another (issue 11, finding 2: a strict value
sealed for team-a/db, copied into team-b's repository, unsealed into team-b/db through
``targetNamespace``). So the rule lives here once, and ``operator/tenancy.py`` and
``render/decrypt.py`` both call :meth:`Placement.namespace_for`.

Whether an object is namespaced at all is the caller's question (the operator asks API
discovery); only namespaced objects are moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sealed_gitops.plan.order import CLUSTER_SCOPED_KINDS

__all__ = ["Placement", "landing_namespace"]


def landing_namespace(
    written: str | None, *, target_namespace: str | None, default_namespace: str | None
) -> str | None:
    """The namespace a namespaced object lands in, as Flux places it.

    ``target_namespace`` (a Sync's ``targetNamespace``) overrides what the file says; otherwise the
    file's own namespace; otherwise ``default_namespace`` (the Sync's namespace). None only when
    none of the three is known (``sealed-gitops build`` of a file without a namespace).
    """
    return target_namespace or written or default_namespace


@dataclass(frozen=True)
class Placement:
    """What decides the namespace of a build's objects: hashable, so it can key a memo.

    The default (both None) leaves every object where its file puts it, which is what a local
    ``sealed-gitops build`` without ``--target-namespace`` shows.
    """

    #: a Sync's ``spec.targetNamespace``: every namespaced object goes there
    target_namespace: str | None = None
    #: where a namespaced object whose file names no namespace goes (the Sync's namespace)
    default_namespace: str | None = None

    def namespace_for(self, written: str | None) -> str | None:
        """The namespace a namespaced object whose file says ``written`` lands in."""
        return landing_namespace(
            written,
            target_namespace=self.target_namespace,
            default_namespace=self.default_namespace,
        )

    def place(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """``obj`` as it lands, for the CLI's preview (the operator asks API discovery instead
        of the built-in list of cluster-scoped kinds, in ``operator/tenancy.py``)."""
        out = dict(obj)
        if str(obj.get("kind", "")) in CLUSTER_SCOPED_KINDS:
            return out
        meta = dict(obj.get("metadata") or {})
        landed = self.namespace_for(meta.get("namespace"))
        if landed and meta.get("namespace") != landed:
            out["metadata"] = {**meta, "namespace": landed}
        return out
