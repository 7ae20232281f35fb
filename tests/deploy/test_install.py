"""``kubectl apply --server-side -k deploy/`` installs; the RBAC it installs is enough and no more.

On a throwaway cluster, per tier (the emulator with RBAC enforced, the real control plane built
from source) the manifests are applied for real; ``kubectl auth can-i --as``
then asks what the operator's ServiceAccount may do, and finally the operator itself runs with
that account's token, all namespaces, leader election on, and reconciles Syncs with and without
serviceAccountName: a missing right in deploy/ shows up here as a 403, an excess one in the
can-i table. On a real cluster (SEALED_GITOPS_E2E_KUBECONFIG) the build is applied with
``--dry-run=server`` only.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml

from sealed_gitops.cluster import KubeClient, connect
from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.crypto.sops import encrypt_bytes
from sealed_gitops.errors import ApiNotFound
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.operator.settings import OperatorSettings
from sealed_gitops.testing import KubeEmulator
from sealed_gitops.testing.gitserver import WorkRepo
from tests.conftest_control_plane import E2E_ENV
from tests.deploy.conftest import DEPLOY, NAMESPACE, OPERATOR_SA, kubectl_run

AS_OPERATOR = f"--as=system:serviceaccount:{NAMESPACE}:{OPERATOR_SA}"


def test_applies_to_a_real_cluster_as_a_dry_run(
    cluster: tuple[Path, KubeEmulator | None], kubectl: Path
) -> None:
    if not os.environ.get(E2E_ENV):
        pytest.skip("a throwaway cluster (the emulator, the control plane) gets a real install")
    kubectl_run(
        kubectl, cluster[0], "apply", "--server-side", "--dry-run=server", "-k", str(DEPLOY)
    )


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("namespace", NAMESPACE),
        ("deployment", "sealed-gitops-operator"),
        ("service", "sealed-gitops-operator"),
        ("serviceaccount", OPERATOR_SA),
        ("role", "sealed-gitops-leader-election"),
        ("clusterrole", "sealed-gitops-applier"),
        ("crd", "syncs.sealed-gitops.io"),
    ],
)
def test_installed_objects(installed: Path, kubectl: Path, kind: str, name: str) -> None:
    done = kubectl_run(
        kubectl, installed, "get", kind, name, "-n", NAMESPACE, "-o", "yaml",
        "--show-managed-fields",
    )
    obj = yaml.safe_load(done.stdout)
    managers = {m["manager"] for m in obj["metadata"].get("managedFields") or ()}
    assert "kubectl" in managers  # server-side apply recorded kubectl as the field manager


def test_crds_are_established(installed: Path, kubectl: Path) -> None:
    kubectl_run(
        kubectl, installed, "wait", "--for=condition=Established", "--timeout=20s",
        "crd/repositories.sealed-gitops.io", "crd/syncs.sealed-gitops.io",
        "crd/keyrings.sealed-gitops.io",
    )


def test_apply_again_changes_nothing(installed: Path, kubectl: Path) -> None:
    done = kubectl_run(kubectl, installed, "apply", "--server-side", "-k", str(DEPLOY))
    assert "configured" not in done.stdout and "created" not in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("verb", "resource", "namespace", "allowed"),
    [
        # Secrets of a namespace nobody handed over: none (docs/permissions.md; the handed-over
        # case and the full table are in tests/security/test_rbac.py)
        ("get", "secrets", "team-x", False),
        ("watch", "secrets", "team-x", False),
        ("list", "syncs.sealed-gitops.io", "team-x", True),
        ("patch", "syncs.sealed-gitops.io/status", "team-x", True),
        ("delete", "syncs.sealed-gitops.io", "team-x", False),
        ("create", "events", "team-x", True),
        ("watch", "customresourcedefinitions", None, True),
        ("create", "customresourcedefinitions", None, False),
        ("watch", "namespaces", None, True),
        ("delete", "namespaces", None, False),
        ("create", "leases.coordination.k8s.io", NAMESPACE, True),
        ("update", "leases.coordination.k8s.io", NAMESPACE, True),
        ("create", "leases.coordination.k8s.io", "team-x", False),
        # the KeyRing controller's Secrets: in the operator's namespace only
        ("create", "secrets", NAMESPACE, True),
        ("list", "secrets", NAMESPACE, True),
        ("patch", "configmaps", NAMESPACE, True),
        ("impersonate", "serviceaccounts", "team-x", False),
        ("impersonate", "users", None, False),
        ("impersonate", "groups", None, False),
        # no writes of tenants' kinds with the operator's own rights
        ("patch", "configmaps", "team-x", False),
        ("delete", "deployments.apps", "team-x", False),
        ("create", "rolebindings.rbac.authorization.k8s.io", "team-x", False),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", None, False),
        ("create", "pods", "team-x", False),
        ("create", "pods/exec", "team-x", False),
        ("*", "*", None, False),
    ],
)
def test_operator_rights(
    installed: Path,
    kubectl: Path,
    *,
    verb: str,
    resource: str,
    namespace: str | None,
    allowed: bool,
) -> None:
    where = ["-n", namespace] if namespace else []
    done = kubectl_run(
        kubectl, installed, "auth", "can-i", verb, resource, *where, AS_OPERATOR, check=False
    )
    assert done.stdout.strip() == ("yes" if allowed else "no"), (done.stdout, done.stderr)
    assert done.returncode == (0 if allowed else 1)


# -- the operator itself, as its ServiceAccount --------------------------------------------------


def _request(client: KubeClient, method: str, path: str, body: Any = None) -> Any:
    return client.request(method, path, body=body, action=method.lower(), what=path)


def _get(client: KubeClient, path: str) -> Any:
    try:
        return _request(client, "GET", path)
    except ApiNotFound:
        return None


def _wait(check: Callable[[], Any], *, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def _ready(client: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    sync = _get(client, f"/apis/sealed-gitops.io/v1alpha1/namespaces/{namespace}/syncs/{name}")
    for cond in ((sync or {}).get("status") or {}).get("conditions") or ():
        if cond["type"] == "Ready":
            return dict(cond)
    return None


@pytest.fixture
def admin(installed: Path) -> Iterator[KubeClient]:
    client = connect(installed)
    yield client
    client.close()


@pytest.fixture
def operator_kubeconfig(installed: Path, admin: KubeClient, tmp_path: Path) -> Path:
    """A kubeconfig holding a token the TokenRequest API issued for the operator's account."""
    answer = _request(
        admin,
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{OPERATOR_SA}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    path = tmp_path / "operator.kubeconfig"
    _token_kubeconfig(installed, path, token=answer["status"]["token"])
    return path


def _token_kubeconfig(admin_config: Path, path: Path, *, token: str) -> None:
    """The admin kubeconfig's cluster (server, CA) with a bearer token as the only user."""
    admin = yaml.safe_load(admin_config.read_text(encoding="utf-8"))
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    user_context = {"cluster": cluster["name"], "user": "operator"}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": user_context}],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)


@pytest.fixture
def tenant(
    admin: KubeClient, installed: Path, kubectl: Path, tmp_path: Path
) -> Iterator[tuple[str, WorkRepo, Path]]:
    """A namespace handed over to sealed-gitops: ``kubectl apply -n NS -k deploy/tenant``."""
    namespace = f"team-{uuid.uuid4().hex[:8]}"
    _request(admin, "POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    kubectl_run(
        kubectl, installed, "apply", "--server-side", "-n", namespace, "-k", str(DEPLOY / "tenant")
    )
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    yield namespace, WorkRepo(tmp_path / "work", remote=remote), remote
    with contextlib.suppress(Exception):
        _request(admin, "DELETE", f"/api/v1/namespaces/{namespace}")


def _sync(namespace: str, name: str, path: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sealed-gitops.io/v1alpha1",
        "kind": "Sync",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "repositoryRef": {"name": "app"},
            "path": path,
            "interval": "1s",
            "retryInterval": "1s",
            **spec,
        },
    }


def test_the_operator_works_with_exactly_the_installed_rights(
    admin: KubeClient,
    operator_kubeconfig: Path,
    tenant: tuple[str, WorkRepo, Path],
    tmp_path: Path,
) -> None:
    namespace, repo, remote = tenant
    identity = pyrage.x25519.Identity.generate()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "stringData": {"password": "canary-" + uuid.uuid4().hex},
    }
    encrypted = encrypt_bytes(
        yaml.safe_dump(secret).encode(),
        key_groups=[[AgeRecipient(str(identity.to_public()))]],
        file="db.yaml",
    ).decode()
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
              "data": {"mode": "fast"}}
    repo.write(
        {
            "own/db.yaml": encrypted,
            "own/settings.yaml": yaml.safe_dump(config),
            "as-sa/settings.yaml": yaml.safe_dump({**config, "metadata": {"name": "by-sa"}}),
            "foreign/settings.yaml": yaml.safe_dump(
                {**config, "metadata": {"name": "foreign", "namespace": NAMESPACE}}
            ),
        }
    )
    repo.commit("first")
    repo.push()

    base = f"/api/v1/namespaces/{namespace}"
    crs = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{namespace}"
    _request(admin, "POST", f"{base}/secrets", {
        "metadata": {"name": "sops-keys"},
        "data": {"identity.agekey": base64.b64encode(str(identity).encode()).decode()},
    })
    _request(admin, "POST", f"{base}/serviceaccounts", {"metadata": {"name": "deployer"}})
    _request(admin, "POST", f"{crs}/repositories", {
        "apiVersion": "sealed-gitops.io/v1alpha1",
        "kind": "Repository",
        "metadata": {"name": "app"},
        "spec": {"url": f"file://{remote}", "ref": {"branch": "main"}, "interval": "1s"},
    })
    _request(admin, "POST", f"{crs}/syncs", _sync(
        namespace, "own", "./own", decryption={"secretRef": {"name": "sops-keys"}}
    ))
    _request(admin, "POST", f"{crs}/syncs", _sync(
        namespace, "as-sa", "./as-sa", serviceAccountName="deployer"
    ))
    _request(admin, "POST", f"{crs}/syncs", _sync(namespace, "foreign", "./foreign"))

    settings = OperatorSettings(
        namespaces=[],  # --all-namespaces, as deployed
        kubeconfig=str(operator_kubeconfig),
        cache_dir=tmp_path / "cache",
        metrics_port=0,
        webhook_port=0,
        allowed_schemes=frozenset({"file"}),
        identity="pod-a",
        min_backoff=0.5,
        max_backoff=1.0,
        default_service_account="sealed-gitops-deployer",  # as deployment.yaml passes it
    )
    with OperatorThread(settings):
        # the Lease in the operator's namespace (the Role), held by this replica
        lease = _wait(
            lambda: _get(admin, f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}"
                         "/leases/sealed-gitops-operator"),
            what="the Lease",
        )
        assert lease["spec"]["holderIdentity"] == "pod-a"

        # without serviceAccountName: written as sealed-gitops-deployer, which deploy/tenant
        # bound to the applier role; decryption keys read with `get secrets` (deploy/tenant)
        ready = _wait(lambda: (_ready(admin, namespace, "own") or {}).get("status") == "True"
                      and _ready(admin, namespace, "own"), what="Sync own Ready")
        assert ready["reason"] == "Succeeded"
        assert _get(admin, f"{base}/secrets/db") is not None
        assert _get(admin, f"{base}/configmaps/settings") is not None

        # without serviceAccountName, another namespace: the operator's tenancy rule refuses it
        # before anything is applied (invariant 4), and the deployer could not write there either
        # (DependencyNotReady first, until the Repository publishes its first revision)
        foreign = _wait(
            lambda: (r := _ready(admin, namespace, "foreign"))
            and r.get("reason") != "DependencyNotReady"
            and r,
            what="Sync foreign status",
        )
        assert foreign["status"] == "False", foreign
        assert "may only write into its own namespace" in foreign["message"], foreign
        assert _get(admin, f"/api/v1/namespaces/{NAMESPACE}/configmaps/foreign") is None

        # with serviceAccountName: impersonation, and the tenant's RBAC decides (none yet)
        refused = _wait(
            lambda: (r := _ready(admin, namespace, "as-sa"))
            and r.get("reason") != "DependencyNotReady"
            and r,
            what="Sync as-sa status",
        )
        assert refused["status"] == "False", refused
        assert "forbidden" in refused["message"], refused
        assert f"system:serviceaccount:{namespace}:deployer" in refused["message"], refused
        assert _get(admin, f"{base}/configmaps/by-sa") is None

        _request(admin, "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
                 {"metadata": {"name": "deployer"}, "rules": [{
                     "apiGroups": [""], "resources": ["configmaps"],
                     "verbs": ["get", "list", "create", "patch", "delete"]}]})
        _request(admin, "POST",
                 f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
                 {"metadata": {"name": "deployer"},
                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                              "name": "deployer"},
                  "subjects": [{"kind": "ServiceAccount", "name": "deployer",
                                "namespace": namespace}]})
        _wait(lambda: (_ready(admin, namespace, "as-sa") or {}).get("status") == "True",
              what="Sync as-sa Ready after the tenant granted its account", timeout=30)
        assert _get(admin, f"{base}/configmaps/by-sa") is not None
