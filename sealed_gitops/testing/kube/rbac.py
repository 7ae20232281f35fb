"""RBAC for the emulator: Roles, ClusterRoles and their bindings, evaluated like the real server.

Why this module exists: invariant 4 of the architecture ("a Sync writes only into the namespaces it
is allowed to, as the identity it is given") can only be tested against a server that says 403 when
a real one would. This is the RBAC authorizer of kube-apiserver restated: a request is allowed when
any rule reachable from a binding whose subjects include the user covers its verb, API group,
resource (``resource/subresource``, ``*``, ``*/subresource``) and name; members of
``system:masters`` are always allowed. Nothing is denied explicitly (RBAC has no deny rules).

Objects are read through a ``lister`` callable so this module knows nothing about the emulator's
storage; the snapshot built from them is cached per version of the RBAC objects when the caller
can say which version they are at (``version=``), so authorization stays cheap however many
requests are served.
Aggregated ClusterRoles (``aggregationRule``) are resolved here, since no controller runs to
fill their rules in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sealed_gitops.testing.kube.auth import UserInfo, service_account_username

__all__ = [
    "MASTERS_GROUP",
    "RBAC_GROUP",
    "RBAC_PLURALS",
    "Authorizer",
    "Lister",
    "bootstrap_policy",
    "forbidden_message",
    "forbidden_status",
    "impersonation_checks",
]

RBAC_GROUP = "rbac.authorization.k8s.io"

#: the RBAC kinds and their resource names, as the store and the lister know them
RBAC_PLURALS = {
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
}

#: Members of this group bypass RBAC, as the real server's privileged-group authorizer does.
MASTERS_GROUP = "system:masters"

#: ``lister(api_group, resource, namespace_or_None)`` returns stored objects; None lists all.
Lister = Callable[[str, str, "str | None"], list[dict[str, Any]]]


def forbidden_message(
    username: str,
    *,
    verb: str,
    api_group: str,
    resource: str,
    subresource: str,
    namespace: str | None,
) -> str:
    """The sentence a real server puts in a 403 for a resource request."""
    full = f"{resource}/{subresource}" if subresource else resource
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return f'User "{username}" cannot {verb} resource "{full}" in API group "{api_group}" {scope}'


def forbidden_status(
    *, api_group: str, resource: str, name: str | None, reason: str, kind: str | None = None
) -> dict[str, Any]:
    """A ``Status`` object for a 403, worded as the real server words it."""
    qualified = f"{resource}.{api_group}" if api_group else resource
    subject = f'{qualified} "{name}"' if name else qualified
    # As the real server's JSON: empty fields are left out (``omitempty``).
    details: dict[str, Any] = {"kind": kind or resource}
    if api_group:
        details["group"] = api_group
    if name:
        details["name"] = name
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"{subject} is forbidden: {reason}",
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


@dataclass(frozen=True)
class _Binding:
    kind: str  # RoleBinding or ClusterRoleBinding
    name: str
    namespace: str | None
    role_kind: str
    role_name: str
    subjects: tuple[Mapping[str, Any], ...]


@dataclass
class _Snapshot:
    cluster_roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[tuple[str, str], list[Mapping[str, Any]]] = field(default_factory=dict)
    cluster_bindings: list[_Binding] = field(default_factory=list)
    bindings: dict[str, list[_Binding]] = field(default_factory=dict)
    aggregated: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)


def _rules(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in obj.get("rules") or [] if isinstance(r, Mapping)]


def _binding(obj: Mapping[str, Any], kind: str) -> _Binding:
    meta = obj.get("metadata") or {}
    ref = obj.get("roleRef") or {}
    return _Binding(
        kind=kind,
        name=str(meta.get("name", "")),
        namespace=meta.get("namespace"),
        role_kind=str(ref.get("kind", "")),
        role_name=str(ref.get("name", "")),
        subjects=tuple(s for s in obj.get("subjects") or [] if isinstance(s, Mapping)),
    )


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _build(lister: Lister) -> _Snapshot:
    snap = _Snapshot()
    for obj in lister(RBAC_GROUP, "clusterroles", None):
        snap.cluster_roles[str((obj.get("metadata") or {}).get("name", ""))] = obj
    for obj in lister(RBAC_GROUP, "roles", None):
        meta = obj.get("metadata") or {}
        snap.roles[(str(meta.get("namespace", "")), str(meta.get("name", "")))] = _rules(obj)
    snap.cluster_bindings = [
        _binding(o, "ClusterRoleBinding") for o in lister(RBAC_GROUP, "clusterrolebindings", None)
    ]
    for obj in lister(RBAC_GROUP, "rolebindings", None):
        b = _binding(obj, "RoleBinding")
        snap.bindings.setdefault(b.namespace or "", []).append(b)
    # Aggregation: the union of the rules of every ClusterRole a selector picks, plus its own.
    for name, obj in snap.cluster_roles.items():
        selectors = (obj.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        if not selectors:
            continue
        rules = list(_rules(obj))
        for other_name, other in snap.cluster_roles.items():
            labels = (other.get("metadata") or {}).get("labels") or {}
            if other_name != name and any(_selector_matches(s, labels) for s in selectors):
                rules.extend(_rules(other))
        snap.aggregated[name] = rules
    return snap


def _subject_applies(subject: Mapping[str, Any], user: UserInfo, binding_ns: str | None) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == user.username)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        # A RoleBinding's ServiceAccount subject without a namespace means the binding's own.
        namespace = subject.get("namespace") or binding_ns or ""
        return service_account_username(str(namespace), str(name)) == user.username
    return False


def _has(values: Iterable[Any], wanted: str) -> bool:
    return any(v in ("*", wanted) for v in values)


def _rule_allows(
    rule: Mapping[str, Any],
    *,
    verb: str,
    api_group: str,
    resource: str,
    subresource: str,
    name: str | None,
) -> bool:
    if not _has(rule.get("verbs") or [], verb) or not _has(rule.get("apiGroups") or [], api_group):
        return False
    combined = f"{resource}/{subresource}" if subresource else resource
    resources = rule.get("resources") or []
    if not any(
        r in ("*", combined) or (subresource and r == f"*/{subresource}") for r in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    # A rule limited to names never covers a request without one (list, create, watch all).
    return not names or (name is not None and name in names)


class Authorizer:
    """Answers "may this user do this?" from the RBAC objects in the emulator's store."""

    def __init__(self, *, lister: Lister, version: Callable[[], object] | None = None) -> None:
        self._lister = lister
        self._version = version
        self._lock = threading.Lock()
        self._cached: tuple[object, _Snapshot] | None = None

    def _snapshot(self) -> _Snapshot:
        if self._version is None:
            return _build(self._lister)
        current = self._version()
        with self._lock:
            if self._cached is not None and self._cached[0] == current:
                return self._cached[1]
        snap = _build(self._lister)
        with self._lock:
            self._cached = (current, snap)
        return snap

    def _role_rules(
        self, snap: _Snapshot, binding: _Binding, errors: list[str]
    ) -> list[Mapping[str, Any]]:
        if binding.role_kind == "ClusterRole":
            if binding.role_name in snap.aggregated:
                return snap.aggregated[binding.role_name]
            role = snap.cluster_roles.get(binding.role_name)
            if role is None:
                errors.append(f'clusterrole.{RBAC_GROUP} "{binding.role_name}" not found')
                return []
            return _rules(role)
        if binding.role_kind == "Role" and binding.namespace:
            rules = snap.roles.get((binding.namespace, binding.role_name))
            if rules is None:
                errors.append(f'role.{RBAC_GROUP} "{binding.role_name}" not found')
                return []
            return rules
        return []

    def authorize(
        self,
        user: UserInfo,
        *,
        verb: str,
        api_group: str,
        resource: str,
        subresource: str,
        namespace: str | None,
        name: str | None,
    ) -> tuple[bool, str]:
        """(allowed, reason). On denial the reason is the real server's 403 sentence."""
        if MASTERS_GROUP in user.groups:
            return True, f"allowed: member of {MASTERS_GROUP}"
        snap = self._snapshot()
        errors: list[str] = []
        candidates: list[_Binding] = [
            b
            for b in snap.cluster_bindings
            if any(_subject_applies(s, user, None) for s in b.subjects)
        ]
        if namespace:
            candidates += [
                b
                for b in snap.bindings.get(namespace, [])
                if any(_subject_applies(s, user, namespace) for s in b.subjects)
            ]
        for binding in candidates:
            for rule in self._role_rules(snap, binding, errors):
                if _rule_allows(
                    rule,
                    verb=verb,
                    api_group=api_group,
                    resource=resource,
                    subresource=subresource,
                    name=name,
                ):
                    where = f' in namespace "{binding.namespace}"' if binding.namespace else ""
                    return True, (
                        f'RBAC: allowed by {binding.kind} "{binding.name}"{where} of '
                        f'{binding.role_kind} "{binding.role_name}" to User "{user.username}"'
                    )
        message = forbidden_message(
            user.username,
            verb=verb,
            api_group=api_group,
            resource=resource,
            subresource=subresource,
            namespace=namespace,
        )
        if errors:
            message = f"{message}: RBAC: [{', '.join(errors)}]"
        return False, message


def impersonation_checks(target: UserInfo) -> list[dict[str, Any]]:
    """The authorization requests the real server makes before honouring impersonation.

    Each entry holds the keyword arguments for :meth:`Authorizer.authorize` (verb ``impersonate``)
    that the *caller* must pass; all must be allowed. A service-account username is checked as
    ``serviceaccounts`` in its namespace, any other as ``users``; each group and the uid follow.
    """

    def check(group: str, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        return {
            "verb": "impersonate",
            "api_group": group,
            "resource": resource,
            "subresource": "",
            "namespace": namespace,
            "name": name,
        }

    prefix = "system:serviceaccount:"
    implied = {"system:authenticated"}
    if target.username.startswith(prefix):
        namespace, _, sa_name = target.username[len(prefix) :].partition(":")
        checks = [check("", "serviceaccounts", namespace, sa_name)]
        implied |= {"system:serviceaccounts", f"system:serviceaccounts:{namespace}"}
    else:
        checks = [check("", "users", None, target.username)]
    # Groups the server adds by itself are not something the caller asked for.
    checks += [check("", "groups", None, g) for g in target.groups if g not in implied]
    if target.uid:
        checks.append(check("authentication.k8s.io", "uids", None, target.uid))
    return checks


_DEFAULTS_META = {
    "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
    "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
}


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    meta = {"name": name, **_DEFAULTS_META}
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": meta,
        "rules": rules,
    }


def _cluster_binding(name: str, group: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, **_DEFAULTS_META},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": group}],
    }


_READ = ["get", "list", "watch"]
_ALL = [*_READ, "create", "delete", "deletecollection", "patch", "update"]
# The namespaced kinds the user-facing roles cover, by API group (the emulator's built-ins).
_USER_KINDS: dict[str, list[str]] = {
    "": ["configmaps", "services", "serviceaccounts", "events", "secrets"],
    "apps": ["deployments", "statefulsets", "daemonsets"],
    "batch": ["jobs", "cronjobs"],
    "networking.k8s.io": ["ingresses"],
}


def bootstrap_policy() -> list[dict[str, Any]]:
    """The default RBAC objects every real cluster starts with, trimmed to what tests need.

    ``cluster-admin`` bound to ``system:masters``; the self-review and discovery roles bound to
    ``system:authenticated`` (so any user may ask "can I?" and read discovery);
    ``system:auth-delegator`` (TokenReview and SubjectAccessReview, what Vault's reviewer needs,
    left unbound as on a real cluster); and flattened ``view`` / ``edit`` / ``admin`` for the
    built-in namespaced kinds (aggregated on a real cluster; ``view`` excludes Secrets there too).
    """
    view = [_rule([g], [r for r in rs if r != "secrets"], _READ) for g, rs in _USER_KINDS.items()]
    view.append(_rule([""], ["namespaces"], _READ))
    edit = [*view, *(_rule([g], rs, _ALL) for g, rs in _USER_KINDS.items())]
    admin = [*edit, _rule([RBAC_GROUP], ["roles", "rolebindings"], _ALL)]
    discovery = ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version"]
    self_reviews = ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]
    return [
        _cluster_role(
            "cluster-admin",
            [_rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"], "verbs": ["*"]}],
        ),
        _cluster_role(
            "system:basic-user",
            [
                _rule(["authorization.k8s.io"], self_reviews, ["create"]),
                _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
            ],
        ),
        _cluster_role("system:discovery", [{"nonResourceURLs": discovery, "verbs": ["get"]}]),
        _cluster_role(
            "system:auth-delegator",
            [
                _rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
                _rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
            ],
        ),
        _cluster_role("view", view),
        _cluster_role("edit", edit),
        _cluster_role("admin", admin),
        _cluster_binding("cluster-admin", MASTERS_GROUP),
        _cluster_binding("system:basic-user", "system:authenticated"),
        _cluster_binding("system:discovery", "system:authenticated"),
    ]
