"""Which object the operator is working on, for every log line written meanwhile.

Why: ``sealed-gitops logs NAME`` shows the operator's lines for one Sync (issue 15, Must 7, as
``flux logs --kind Kustomization --name``), so each JSON line must say which object it is about.
kopf's own per-object loggers say it (``k8s_ref``); the project's module loggers did not, and a
reconcile's lines ("cannot write status", "cannot record the keys") were anonymous. Each
object's reconcile loop is an asyncio task of its own, and ``asyncio.to_thread`` carries context
variables into its worker thread, so one :func:`about` at the top of the loop marks every line
the reconcile logs, in whatever module, without passing the object around.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["about", "current"]

_current: ContextVar[dict[str, str] | None] = ContextVar("sealed_gitops_log_object", default=None)


def about(kind: str, namespace: str, name: str) -> None:
    """Mark the rest of the current context (task, and the threads it starts) as working on
    ``kind namespace/name``."""
    _current.set({"kind": kind, "namespace": namespace, "name": name})


def current() -> dict[str, str] | None:
    """The object the current context works on (a copy), or None outside a reconcile loop."""
    found = _current.get()
    return dict(found) if found is not None else None
