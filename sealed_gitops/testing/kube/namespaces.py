"""The life of a namespace: who may create in it, and when a deleted one finally goes.

A real cluster's namespace deletion is a small protocol that operators depend on: the namespace
turns ``Terminating`` at once, creates inside it are refused (403) from then on, its contents are
deleted (objects with finalizers linger with a ``deletionTimestamp`` until their controllers let
go), and only when nothing is left does the namespace itself disappear. This module keeps that
state; :class:`~sealed_gitops.testing.kube.objects.Objects` drives it.
"""

from __future__ import annotations

import copy
from typing import Any

from sealed_gitops.testing.kube.resources import Registry, ResourceType
from sealed_gitops.testing.kube.status import forbidden, not_found
from sealed_gitops.testing.kube.store import Store

__all__ = ["NAMESPACES", "Namespaces"]

NAMESPACES = ("", "namespaces")


class Namespaces:
    def __init__(self, *, store: Store, registry: Registry) -> None:
        self._store = store
        self._registry = registry
        self._terminating: set[str] = set()

    def check_create(self, rt: ResourceType, namespace: str, name: str) -> None:
        """404 for a create in a missing namespace, 403 in one being deleted."""
        if not rt.namespaced:
            return
        if self._store.get(NAMESPACES, "", namespace) is None:
            raise not_found("", "namespaces", namespace)
        if namespace in self._terminating:
            qualified = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
            raise forbidden(
                f'{qualified} "{name}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated",
                group=rt.group,
                resource=rt.plural,
                name=name,
            )

    def terminating(self, namespace: str) -> bool:
        return namespace in self._terminating

    def begin(self, namespace: str) -> list[tuple[ResourceType, dict[str, Any]]]:
        """Mark ``namespace`` as terminating; returns what is in it, to be deleted."""
        self._terminating.add(namespace)
        contents = []
        for rt in list(self._registry.all()):
            # one entry per stored resource: versions of a CRD share their objects
            if rt.namespaced and self._registry.first(*rt.key) is rt:
                contents += [(rt, obj) for obj in self._store.items(rt.key, namespace)]
        return contents

    def finish_if_empty(self, namespace: str) -> None:
        """Remove a terminating namespace once nothing is left in it."""
        if namespace not in self._terminating:
            return
        for rt in self._registry.all():
            if rt.namespaced and next(self._store.items(rt.key, namespace), None) is not None:
                return
        self._terminating.discard(namespace)
        stored = self._store.get(NAMESPACES, "", namespace)
        if stored is not None:
            final = copy.deepcopy(stored)
            final["metadata"]["resourceVersion"] = str(self._store.next_rv())
            final["spec"] = {"finalizers": []}  # what the namespace controller clears last
            self._store.remove(NAMESPACES, final)
