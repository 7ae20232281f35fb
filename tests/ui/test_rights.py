"""The view has the user's rights and no more: what RBAC refuses them, the page refuses too.

A user bound to a Role that may read Syncs, Repositories and KeyRings in one namespace, and not
Secrets or Events, opens every page through the view started with their own credentials. On both
tiers: the emulator (a token user) and the real control plane (a ServiceAccount's token), whose
RBAC authorizer is the one that counts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from sealed_gitops.cluster import KubeClient, connect
from sealed_gitops.errors import ApiForbidden
from sealed_gitops.testing import KubeEmulator
from sealed_gitops.testing.control_plane import ControlPlane
from sealed_gitops.testing.kube.auth import UserInfo
from sealed_gitops.ui import UiSettings, make_app
from tests.conftest_control_plane import CONTROL_PLANE, E2E, E2E_ENV, cluster_tiers
from tests.ui.cluster_objects import CANARY, NS, populate

VIEWER_TOKEN = "viewer-token-for-ui-tests"


def _rbac(admin: KubeClient, *, subject: dict[str, str]) -> None:
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "sync-viewer", "namespace": NS},
        "rules": [
            {
                "apiGroups": ["sealed-gitops.io"],
                "resources": ["syncs", "repositories", "keyrings"],
                "verbs": ["get", "list"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "sync-viewer", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sync-viewer"},
        "subjects": [subject],
    }
    admin.request("POST", f"{rbac}/roles", body=role, action="create", what="Role")
    admin.request("POST", f"{rbac}/rolebindings", body=binding, action="create", what="binding")


def _emulator_viewer(tmp: Path) -> Iterator[KubeClient]:
    users = {VIEWER_TOKEN: UserInfo(username="viewer", groups=("system:authenticated",))}
    with KubeEmulator(rbac=True, users=users).run_in_thread() as api:
        admin = connect(api.kubeconfig_path)
        try:
            populate(admin)
            _rbac(admin, subject={"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                  "name": "viewer"})  # fmt: skip
        finally:
            admin.close()
        client = connect(api.write_kubeconfig(tmp / "kubeconfig", token=VIEWER_TOKEN))
        try:
            yield client
        finally:
            client.close()


def _control_plane_viewer(plane: ControlPlane, tmp: Path) -> Iterator[KubeClient]:
    admin = connect(plane.kubeconfig_path)
    try:
        populate(admin)
        account = {"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "viewer", "namespace": NS}}  # fmt: skip
        admin.request("POST", f"/api/v1/namespaces/{NS}/serviceaccounts", body=account,
                      action="create", what="ServiceAccount viewer")  # fmt: skip
        _rbac(admin, subject={"kind": "ServiceAccount", "name": "viewer", "namespace": NS})
    finally:
        admin.close()
    client = connect(plane.service_account_kubeconfig(tmp / "kubeconfig", namespace=NS,
                                                      name="viewer"))  # fmt: skip
    try:
        _wait_for_the_binding(client)
        yield client
    finally:
        client.close()


def _wait_for_the_binding(client: KubeClient, *, timeout: float = 60.0) -> None:
    """The real authorizer sees a new RoleBinding through its informer: wait until it does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.request("GET", f"/apis/sealed-gitops.io/v1alpha1/namespaces/{NS}/syncs",
                           action="list", what="Syncs")  # fmt: skip
            return
        except ApiForbidden:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module", params=cluster_tiers())
def viewer(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeClient]:
    tmp = tmp_path_factory.mktemp("viewer")
    if request.param == E2E:
        pytest.skip(
            f"{E2E_ENV}: this module makes its own namespace, CRDs and viewer; it runs on the "
            "emulator and control-plane tiers"
        )
    if request.param == CONTROL_PLANE:
        yield from _control_plane_viewer(request.getfixturevalue("control_plane"), tmp)
    else:
        yield from _emulator_viewer(tmp)


async def _view(client: KubeClient, namespace: str | None) -> AsyncIterator[TestClient[Any, Any]]:
    app = make_app(client, UiSettings(bind="127.0.0.1", port=0, namespace=namespace))
    async with TestClient(TestServer(app, host="127.0.0.1")) as web:
        yield web


@pytest.fixture
async def in_namespace(viewer: KubeClient) -> AsyncIterator[TestClient[Any, Any]]:
    async for web in _view(viewer, NS):
        yield web


@pytest.fixture
async def everywhere(viewer: KubeClient) -> AsyncIterator[TestClient[Any, Any]]:
    async for web in _view(viewer, None):
        yield web


@pytest.mark.parametrize("path", ["/", f"/syncs/{NS}/good", "/keyrings"])
async def test_what_the_user_may_read_is_shown(
    in_namespace: TestClient[Any, Any], path: str
) -> None:
    response = await in_namespace.get(path)
    assert response.status == 200
    assert "good" in await response.text()


@pytest.mark.parametrize("path", ["/secrets", f"/secrets/{NS}/db"])
async def test_what_rbac_refuses_the_page_refuses(
    in_namespace: TestClient[Any, Any], path: str
) -> None:
    response = await in_namespace.get(path)
    assert response.status == 403
    text = await response.text()
    assert 'id="error"' in text and CANARY not in text


async def test_listing_every_namespace_needs_the_cluster_wide_right(
    everywhere: TestClient[Any, Any],
) -> None:
    response = await everywhere.get("/")
    assert response.status == 403
