"""Fixtures of the key life-cycle tests: the operator e2e fixtures, plus KeyRing helpers.

The cluster, CRDs, namespaces, Git remote and operator threads are the operator tests' own
fixtures (imported below), so these tests run against the emulator, or a real cluster, the same
way. Keys are generated with 2048-bit RSA through the test-only annotation, to stay fast.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from sealed_gitops.cli.main import cli
from sealed_gitops.cluster import KubeClient
from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.crypto.sealed import Scope
from sealed_gitops.crypto.sealed_document import PlainSecret, seal_secret
from sealed_gitops.crypto.sealing_keys import load_public_key
from sealed_gitops.crypto.sops import encrypt_bytes
from tests.operator.conftest import (  # noqa: F401 (fixtures)
    Kube,
    Setup,
    _cluster,
    client,
    crds,
    kubeconfig,
    kubectl_path,
    operator_factory,
    ready,
    setup,
    wait_for,
)

#: the operator fixtures' helpers the test modules import from here
__all__ = ["Kube", "Setup", "ready", "wait_for"]

API = "/apis/sealed-gitops.io/v1alpha1"
TEST_BITS = {"sealed-gitops.io/test-key-bits": "2048"}


def keyring_path(namespace: str, name: str = "cluster") -> str:
    return f"{API}/namespaces/{namespace}/keyrings/{name}"


def create_keyring(
    api: KubeClient, namespace: str, name: str = "cluster", **spec: Any
) -> dict[str, Any]:
    return api.request(
        "POST",
        f"{API}/namespaces/{namespace}/keyrings",
        body={
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "KeyRing",
            "metadata": {"name": name, "namespace": namespace, "annotations": TEST_BITS},
            "spec": spec,
        },
        action="create",
        what="KeyRing",
    )


def keyring_status(kube: Kube, namespace: str, name: str = "cluster") -> dict[str, Any]:
    body = kube.get(keyring_path(namespace, name)) or {}
    return dict(body.get("status") or {})


def published(kube: Kube, namespace: str, name: str = "cluster") -> list[dict[str, Any]]:
    return list(keyring_status(kube, namespace, name).get("keys") or [])


def wait_keys(kube: Kube, namespace: str, name: str = "cluster", count: int = 1) -> list[Any]:
    return list(wait_for(
        lambda: (k := published(kube, namespace, name)) and len(k) >= count and k,
        timeout=30,
        what=f"{count} published key(s)",
    ))


def active(keys: list[dict[str, Any]]) -> dict[str, Any]:
    return next(k for k in keys if k["state"] == "active")


def sops_secret(recipient: str, name: str, namespace: str, **values: str) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": dict(values),
    }
    plain = yaml.safe_dump(doc, sort_keys=False).encode()
    return encrypt_bytes(plain, key_groups=[[AgeRecipient(recipient)]], file="x.yaml").decode()


def sealed_secret(certificate: str, name: str, namespace: str, **values: str) -> str:
    public = load_public_key(certificate.encode(), source="status")
    doc = seal_secret(
        PlainSecret(
            name=name, namespace=namespace, data={k: v.encode() for k, v in values.items()}
        ),
        recipients=[public],
        scope=Scope.STRICT,
    )
    return yaml.safe_dump(doc.to_manifest(), sort_keys=False)


def sync_spec(keyring_ref: dict[str, str], path: str = "./deploy") -> dict[str, Any]:
    return {
        "repositoryRef": {"name": "app"},
        "path": path,
        "interval": "1s",
        "retryInterval": "1s",
        "prune": True,
        "decryption": {"keyRingRef": keyring_ref},
    }


def create_vault_keyring(
    api: KubeClient, ns: str, *, address: str, auth: dict[str, Any], kv_path: str | None = None
) -> dict[str, Any]:
    """A KeyRing ``cluster`` that keeps its keys in Vault's KV v2 (by default under the
    namespace's own path), logging in with ``auth``."""
    return create_keyring(
        api,
        ns,
        backend="vault",
        vault={
            "address": address,
            "kvPath": kv_path or f"secret/data/sealed-gitops/{ns}/cluster",
            "auth": auth,
        },
    )


def vault_token_auth(env: Setup, token: str) -> dict[str, Any]:
    """Store ``token`` in the Secret ``vault-token``; returns the KeyRing auth block naming it."""
    env.secret_object("vault-token", {"token": token})
    return {"tokenSecretRef": {"name": "vault-token"}}


def create_repo_and_sync(
    env: Setup,
    keyring_ref: dict[str, str],
    *,
    namespace: str | None = None,
    path: str = "./deploy",
) -> None:
    """The Repository ``app`` on the test's remote and the Sync ``app`` that applies ``path``
    from it, opening files with the KeyRing ``keyring_ref`` names."""
    ns = namespace or env.namespace
    env.kube.create(
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Repository",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {"url": f"file://{env.remote}", "ref": {"branch": "main"}, "interval": "1s"},
        }
    )
    env.kube.create(
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Sync",
            "metadata": {"name": "app", "namespace": ns},
            "spec": sync_spec(keyring_ref, path=path),
        }
    )


def secret_values(kube: Kube, name: str, namespace: str) -> dict[str, str] | None:
    found = kube.secret(name, namespace)
    if found is None:
        return None
    return {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}


@pytest.fixture
def run_cli(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]  # noqa: F811
    """Run ``sealed-gitops`` in-process with the test cluster's kubeconfig, in a directory."""

    def run(args: list[str], *, cwd: Path, ok: bool = True) -> Result:
        monkeypatch.chdir(cwd)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def sa_token(api: Any, ns: str, name: str, audiences: list[str] | None = None) -> str:
    """A new ServiceAccount ``ns/name`` and a TokenRequest token for it (600 s)."""
    api.request(
        "POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
        body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        action="create", what="ServiceAccount",
    )  # fmt: skip
    spec: dict[str, Any] = {"expirationSeconds": 600}
    if audiences:
        spec["audiences"] = audiences
    answer = api.request(
        "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        action="create", what="TokenRequest",
    )  # fmt: skip
    return str(answer["status"]["token"])


def token_reviewer(api: Any, ns: str) -> str:
    """The token OpenBao's Kubernetes auth reviews tokens with: a ServiceAccount bound to
    ``system:auth-delegator``, as Vault's documentation sets it up (a real API server asks RBAC
    whether it may create TokenReviews; the emulator without RBAC does not ask)."""
    token = sa_token(api, ns, "token-reviewer")
    api.request(
        "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        body={
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{ns}-token-reviewer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "system:auth-delegator"},
            "subjects": [{"kind": "ServiceAccount", "name": "token-reviewer", "namespace": ns}],
        },
        action="create", what="ClusterRoleBinding",
    )  # fmt: skip
    return token
