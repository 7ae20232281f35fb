"""Unknown fields of built-in kinds, caught at the levels the emulator knows: top and metadata.

Why: kube-apiserver decodes a built-in object into its Go type, so a field the type lacks
(``dat:`` for ``data:`` in a ConfigMap, ``metadata.lables``) is dropped with a ``Warning`` under
``fieldValidation=Warn``, refused under ``Strict`` (what kubectl sends: 400 ``strict decoding
error: unknown field "dat"``), and fails server-side apply with the typed-patch 500 (``.dat: field
not declared in schema``), all observed on a kube-apiserver built from source. The operator
applies manifests from Git, where such typos live; storing them would let a test pass that fails
on a cluster. The emulator has no schemas of built-in kinds, so it knows each kind's top-level
fields and ObjectMeta's; deeper fields (``spec.replica``) are not checked (docs/emulator.md).
"""

from __future__ import annotations

from typing import Any

__all__ = ["OBJECT_META", "unknown_fields", "unknown_metadata"]

#: the fields of ObjectMeta (a custom resource's metadata is decoded into it too)
OBJECT_META = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_WORKLOAD = frozenset({"spec", "status"})
_CORE_EVENT = frozenset(
    {
        "involvedObject",
        "reason",
        "message",
        "source",
        "firstTimestamp",
        "lastTimestamp",
        "count",
        "type",
        "eventTime",
        "series",
        "action",
        "related",
        "reportingComponent",
        "reportingInstance",
    }
)
_EVENT = frozenset(
    {
        "eventTime",
        "series",
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
        "regarding",
        "related",
        "note",
        "type",
        "deprecatedSource",
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
        "deprecatedCount",
    }
)
_RBAC = "rbac.authorization.k8s.io"
#: (group, plural) -> top-level fields besides apiVersion, kind and metadata
_TOP: dict[tuple[str, str], frozenset[str]] = {
    ("", "configmaps"): frozenset({"data", "binaryData", "immutable"}),
    ("", "secrets"): frozenset({"data", "stringData", "type", "immutable"}),
    ("", "serviceaccounts"): frozenset(
        {"secrets", "imagePullSecrets", "automountServiceAccountToken"}
    ),
    ("", "namespaces"): _WORKLOAD,
    ("", "services"): _WORKLOAD,
    ("", "pods"): _WORKLOAD,
    ("", "events"): _CORE_EVENT,
    ("events.k8s.io", "events"): _EVENT,
    ("apps", "deployments"): _WORKLOAD,
    ("apps", "statefulsets"): _WORKLOAD,
    ("apps", "daemonsets"): _WORKLOAD,
    ("batch", "jobs"): _WORKLOAD,
    ("batch", "cronjobs"): _WORKLOAD,
    ("networking.k8s.io", "ingresses"): _WORKLOAD,
    (_RBAC, "roles"): frozenset({"rules"}),
    (_RBAC, "clusterroles"): frozenset({"rules", "aggregationRule"}),
    (_RBAC, "rolebindings"): frozenset({"subjects", "roleRef"}),
    (_RBAC, "clusterrolebindings"): frozenset({"subjects", "roleRef"}),
    ("apiextensions.k8s.io", "customresourcedefinitions"): _WORKLOAD,
    ("coordination.k8s.io", "leases"): frozenset({"spec"}),
}
_ALWAYS = frozenset({"apiVersion", "kind", "metadata"})


def unknown_fields(group: str, plural: str, obj: dict[str, Any], *, drop: bool) -> list[str]:
    """Paths of the fields the kind's Go type lacks (``dat``, ``metadata.foo``); ``drop`` them.

    Kinds the table does not list are checked in ``metadata`` only.
    """
    found: list[str] = []
    top = _TOP.get((group, plural))
    # in document order, as the decoder reports them
    for key in list(obj):
        if key == "metadata" and isinstance(obj[key], dict):
            found += unknown_metadata(obj[key], drop=drop)
        elif top is not None and key not in _ALWAYS and key not in top:
            found.append(key)
            if drop:
                del obj[key]
    return found


def unknown_metadata(meta: dict[str, Any], *, drop: bool) -> list[str]:
    """``metadata.X`` for each field ObjectMeta lacks; ``drop`` them."""
    found = [f"metadata.{key}" for key in meta if key not in OBJECT_META]
    if drop:
        for path in found:
            del meta[path.removeprefix("metadata.")]
    return found
