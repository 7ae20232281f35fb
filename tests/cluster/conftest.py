"""Fixtures of the cluster suite: each test on the RBAC-enforcing emulator and on the real
control plane (one of each per session), or on the cluster ``SEALED_GITOPS_E2E_KUBECONFIG`` names.

The emulator runs with RBAC on, as a real cluster does, so impersonation tests mean something;
the admin token belongs to ``system:masters`` and may do anything. On a real API server the tests
that need the emulator (fault injection) skip. Every test works in namespaces of its own and uses
a unique Sync name, so tests run in parallel (``-n auto``) without stepping on each other.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealed_gitops.cluster import KubeClient, SyncRef, connect
from sealed_gitops.errors import ApiNotFound
from sealed_gitops.testing import KubeEmulator
from tests.conftest_control_plane import cluster_tiers, tier_cluster


@pytest.fixture(scope="session", params=cluster_tiers())
def _session_cluster(request: pytest.FixtureRequest) -> Iterator[tuple[Path, KubeEmulator | None]]:
    """One cluster per tier (issue 13): the RBAC-enforcing emulator, the real control plane
    built from source, or the cluster SEALED_GITOPS_E2E_KUBECONFIG names; every test of the
    suite runs on each (its id says which)."""
    with tier_cluster(request, rbac=True) as cluster:
        yield cluster


@pytest.fixture
def emulator(_session_cluster: tuple[Path, KubeEmulator | None]) -> KubeEmulator:
    """The session's emulator; skips on a real API server (the control plane, or E2E)."""
    api = _session_cluster[1]
    if api is None:
        pytest.skip("emulator-only behaviour (fault injection): this tier is a real API server")
    api.faults.clear()
    return api


@pytest.fixture(scope="session")
def kubeconfig(_session_cluster: tuple[Path, KubeEmulator | None]) -> Path:
    return _session_cluster[0]


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    """An admin client with a short timeout (tests fail fast instead of hanging)."""
    client = connect(kubeconfig, timeout=10)
    yield client
    client.close()


def _delete(kube: KubeClient, path: str) -> None:
    with contextlib.suppress(ApiNotFound):
        kube.request("DELETE", path, action="clean up", what=path)


@pytest.fixture
def make_namespace(kube: KubeClient) -> Iterator[object]:
    """Create fresh namespaces (``make_namespace()`` returns a name); deleted afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"t-{uuid.uuid4().hex[:10]}"
        kube.request("POST", "/api/v1/namespaces", body={
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            action="create", what=f"Namespace {name}")
        made.append(name)
        return name

    yield make
    for name in made:
        _delete(kube, f"/api/v1/namespaces/{name}")


@pytest.fixture
def namespace(make_namespace: object) -> str:
    return make_namespace()  # type: ignore[operator, no-any-return]


@pytest.fixture
def sync(namespace: str) -> SyncRef:
    """A Sync identity unique to the test."""
    return SyncRef(namespace, f"app-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def cleanup(kube: KubeClient) -> Iterator[list[str]]:
    """Paths of cluster-scoped objects (CRDs, Namespaces) a test made, deleted afterwards."""
    paths: list[str] = []
    yield paths
    for path in reversed(paths):
        _delete(kube, path)
