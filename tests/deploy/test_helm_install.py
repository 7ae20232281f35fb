"""``helm install`` of deploy/chart on a real kube-apiserver, our operator on the chart's rights,
and ``helm uninstall``.

A control plane of its own (etcd, kube-apiserver, kube-controller-manager built from source): the
session's control plane gets ``kubectl apply -k deploy/`` from tests/deploy/test_install.py, whose
cluster-wide objects have the same names, and Helm refuses to take over objects it did not make.
There is no kubelet or scheduler, so no pod runs: the test checks the objects the release made,
then runs ``sealed-gitops operator`` out of the cluster with a token the TokenRequest API issued
for the chart's ServiceAccount (all namespaces, leader election on, as the Deployment runs it) and
waits for one Sync to be applied; a right the chart's RBAC lacks shows up as a 403 there.

One test, in phases: install, objects, one reconcile, uninstall. They share one release, and
pytest-xdist may send the tests of a module to different workers, so they cannot be split safely.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sealed_gitops.cluster import KubeClient, connect
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.operator.settings import OperatorSettings
from sealed_gitops.testing.control_plane import Binaries, ControlPlane
from sealed_gitops.testing.gitserver import WorkRepo
from tests.deploy.conftest import DEPLOY, NAMESPACE, OPERATOR_SA, kubectl_run
from tests.deploy.helm_tool import CHART, Helm, helm_fixture
from tests.deploy.test_install import _get, _ready, _request, _sync, _wait

pytestmark = [pytest.mark.control_plane, pytest.mark.slow, pytest.mark.timeout(600)]

RELEASE = "sealed-gitops"
#: Where Helm keeps its release record; the chart's objects go to namespace.name.
RELEASE_NAMESPACE = "default"
#: What the release makes (besides the CRDs, which Helm installs from crds/ and never deletes).
OBJECTS = [
    ("namespace", NAMESPACE, None),
    ("serviceaccount", OPERATOR_SA, NAMESPACE),
    ("clusterrole", "sealed-gitops-operator", None),
    ("clusterrolebinding", "sealed-gitops-operator", None),
    ("clusterrole", "sealed-gitops-tenant", None),
    ("clusterrole", "sealed-gitops-applier", None),
    ("clusterrole", "sealed-gitops-keyrings", None),
    ("rolebinding", "sealed-gitops-keyrings", NAMESPACE),
    ("role", "sealed-gitops-leader-election", NAMESPACE),
    ("rolebinding", "sealed-gitops-leader-election", NAMESPACE),
    ("deployment", "sealed-gitops-operator", NAMESPACE),
    ("deployment", "sealed-gitops-operator-shard1", NAMESPACE),
    ("service", "sealed-gitops-operator", NAMESPACE),
]
CRDS = ["repositories.sealed-gitops.io", "syncs.sealed-gitops.io", "keyrings.sealed-gitops.io"]


@pytest.fixture(scope="module")
def plane(
    control_plane_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with ControlPlane.start(
        workdir=tmp_path_factory.mktemp("helm-plane"), binaries=control_plane_binaries
    ) as started:
        yield started


@pytest.fixture
def helm(tmp_path: Path) -> Helm:
    return helm_fixture(tmp_path / "helm-home")


def _exists(kubectl: Path, kubeconfig: Path, kind: str, name: str, namespace: str | None) -> bool:
    where = ["-n", namespace] if namespace else []
    done = kubectl_run(kubectl, kubeconfig, "get", kind, name, *where, "-o", "name", check=False)
    if done.returncode != 0:
        assert "NotFound" in done.stderr, done.stderr
    return done.returncode == 0


def test_install_reconcile_as_the_charts_account_and_uninstall(
    plane: ControlPlane, helm: Helm, kubectl: Path, tmp_path: Path
) -> None:
    kubeconfig = plane.kubeconfig_path
    base = ["--kubeconfig", str(kubeconfig), "--namespace", RELEASE_NAMESPACE]
    # -- install (with one shard, so the shard's Deployment is installed too) ----------------
    helm("install", RELEASE, str(CHART), *base, "--set-json", 'shards=[{"name": "shard1"}]')
    try:
        status = yaml.safe_load(helm("status", RELEASE, *base, "-o", "yaml").stdout)
        assert status["info"]["status"] == "deployed", status["info"]

        # -- the objects, each marked as the release's --------------------------------------
        for kind, name, namespace in OBJECTS:
            where = ["-n", namespace] if namespace else []
            obj = yaml.safe_load(
                kubectl_run(kubectl, kubeconfig, "get", kind, name, *where, "-o", "yaml").stdout
            )
            assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm", name
            assert obj["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE, name
        kubectl_run(
            kubectl, kubeconfig, "wait", "--for=condition=Established", "--timeout=30s",
            *(f"crd/{crd}" for crd in CRDS),
        )  # fmt: skip
        namespace_labels = yaml.safe_load(
            kubectl_run(kubectl, kubeconfig, "get", "namespace", NAMESPACE, "-o", "yaml").stdout
        )["metadata"]["labels"]
        assert namespace_labels["pod-security.kubernetes.io/enforce"] == "restricted"

        # -- one reconcile with exactly the chart's rights ----------------------------------
        _reconcile_as_the_operator(plane, kubectl, tmp_path)
    except BaseException:
        helm("uninstall", RELEASE, *base, check=False)
        raise

    # -- uninstall: everything it made is gone (the Namespace with what was in it) -------------
    helm("uninstall", RELEASE, *base, "--wait", "--timeout", "120s")
    for kind, name, namespace in OBJECTS:
        if kind == "namespace":
            continue  # below: deletion finishes when the namespace controller emptied it
        assert not _exists(kubectl, kubeconfig, kind, name, namespace), f"{kind}/{name} is left"
    _wait(
        lambda: not _exists(kubectl, kubeconfig, "namespace", NAMESPACE, None),
        what=f"namespace {NAMESPACE} deleted",
        timeout=120,
    )
    gone = helm("status", RELEASE, *base, check=False)
    assert gone.returncode != 0 and "not found" in gone.stderr, gone.stderr
    records = kubectl_run(
        kubectl, kubeconfig, "get", "secrets", "-n", RELEASE_NAMESPACE,
        "-l", f"owner=helm,name={RELEASE}", "-o", "name",
    )  # fmt: skip
    assert records.stdout.strip() == "", records.stdout  # no release record left either
    # Helm installs crds/ once and never deletes it (a CRD's deletion deletes every object of
    # its kind); docs/install.md says how to remove them.
    for crd in CRDS:
        assert _exists(kubectl, kubeconfig, "crd", crd, None)


def _reconcile_as_the_operator(plane: ControlPlane, kubectl: Path, tmp_path: Path) -> None:
    kubeconfig = plane.kubeconfig_path
    admin: KubeClient = connect(kubeconfig)
    namespace = f"team-{uuid.uuid4().hex[:8]}"
    try:
        # a token the TokenRequest API issues for the chart's account (a pod's projected token)
        operator_config = plane.service_account_kubeconfig(
            tmp_path / "operator.kubeconfig", namespace=NAMESPACE, name=OPERATOR_SA
        )

        # a namespace handed over as docs/install.md says: kubectl apply -n NS -k deploy/tenant
        _request(admin, "POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        kubectl_run(
            kubectl, kubeconfig, "apply", "--server-side", "-n", namespace,
            "-k", str(DEPLOY / "tenant"),
        )  # fmt: skip
        remote = tmp_path / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
        repo = WorkRepo(tmp_path / "work", remote=remote)
        repo.write(
            {
                "app/settings.yaml": yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "settings"},
                        "data": {"mode": "fast"},
                    }
                )
            }
        )
        repo.commit("first")
        repo.push()
        crs = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{namespace}"
        _request(admin, "POST", f"{crs}/repositories", {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Repository",
            "metadata": {"name": "app"},
            "spec": {"url": f"file://{remote}", "ref": {"branch": "main"}, "interval": "1s"},
        })  # fmt: skip
        _request(admin, "POST", f"{crs}/syncs", _sync(namespace, "app", "./app"))

        settings = OperatorSettings(
            namespaces=[],  # --all-namespaces, as the chart's Deployment passes it
            kubeconfig=str(operator_config),
            cache_dir=tmp_path / "cache",
            metrics_port=0,
            webhook_port=0,
            allowed_schemes=frozenset({"file"}),
            identity="pod-a",
            min_backoff=0.5,
            max_backoff=1.0,
            default_service_account="sealed-gitops-deployer",  # the chart's default value
        )
        with OperatorThread(settings):
            lease = _wait(
                lambda: _get(
                    admin,
                    f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}"
                    "/leases/sealed-gitops-operator",
                ),
                what="the Lease (the chart's leader-election Role)",
                timeout=90,
            )
            assert lease["spec"]["holderIdentity"] == "pod-a"
            ready = _wait(
                lambda: (r := _ready(admin, namespace, "app")) and r.get("status") == "True" and r,
                what="Sync app Ready",
                timeout=120,
            )
            assert ready["reason"] == "Succeeded", ready
            assert _get(admin, f"/api/v1/namespaces/{namespace}/configmaps/settings") is not None
    finally:
        with contextlib.suppress(Exception):
            _request(admin, "DELETE", f"/api/v1/namespaces/{namespace}")
        admin.close()
