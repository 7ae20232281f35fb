"""Fixtures of the cluster suite: one RBAC-enforcing emulator per session, or a real cluster.

The emulator runs with RBAC on, as a real cluster does, so impersonation tests mean something;
the admin token belongs to ``system:masters`` and may do anything. With
``SEALED_GITOPS_E2E_KUBECONFIG`` set, the same tests run against that cluster, and those that need
the emulator (fault injection) skip. Every test works in namespaces of its own and uses a unique
Sync name, so tests run in parallel (``-n auto``) without stepping on each other.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealed_gitops.cluster import KubeClient, SyncRef, connect
from sealed_gitops.errors import ApiNotFound
from sealed_gitops.testing import KubeEmulator

E2E_ENV = "SEALED_GITOPS_E2E_KUBECONFIG"


@pytest.fixture(scope="session")
def _session_emulator() -> Iterator[KubeEmulator | None]:
    if os.environ.get(E2E_ENV):
        yield None
        return
    with KubeEmulator(rbac=True).run_in_thread() as api:
        yield api


@pytest.fixture
def emulator(_session_emulator: KubeEmulator | None) -> KubeEmulator:
    """The session's emulator; skips when the suite runs against a real cluster."""
    if _session_emulator is None:
        pytest.skip(f"needs the emulator's fault injection; {E2E_ENV} points at a real cluster")
    _session_emulator.faults.clear()
    return _session_emulator


@pytest.fixture(scope="session")
def kubeconfig(_session_emulator: KubeEmulator | None) -> Path:
    if _session_emulator is None:
        return Path(os.environ[E2E_ENV])
    return _session_emulator.kubeconfig_path


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
