"""Small manifest builders shared by the cluster tests."""

from __future__ import annotations

import uuid
from typing import Any


def config_map(namespace: str, name: str, data: dict[str, str] | None = None,
               **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, **meta},
            "data": data if data is not None else {"k": "v"}}


def secret(namespace: str, name: str, values: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, **meta},
            "type": "Opaque", "stringData": values}


def namespace_object(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def crd(*, scope: str = "Namespaced") -> tuple[dict[str, Any], str]:
    """A CRD of a group unique to the test, and its group."""
    group = f"t{uuid.uuid4().hex[:8]}.sealed-gitops.io"
    body = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {"group": group, "scope": scope,
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                               "listKind": "WidgetList"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {
                                       "type": "object",
                                       "x-kubernetes-preserve-unknown-fields": True}}}]}}
    return body, group
