"""The order in which objects are applied.

Why this module exists: the API server refuses an object whose namespace does not exist yet, and a
custom resource whose CRD is not established; a Deployment that mounts a ConfigMap starts
crash-looping if it lands first. Flux applies in stages (definitions first, waited on, then the
rest) and sorts within a stage by a kind ranking inherited from kustomize's legacy order; we do the
same, and additionally put cluster-scoped objects before namespaced ones (a ClusterRole before the
RoleBinding that references it, a PriorityClass before Pods that use it).

Facts taken from fluxcd/pkg ``ssa/sort.go`` (itself from kustomize): the kinds ranked first and
last below, and the tie-break on group, kind, namespace, name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sealed_gitops.plan.ids import ObjectId

__all__ = [
    "CLUSTER_SCOPED_KINDS",
    "DEFINITION_KINDS",
    "KIND_ORDER_FIRST",
    "KIND_ORDER_LAST",
    "Stage",
    "apply_order",
    "apply_stages",
    "order_key",
]

#: Kinds that must exist (and be established) before anything else is applied.
DEFINITION_KINDS = frozenset({"Namespace", "CustomResourceDefinition"})

#: kustomize's legacy order, as used by Flux: these kinds first, in this order...
KIND_ORDER_FIRST: tuple[str, ...] = (
    "CustomResourceDefinition",
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "PriorityClass",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
)
#: ...and these last (webhooks would otherwise intercept objects of the same apply).
KIND_ORDER_LAST: tuple[str, ...] = (
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)

#: Built-in cluster-scoped kinds: the default answer when no discovery information is passed.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CSIDriver",
        "CSINode",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "FlowSchema",
        "IngressClass",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PodSecurityPolicy",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)

_RANK = {kind: i - len(KIND_ORDER_FIRST) for i, kind in enumerate(KIND_ORDER_FIRST)}
_RANK.update({kind: i + 1 for i, kind in enumerate(KIND_ORDER_LAST)})


@dataclass(frozen=True)
class Stage:
    """A group of objects applied together; the applier waits for one stage before the next.

    ``name`` is one of ``definitions``, ``cluster``, ``namespaced``.
    """

    name: str
    objects: tuple[Mapping[str, Any], ...]


def _sort_key(oid: ObjectId) -> tuple[int, str, str, str, str]:
    return (_RANK.get(oid.kind, 0), oid.group, oid.kind, oid.namespace, oid.name)


def _default_is_cluster_scoped(oid: ObjectId) -> bool:
    return oid.group in (
        "",
        "apiextensions.k8s.io",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "node.k8s.io",
        "networking.k8s.io",
        "admissionregistration.k8s.io",
        "apiregistration.k8s.io",
        "certificates.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "policy",
    ) and (oid.kind in CLUSTER_SCOPED_KINDS)


_STAGE_NAMES = ("definitions", "cluster", "namespaced")


def _stage_of(oid: ObjectId, scoped: Callable[[ObjectId], bool]) -> int:
    """0 definitions, 1 cluster-scoped, 2 namespaced: the index into :data:`_STAGE_NAMES`."""
    if oid.kind in DEFINITION_KINDS and oid.group in ("", "apiextensions.k8s.io"):
        return 0
    return 1 if scoped(oid) else 2


def order_key(
    oid: ObjectId, *, is_cluster_scoped: Callable[[ObjectId], bool] | None = None
) -> tuple[int, tuple[int, str, str, str, str]]:
    """The sort key of the apply order: the stage, then the order within it.

    For callers that hold ids beside their objects (``sorted(items, key=...)``), so nothing is
    identified twice; ``sorted`` is stable, as :func:`apply_order` is.
    """
    return _stage_of(oid, is_cluster_scoped or _default_is_cluster_scoped), _sort_key(oid)


def apply_stages(
    objects: Iterable[Mapping[str, Any]],
    *,
    is_cluster_scoped: Callable[[ObjectId], bool] | None = None,
) -> list[Stage]:
    """Split ``objects`` into the stages ``definitions``, ``cluster`` and ``namespaced``.

    ``is_cluster_scoped`` answers from API discovery when the caller has it (custom resources can
    be either); without it the built-in kinds in :data:`CLUSTER_SCOPED_KINDS` are cluster-scoped
    and everything else is namespaced. Empty stages are left out. Within a stage the order is the
    Flux/kustomize kind rank, then group, kind, namespace and name, so it never depends on the
    order of the input.
    """
    scoped = is_cluster_scoped or _default_is_cluster_scoped
    buckets: list[list[tuple[tuple[int, str, str, str, str], Mapping[str, Any]]]] = [[], [], []]
    for obj in objects:
        oid = ObjectId.of(obj)
        buckets[_stage_of(oid, scoped)].append((_sort_key(oid), obj))
    stages = []
    for name, items in zip(_STAGE_NAMES, buckets, strict=True):
        if items:
            items.sort(key=lambda item: item[0])
            stages.append(Stage(name, tuple(obj for _, obj in items)))
    return stages


def apply_order(
    objects: Sequence[Mapping[str, Any]],
    *,
    is_cluster_scoped: Callable[[ObjectId], bool] | None = None,
) -> list[Mapping[str, Any]]:
    """All objects in apply order: the stages of :func:`apply_stages`, flattened."""
    return sorted(
        objects, key=lambda obj: order_key(ObjectId.of(obj), is_cluster_scoped=is_cluster_scoped)
    )
