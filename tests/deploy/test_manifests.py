"""What ``kubectl kustomize deploy/`` builds: its objects, the hardened pod, least-privilege RBAC.

These read the built manifests, so they hold whatever overlay mechanics kustomize applied (the
namespace transformer, labels, the image override), not just the source files.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.conftest import NAMESPACE, OPERATOR_SA, find

EXPECTED = [
    ("Namespace", NAMESPACE),
    ("CustomResourceDefinition", "repositories.sealed-gitops.io"),
    ("CustomResourceDefinition", "syncs.sealed-gitops.io"),
    ("CustomResourceDefinition", "keyrings.sealed-gitops.io"),
    ("ServiceAccount", OPERATOR_SA),
    ("ClusterRole", "sealed-gitops-operator"),
    ("ClusterRoleBinding", "sealed-gitops-operator"),
    ("ClusterRole", "sealed-gitops-applier"),
    ("ClusterRole", "sealed-gitops-tenant"),
    ("ClusterRole", "sealed-gitops-keyrings"),
    ("RoleBinding", "sealed-gitops-keyrings"),
    ("Role", "sealed-gitops-leader-election"),
    ("RoleBinding", "sealed-gitops-leader-election"),
    ("Deployment", "sealed-gitops-operator"),
    ("Service", "sealed-gitops-operator"),
]
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}


@pytest.mark.parametrize(("kind", "name"), EXPECTED)
def test_build_holds(built: list[dict[str, Any]], kind: str, name: str) -> None:
    obj = find(built, kind, name)
    if kind in CLUSTER_SCOPED:
        assert "namespace" not in obj["metadata"]
    else:
        assert obj["metadata"]["namespace"] == NAMESPACE


def test_nothing_unexpected(built: list[dict[str, Any]]) -> None:
    assert sorted((d["kind"], d["metadata"]["name"]) for d in built) == sorted(EXPECTED)


def _pod(built: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(find(built, "Deployment", "sealed-gitops-operator")["spec"]["template"]["spec"])


def _container(built: list[dict[str, Any]]) -> dict[str, Any]:
    containers = _pod(built)["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _at(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj.get(part)
        if obj is None:
            return None
    return obj


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("securityContext.runAsNonRoot", True),
        ("securityContext.readOnlyRootFilesystem", True),
        ("securityContext.allowPrivilegeEscalation", False),
        ("securityContext.privileged", False),
        ("securityContext.capabilities.drop", ["ALL"]),
        ("securityContext.seccompProfile.type", "RuntimeDefault"),
        ("livenessProbe.httpGet.path", "/healthz"),
        ("livenessProbe.httpGet.port", "metrics"),
        ("readinessProbe.httpGet.path", "/readyz"),
        ("readinessProbe.httpGet.port", "metrics"),
        ("resources.requests.memory", "128Mi"),
        ("resources.limits.memory", "512Mi"),
        ("image", "sealed-gitops:0.1.0"),
    ],
)
def test_container(built: list[dict[str, Any]], path: str, expected: Any) -> None:
    assert _at(_container(built), path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("securityContext.runAsNonRoot", True),
        ("securityContext.seccompProfile.type", "RuntimeDefault"),
        ("serviceAccountName", OPERATOR_SA),
    ],
)
def test_pod(built: list[dict[str, Any]], path: str, expected: Any) -> None:
    assert _at(_pod(built), path) == expected


def test_pod_runs_as_a_non_root_uid(built: list[dict[str, Any]]) -> None:
    assert int(_pod(built)["securityContext"]["runAsUser"]) > 0
    assert "capabilities" not in _pod(built)["securityContext"]  # pod level cannot add any


def test_operator_arguments_and_replicas(built: list[dict[str, Any]]) -> None:
    deployment = find(built, "Deployment", "sealed-gitops-operator")
    assert deployment["spec"]["replicas"] == 2  # with leader election: one leads, one stands by
    args = _container(built)["args"]
    assert args[0] == "operator"
    assert "--all-namespaces" in args
    assert args[args.index("--bind-address") + 1] == "0.0.0.0"  # noqa: S104 - in a pod, on purpose


def test_pod_name_is_given_for_the_lease(built: list[dict[str, Any]]) -> None:
    env = {e["name"]: e for e in _container(built)["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_every_writable_path_is_a_volume(built: list[dict[str, Any]]) -> None:
    """With a read-only root, git's cache and temporary files need emptyDirs; /tmp in memory."""
    mounts = {m["mountPath"]: m["name"] for m in _container(built)["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod(built)["volumes"]}
    assert set(mounts) == {"/tmp", "/var/cache/sealed-gitops"}
    assert all("emptyDir" in volumes[name] for name in mounts.values())
    assert volumes[mounts["/tmp"]]["emptyDir"]["medium"] == "Memory"
    env = {e["name"]: e.get("value") for e in _container(built)["env"]}
    assert env["HOME"] == "/tmp"
    assert env["XDG_CACHE_HOME"] == "/var/cache/sealed-gitops"


def test_service_ports_match_the_container(built: list[dict[str, Any]]) -> None:
    service = find(built, "Service", "sealed-gitops-operator")
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports == {"metrics": 8080, "webhook": 9292}
    container_ports = {p["name"]: p["containerPort"] for p in _container(built)["ports"]}
    assert container_ports == ports
    labels = find(built, "Deployment", "sealed-gitops-operator")["spec"]["template"]["metadata"]
    assert service["spec"]["selector"].items() <= labels["labels"].items()


def _rules(built: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", rule)
        for d in built
        if d["kind"] in ("ClusterRole", "Role")
        for rule in d.get("rules") or ()
    ]


@pytest.mark.parametrize("field", ["verbs", "resources", "apiGroups"])
def test_no_wildcards_anywhere_in_rbac(built: list[dict[str, Any]], field: str) -> None:
    wild = [(role, rule) for role, rule in _rules(built) if "*" in (rule.get(field) or ())]
    assert wild == []


def test_no_wildcard_verbs_on_wildcard_resources(built: list[dict[str, Any]]) -> None:
    """The acceptance line, separately: never ``*`` verbs on ``*`` resources."""
    assert not [
        rule
        for _, rule in _rules(built)
        if "*" in rule.get("verbs", ()) and "*" in rule.get("resources", ())
    ]


def _grants(role: dict[str, Any], group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in role.get("rules") or ():
        if group in rule.get("apiGroups", ()) and resource in rule.get("resources", ()):
            verbs |= set(rule["verbs"])
    return verbs


@pytest.mark.parametrize(
    ("role", "group", "resource", "expected"),
    [
        # cluster-wide: no Secrets and no impersonation at all (issue 11, finding 14)...
        ("sealed-gitops-operator", "", "secrets", set()),
        ("sealed-gitops-operator", "", "serviceaccounts", set()),
        # ...only in a namespace an admin hands over (deploy/tenant binds this role there)
        ("sealed-gitops-tenant", "", "secrets", {"get"}),
        ("sealed-gitops-tenant", "", "serviceaccounts", {"impersonate"}),
        ("sealed-gitops-tenant", "", "users", set()),
        ("sealed-gitops-tenant", "", "groups", set()),
        ("sealed-gitops-operator", "", "users", set()),
        ("sealed-gitops-operator", "", "groups", set()),
        ("sealed-gitops-operator", "sealed-gitops.io", "syncs/status", {"get", "patch", "update"}),
        ("sealed-gitops-operator", "apiextensions.k8s.io", "customresourcedefinitions",
         {"get", "list", "watch"}),
        ("sealed-gitops-operator", "coordination.k8s.io", "leases", set()),
        # writing RBAC objects from Git would let a commit grant itself rights
        ("sealed-gitops-applier", "rbac.authorization.k8s.io", "roles", set()),
        ("sealed-gitops-applier", "rbac.authorization.k8s.io", "rolebindings", set()),
        ("sealed-gitops-applier", "", "namespaces", set()),
        ("sealed-gitops-applier", "", "pods", set()),
        ("sealed-gitops-applier", "", "secrets", {"get", "list", "create", "patch", "delete"}),
    ],
)
def test_cluster_role_grants(
    built: list[dict[str, Any]], role: str, group: str, resource: str, expected: set[str]
) -> None:
    assert _grants(find(built, "ClusterRole", role), group, resource) == expected


def test_leases_only_in_the_operator_namespace(built: list[dict[str, Any]]) -> None:
    role = find(built, "Role", "sealed-gitops-leader-election")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert _grants(role, "coordination.k8s.io", "leases") == {"get", "create", "update"}


@pytest.mark.parametrize(
    "binding",
    [
        ("ClusterRoleBinding", "sealed-gitops-operator"),
        ("RoleBinding", "sealed-gitops-leader-election"),
        ("RoleBinding", "sealed-gitops-keyrings"),
    ],
)
def test_bindings_name_only_the_operator(
    built: list[dict[str, Any]], binding: tuple[str, str]
) -> None:
    obj = find(built, *binding)
    assert obj["subjects"] == [
        {"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": NAMESPACE}
    ]
    assert obj["roleRef"]["name"] == binding[1]
    if binding[0] == "RoleBinding":
        assert obj["metadata"]["namespace"] == NAMESPACE


def test_the_cli_accepts_the_deployment_arguments(built: list[dict[str, Any]]) -> None:
    """deploy/ and ``sealed-gitops operator`` must not drift apart: parse the args, run nothing."""
    from sealed_gitops.cli.operator_cmds import operator_command

    args = list(_container(built)["args"])
    assert args[0] == "operator"
    ctx = operator_command.make_context("operator", args[1:])
    assert ctx.params["bind_address"] == "0.0.0.0"  # noqa: S104 - in a pod, on purpose
    assert ctx.params["all_namespaces"] is True
    assert ctx.params["leader_election"] is True
    assert str(ctx.params["cache_dir"]) == "/var/cache/sealed-gitops"
    # tenants' writes are made as their own namespace's account, never with the operator's rights
    assert ctx.params["default_service_account"] == "sealed-gitops-deployer"


def test_no_cluster_role_binding_grants_tenant_rights(built: list[dict[str, Any]]) -> None:
    """The applier and tenant roles are bound per namespace (deploy/tenant), never cluster-wide."""
    cluster_bound = {d["roleRef"]["name"] for d in built if d["kind"] == "ClusterRoleBinding"}
    assert cluster_bound == {"sealed-gitops-operator"}


def _repository_spec_schema(built: list[dict[str, Any]]) -> dict[str, Any]:
    crd = find(built, "CustomResourceDefinition", "repositories.sealed-gitops.io")
    version = crd["spec"]["versions"][0]
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"])


@pytest.mark.parametrize(
    ("field", "default"),
    [
        # no ref means the remote's HEAD in the operator; a schema default would hide that
        ("ref", None),
        # a verify block without mode means HEAD, in the schema and in the operator
        ("verify.mode", "HEAD"),
        ("interval", "1m"),
        ("timeout", "60s"),
        ("suspend", False),
    ],
)
def test_repository_schema_defaults_match_the_operator(
    built: list[dict[str, Any]], field: str, default: Any
) -> None:
    node: dict[str, Any] = {"properties": _repository_spec_schema(built)}
    for part in field.split("."):
        node = node["properties"][part]
    assert node.get("default") == default
