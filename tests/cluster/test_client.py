"""The client factory: bad configuration is a ConfigError, groups are impersonated one by one."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sealed_gitops.cluster import Identity, KubeClient, connect
from sealed_gitops.errors import ApiForbidden, ConfigError


@pytest.mark.parametrize(
    "content",
    [None, "not: [a, kubeconfig", "apiVersion: v1\nkind: Config\nclusters: []\n"],
    ids=["missing", "malformed", "empty"],
)
def test_unusable_kubeconfig_is_a_config_error(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match="kubeconfig"):
        connect(path)


def test_in_cluster_outside_a_pod_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="in-cluster"):
        connect(in_cluster=True)


@pytest.mark.e2e
def test_every_impersonated_group_is_sent(
    kube: KubeClient, kubeconfig: Path, namespace: str
) -> None:
    """Rights bound to the second of two groups work: the groups are not folded into one."""
    group = f"readers-{uuid.uuid4().hex[:6]}"
    kube.request("POST",
                 f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
                 body={"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                       "metadata": {"name": "readers"},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                   "kind": "ClusterRole", "name": "view"},
                       "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                     "name": group}]},
                 action="create", what="RoleBinding")
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for groups, allowed in (((), False), (("other", group), True)):
        client = connect(kubeconfig, identity=Identity("someone", groups), timeout=10)
        try:
            if allowed:
                assert "items" in client.request("GET", path, action="list", what="configmaps")
            else:
                with pytest.raises(ApiForbidden):
                    client.request("GET", path, action="list", what="configmaps")
        finally:
            client.close()


def test_impersonating_shares_the_connection_and_counts(kube: KubeClient) -> None:
    other = kube.impersonating(Identity("someone"))
    assert other.api is kube.api
    assert other.counts is kube.counts
    assert other.identity == Identity("someone")
    assert kube.identity is None
