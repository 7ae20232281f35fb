"""The kinds the emulator serves, and the discovery documents that describe them.

One :class:`ResourceType` per (group, version, plural). The built-in table below is what issue 4
lists; a CustomResourceDefinition adds its own entries at run time (:meth:`Registry.add_crd`) and
takes them away when deleted. Discovery (``/api``, ``/apis``, ``/apis/G/V``) is generated from this
table, so a kind is servable exactly when kubectl can discover it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sealed_gitops.testing.kube.rbac import RBAC_GROUP

__all__ = ["BUILTIN", "Registry", "ResourceType"]

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One servable resource, as discovery describes it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    #: the resource has a ``status`` subresource: the main resource ignores status and vice versa
    status: bool = False
    #: the server bumps ``metadata.generation`` when anything outside metadata and status changes
    generation: bool = False
    verbs: tuple[str, ...] = _ALL_VERBS
    categories: tuple[str, ...] = ()
    #: subresources other than status, as (name, kind, verbs)
    extra_subresources: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    #: the CRD this type comes from (its name), empty for built-ins
    crd: str = ""
    #: strategic merge patch is only defined for built-in kinds
    strategic: bool = True
    #: a CRD version's ``additionalPrinterColumns`` (what ``kubectl get`` prints)
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    #: a CRD version's ``openAPIV3Schema``: what its objects are validated, pruned, defaulted by
    schema: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """What storage is keyed by: versions of one resource share their objects."""
        return (self.group, self.plural)

    def discovery_entries(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = [
            {
                "name": self.plural,
                "singularName": self.singular or self.kind.lower(),
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": list(self.verbs),
                **({"shortNames": list(self.short_names)} if self.short_names else {}),
                **({"categories": list(self.categories)} if self.categories else {}),
            }
        ]
        if self.status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        for name, kind, verbs in self.extra_subresources:
            entries.append(
                {
                    "name": f"{self.plural}/{name}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": kind,
                    "verbs": list(verbs),
                    **_SUBRESOURCE_GROUPS.get(name, {}),
                }
            )
        return entries


#: subresources whose kind lives in another API group, as discovery says
_SUBRESOURCE_GROUPS = {
    "token": {"group": "authentication.k8s.io", "version": "v1"},
    "scale": {"group": "autoscaling", "version": "v1"},
}
_SCALE = (("scale", "Scale", ("get", "patch", "update")),)


def _rt(
    group: str, version: str, plural: str, kind: str, namespaced: bool, **kw: Any
) -> ResourceType:
    return ResourceType(group, version, plural, kind, namespaced, **kw)


_APPS = {"status": True, "generation": True, "categories": ("all",)}

BUILTIN: tuple[ResourceType, ...] = (
    _rt(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        short_names=("ns",),
        status=True,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _rt("", "v1", "secrets", "Secret", True),
    _rt("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
    _rt(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        True,
        short_names=("sa",),
        extra_subresources=(("token", "TokenRequest", ("create",)),),
    ),
    _rt(
        "",
        "v1",
        "services",
        "Service",
        True,
        short_names=("svc",),
        status=True,
        categories=("all",),
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
    ),
    _rt("", "v1", "events", "Event", True, short_names=("ev",)),
    _rt("", "v1", "pods", "Pod", True, short_names=("po",), status=True, categories=("all",)),
    _rt("events.k8s.io", "v1", "events", "Event", True, short_names=("ev",)),
    _rt(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        short_names=("deploy",),
        extra_subresources=_SCALE,
        **_APPS,
    ),
    _rt(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        True,
        short_names=("sts",),
        extra_subresources=_SCALE,
        **_APPS,
    ),
    _rt("apps", "v1", "daemonsets", "DaemonSet", True, short_names=("ds",), **_APPS),
    _rt("batch", "v1", "jobs", "Job", True, **_APPS),
    _rt("batch", "v1", "cronjobs", "CronJob", True, short_names=("cj",), **_APPS),
    _rt(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        True,
        short_names=("ing",),
        status=True,
        generation=True,
    ),
    _rt(RBAC_GROUP, "v1", "roles", "Role", True),
    _rt(RBAC_GROUP, "v1", "rolebindings", "RoleBinding", True),
    _rt(RBAC_GROUP, "v1", "clusterroles", "ClusterRole", False),
    _rt(RBAC_GROUP, "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _rt(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        short_names=("crd", "crds"),
        status=True,
        generation=True,
        categories=("api-extensions",),
    ),
    _rt("coordination.k8s.io", "v1", "leases", "Lease", True),
    _rt("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False, verbs=("create",)),
    _rt(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        verbs=("create",),
    ),
)

#: group -> preferred version, in the order ``/apis`` lists groups
_GROUP_ORDER = (
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "batch",
    "networking.k8s.io",
    RBAC_GROUP,
    "apiextensions.k8s.io",
    "coordination.k8s.io",
)


@dataclass
class Registry:
    """Every servable resource, looked up by the path segments of a request."""

    _by_path: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _by_crd: dict[str, list[ResourceType]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rt in BUILTIN:
            self._by_path[(rt.group, rt.version, rt.plural)] = rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def first(self, group: str, plural: str) -> ResourceType | None:
        """Any served version of a resource (RBAC listers and cascades do not care which)."""
        for rt in self._by_path.values():
            if rt.group == group and rt.plural == plural:
                return rt
        return None

    def all(self) -> Iterable[ResourceType]:
        return self._by_path.values()

    def versions(self, group: str) -> list[str]:
        found: list[str] = []
        for rt in self._by_path.values():
            if rt.group == group and rt.version not in found:
                found.append(rt.version)
        return found

    def groups(self) -> list[str]:
        seen = [g for g in _GROUP_ORDER if self.versions(g)]
        for rt in self._by_path.values():
            if rt.group and rt.group not in seen:
                seen.append(rt.group)
        return seen

    def add_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        """Serve the resources a CRD declares (replacing what an older revision declared)."""
        self.remove_crd(crd["metadata"]["name"])
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        added: list[ResourceType] = []
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            subresources = version.get("subresources") or {}
            rt = ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular", names["kind"].lower()),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status="status" in subresources,
                generation=True,
                crd=crd["metadata"]["name"],
                strategic=False,
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            )
            self._by_path[(rt.group, rt.version, rt.plural)] = rt
            added.append(rt)
        self._by_crd[crd["metadata"]["name"]] = added
        return added

    def remove_crd(self, name: str) -> list[ResourceType]:
        removed = self._by_crd.pop(name, [])
        for rt in removed:
            self._by_path.pop((rt.group, rt.version, rt.plural), None)
        return removed

    # -- discovery documents -------------------------------------------------------------------

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        served = [
            rt for rt in self._by_path.values() if rt.group == group and rt.version == version
        ]
        if served and all(rt.crd for rt in served):
            # the apiextensions server lists a group's custom resources by name (so kubectl
            # prints `kubectl get CATEGORY` in that order)
            served.sort(key=lambda rt: rt.plural)
        entries = [entry for rt in served for entry in rt.discovery_entries()]
        if not entries:
            return None
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": entries,
        }

    def group_list(self) -> dict[str, Any]:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self.group_doc(g) for g in self.groups()],
        }

    def group_doc(self, group: str) -> dict[str, Any]:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in self.versions(group)]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": versions,
            "preferredVersion": versions[0] if versions else {},
        }
