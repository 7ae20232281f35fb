"""A Sync that applies to a remote cluster (issue 15 Must 9, ``spec.kubeConfig.secretRef``).

The remote cluster is a second emulator on both tiers (a second real control plane would double
the tier's start-up); the Sync, its status and Events stay on the tier's cluster. Objects, their
ownership labels, prune and drift correction happen on the remote one. A hostile kubeconfig (an
exec plugin, a file reference) is refused with a message naming the field, before any request.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from sealed_gitops.cluster import KubeClient, connect
from sealed_gitops.cluster.ownership import SYNC_NAME_LABEL
from sealed_gitops.testing import KubeEmulator

from .conftest import Kube, Setup, decoded, is_ready, wait_failed, wait_for
from .manifests import config_doc, secret_doc

pytestmark = pytest.mark.e2e

WAIT = 120.0


@pytest.fixture
def remote() -> Iterator[KubeEmulator]:
    with KubeEmulator().run_in_thread() as api:
        yield api


@pytest.fixture
def remote_client(remote: KubeEmulator) -> Iterator[KubeClient]:
    client = connect(remote.kubeconfig_path)
    yield client
    client.close()


def _kubeconfig_secret(setup: Setup, remote: KubeEmulator, *, key: str = "value") -> None:
    setup.secret_object("remote-kubeconfig", {key: remote.kubeconfig_path.read_bytes()})


def _remote_cm(kube: Kube, name: str) -> dict[str, Any] | None:
    return kube.get(f"/api/v1/namespaces/{kube.namespace}/configmaps/{name}")


def test_objects_go_to_the_remote_cluster(
    setup: Setup, operator_factory: Any, remote: KubeEmulator, remote_client: KubeClient
) -> None:
    ns = setup.namespace
    far = Kube(remote_client, ns)
    far.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    _kubeconfig_secret(setup, remote, key="value.yaml")  # Flux's second default key
    setup.push(
        {
            "deploy/app.yaml": config_doc("app", ns, level="info"),
            "deploy/gone.yaml": config_doc("gone", ns, level="debug"),
            "deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="remote-pass-1")),
        }
    )
    setup.objects(extra_spec={"kubeConfig": {"secretRef": {"name": "remote-kubeconfig"}}})
    # the admin lists the remote API server (as https://HOST, the default port spelt out)
    operator_factory(ns, remote_cluster_addresses=[remote.url])

    wait_for(lambda: is_ready(setup.kube.sync()), timeout=WAIT, what="Ready=True")
    app = _remote_cm(far, "app")
    assert app is not None and app["data"] == {"level": "info"}
    assert app["metadata"]["labels"][SYNC_NAME_LABEL] == "app"
    assert decoded(far.secret("db") or {}) == {"password": "remote-pass-1"}
    # nothing of it on the operator's own cluster; the inventory is in the local status
    assert setup.kube.configmaps() == [] and setup.kube.secret("db") is None
    entries = str(setup.kube.status().get("inventory"))
    assert "app" in entries and "db" in entries

    # prune on the remote cluster
    setup.remove("deploy/gone.yaml")
    wait_for(lambda: _remote_cm(far, "gone") is None, timeout=WAIT, what="pruned remotely")

    # drift on the remote cluster is corrected there
    far.patch(f"/api/v1/namespaces/{ns}/configmaps/app", {"data": {"level": "edited"}})
    setup.kube.patch(
        setup.kube.sync_path(),
        {"metadata": {"annotations": {"sealed-gitops.io/requested-at": "now-1"}}},
    )
    wait_for(
        lambda: (_remote_cm(far, "app") or {}).get("data") == {"level": "info"},
        timeout=WAIT,
        what="drift corrected remotely",
    )

    # deleting the Sync prunes its objects on the remote cluster (deletionPolicy MirrorPrune)
    setup.kube.delete(setup.kube.sync_path())
    wait_for(
        lambda: _remote_cm(far, "app") is None and far.secret("db") is None,
        timeout=WAIT,
        what="remote objects deleted with the Sync",
    )


def _hostile(remote: KubeEmulator, change: dict[str, Any]) -> bytes:
    config = yaml.safe_load(remote.kubeconfig_path.read_text())
    config["users"][0]["user"].update(change)
    return yaml.safe_dump(config).encode()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"exec": {"command": "/bin/sh", "args": ["-c", "id"], "apiVersion": "x/v1"}}, "exec"),
        ({"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}, "tokenFile"),
        ({"client-key": "/etc/hostname"}, "client-key"),
        ({"auth-provider": {"name": "gcp"}}, "auth-provider"),
    ],
)
def test_hostile_kubeconfig_is_refused(
    setup: Setup,
    operator_factory: Any,
    remote: KubeEmulator,
    change: dict[str, Any],
    field: str,
) -> None:
    ns = setup.namespace
    setup.secret_object("remote-kubeconfig", {"value": _hostile(remote, change)})
    setup.push({"deploy/app.yaml": config_doc("app", ns, level="info")})
    setup.objects(extra_spec={"kubeConfig": {"secretRef": {"name": "remote-kubeconfig"}}})
    operator_factory(ns, remote_cluster_addresses=["*"])
    cond = wait_failed(setup.kube, timeout=WAIT)
    assert f"user.{field} is refused" in cond["message"], cond
    assert "remote-kubeconfig" in cond["message"], cond
    # the remote emulator's token never reaches the status
    token = remote.token
    assert token not in str(setup.kube.sync()) and token not in str(setup.kube.events())
    assert base64.b64encode(token.encode()).decode() not in str(setup.kube.events())


def test_missing_key_names_the_keys_looked_for(
    setup: Setup, operator_factory: Any, remote: KubeEmulator
) -> None:
    setup.secret_object("remote-kubeconfig", {"config": remote.kubeconfig_path.read_bytes()})
    setup.push({"deploy/app.yaml": config_doc("app", setup.namespace, level="info")})
    setup.objects(extra_spec={"kubeConfig": {"secretRef": {"name": "remote-kubeconfig"}}})
    operator_factory(setup.namespace, remote_cluster_addresses=["*"])
    cond = wait_failed(setup.kube, timeout=WAIT)
    assert "value or value.yaml" in cond["message"], cond


@pytest.mark.parametrize("allowed", [[], ["https://127.0.0.1:1"], ["https://localhost"]])
def test_a_remote_cluster_the_admin_did_not_list_is_refused_before_any_request(
    setup: Setup, operator_factory: Any, remote: KubeEmulator, allowed: list[str]
) -> None:
    """A tenant's kubeconfig must not make the operator reach any address it likes (an
    internal service, a metadata endpoint): only the admin's --remote-cluster-address list."""
    ns = setup.namespace
    _kubeconfig_secret(setup, remote)
    setup.push({"deploy/app.yaml": config_doc("app", ns, level="info")})
    setup.objects(extra_spec={"kubeConfig": {"secretRef": {"name": "remote-kubeconfig"}}})
    remote.faults.add(count=1000, delay=0.001)  # counts every resource request that arrives
    operator_factory(ns, remote_cluster_addresses=allowed)
    cond = wait_failed(setup.kube, timeout=WAIT)
    assert "is not an allowed remote cluster" in cond["message"], cond
    assert "--remote-cluster-address" in cond["message"], cond
    assert remote.url in cond["message"] and "remote-kubeconfig" in cond["message"], cond
    assert remote.faults.pending() == 1000, "a request reached the remote cluster"
