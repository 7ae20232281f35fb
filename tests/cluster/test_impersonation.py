"""A Sync with ``serviceAccountName`` acts as that account: without rights it gets ApiForbidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealed_gitops.cluster import Identity, KubeClient, Policy, Result, SyncRef, apply, connect
from sealed_gitops.errors import ApiForbidden, ConfigError
from tests.cluster.manifests import config_map

pytestmark = pytest.mark.e2e


def _grant(kube: KubeClient, namespace: str, account: str) -> None:
    rules = [{"apiGroups": [""], "resources": ["configmaps"],
              "verbs": ["get", "list", "create", "patch", "update"]}]
    kube.request("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
                 body={"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                       "metadata": {"name": "deployer"}, "rules": rules},
                 action="create", what="Role")
    kube.request("POST",
                 f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
                 body={"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                       "metadata": {"name": "deployer"},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                   "name": "deployer"},
                       "subjects": [{"kind": "ServiceAccount", "name": account,
                                     "namespace": namespace}]},
                 action="create", what="RoleBinding")


def test_service_account_without_rights_is_forbidden_then_allowed(
    kube: KubeClient, kubeconfig: Path, make_namespace: object, sync: SyncRef
) -> None:
    home = make_namespace()  # type: ignore[operator]
    elsewhere = make_namespace()  # type: ignore[operator]
    kube.request("POST", f"/api/v1/namespaces/{home}/serviceaccounts",
                 body={"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "deployer"}}, action="create", what="sa")
    acting = connect(kubeconfig, identity=Identity.service_account(home, "deployer"),
                     timeout=10)
    try:
        refused = apply(acting, [config_map(home, "c")], sync=sync)
        assert refused.failed == 1
        error = refused.outcomes[0].error
        assert isinstance(error, ApiForbidden)
        assert error.status == 403
        assert f"ConfigMap {home}/c" in str(error)

        _grant(kube, home, "deployer")
        both = [config_map(home, "c"), config_map(elsewhere, "c")]
        result = apply(acting, both, sync=sync, policy=Policy.ISOLATE)
        outcome = {o.id.namespace: o for o in result.outcomes}
        assert outcome[home].result is Result.CREATED
        assert outcome[elsewhere].result is Result.FAILED
        assert isinstance(outcome[elsewhere].error, ApiForbidden)
        created = kube.request("GET", f"/api/v1/namespaces/{home}/configmaps/c",
                               action="read", what="c")
        managers = [m["manager"] for m in created["metadata"]["managedFields"]]
        assert managers == ["sealed-gitops"]
    finally:
        acting.close()


@pytest.mark.parametrize(
    ("namespace", "name", "groups", "user"),
    [
        ("team-a", "deployer", (), "system:serviceaccount:team-a:deployer"),
        ("ns", "sa", ("extra",), "system:serviceaccount:ns:sa"),
    ],
)
def test_service_account_identity(
    namespace: str, name: str, groups: tuple[str, ...], user: str
) -> None:
    identity = Identity.service_account(namespace, name, groups=groups)
    assert (identity.user, identity.groups) == (user, groups)


@pytest.mark.parametrize(("namespace", "name"), [("", "sa"), ("ns", ""), ("a:b", "sa")])
def test_service_account_identity_refuses_bad_names(namespace: str, name: str) -> None:
    with pytest.raises(ConfigError):
        Identity.service_account(namespace, name)
