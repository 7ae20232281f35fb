"""Fixtures of the interoperability tests: the peers, built and running next to our operator.

One real control plane per session (``control_plane``, the suite-wide fixture), our CRDs and the
peers' CRDs applied once, Flux's source-controller and kustomize-controller running for the whole
session (each test works in namespaces of its own), and a Sealed Secrets controller per test,
because it reads its keys once at start-up and a test decides which key it finds. Our operator
runs in the test process (tests/operator's ``operator_factory``), against the same API server.

Values are compared by keyed hash (:func:`keyed`): HMAC-SHA256 with a key drawn per test, so an
assertion message can show which key differs without showing any value.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml

from sealed_gitops.cli.keys_backup import BACKUP_KIND
from sealed_gitops.testing.control_plane import ControlPlane
from sealed_gitops.testing.peers import versions
from sealed_gitops.testing.peers.build import Built, cached, ensure_built, find_go
from sealed_gitops.testing.peers.processes import (
    FluxController,
    InClusterIdentity,
    SealedSecretsController,
    in_cluster_supported,
    kustomize_controller,
    sealed_secrets_controller,
    source_controller,
)
from tests.control_plane.conftest import (  # noqa: F401 (fixtures)
    Kubectl,
    kubectl,
    kubectl_binary,
)
from tests.keys_lifecycle.conftest import run_cli  # noqa: F401 (a fixture)
from tests.operator.conftest import (  # noqa: F401 (fixtures)
    Setup,
    client,
    crds,
    kubectl_path,
    make_setup,
    operator_factory,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["Keyed", "Peers", "Setup", "backup_records", "keyed", "secret_digests", "wait_for"]


def _progress(line: str) -> None:
    import sys

    sys.stderr.write(f"peers: {line}\n")


Peers = Callable[[str], Built]


@pytest.fixture(scope="session")
def peers() -> Peers:
    """``peers(name)``: that peer's binaries and CRDs, built once per version (minutes the first
    time; each peer is built when a test first needs it)."""
    if find_go() is None and any(cached(peer) is None for peer in versions.PEERS.values()):
        pytest.skip(
            "Go 1.26 or newer not found (/usr/local/go/bin/go, `go` on PATH) and the peers "
            "are not built yet"
        )
    built: dict[str, Built] = {}

    def get(name: str) -> Built:
        if name not in built:
            built[name] = ensure_built(versions.PEERS[name], progress=_progress)
        return built[name]

    return get


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    """The admin kubeconfig of the real control plane (what tests/operator's fixtures use)."""
    return control_plane.kubeconfig_path


def _apply_crds(kubeconfig: Path, builds: list[Built]) -> None:
    """A peer's CRDs, as its developers apply them, and wait until the API serves them."""
    args = [kubectl_binary(), "--kubeconfig", str(kubeconfig)]
    apply = [*args, "apply", "--server-side", "--force-conflicts"]
    names = []
    for built in builds:
        for path in built.crd_files():
            apply += ["-f", str(path)]
            names.append(f"crd/{yaml.safe_load(path.read_text())['metadata']['name']}")
    subprocess.run(apply, check=True, capture_output=True, timeout=120)
    subprocess.run(
        [*args, "wait", "--for=condition=Established", "--timeout=60s", *names],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="session")
def sealed_secrets_crds(peers: Peers, kubeconfig: Path, crds: None) -> None:  # noqa: F811
    """Bitnami's SealedSecret CRD next to ours (``crds`` applied ours)."""
    _apply_crds(kubeconfig, [peers("sealed-secrets")])


@pytest.fixture(scope="session")
def flux_crds(peers: Peers, kubeconfig: Path, crds: None) -> None:  # noqa: F811
    """Flux's source and kustomize CRDs next to ours."""
    _apply_crds(kubeconfig, [peers("source-controller"), peers("kustomize-controller")])


@pytest.fixture(scope="session")
def flux(
    peers: Peers,
    flux_crds: None,
    kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FluxController, FluxController]]:
    """source-controller and kustomize-controller, running for the session."""
    workdir = tmp_path_factory.mktemp("flux")
    with (
        source_controller(
            peers("source-controller"), kubeconfig=kubeconfig, workdir=workdir / "source"
        ) as source,
        kustomize_controller(
            peers("kustomize-controller"), kubeconfig=kubeconfig, workdir=workdir / "kustomize"
        ) as kustomize,
    ):
        yield source, kustomize


@pytest.fixture
def setup(crds: None, client: Any, tmp_path: Path) -> Iterator[Setup]:  # noqa: F811
    """tests/operator's set-up (a namespace, a bare remote, a work clone, an age key) on the
    real control plane, with our CRDs."""
    with make_setup(client, tmp_path) as made:
        yield made


@pytest.fixture
def namespace_factory(client: Any) -> Iterator[Callable[[], str]]:  # noqa: F811
    made: list[str] = []

    def make() -> str:
        name = f"peer-{uuid.uuid4().hex[:10]}"
        client.request(
            "POST", "/api/v1/namespaces",
            body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            action="create", what="Namespace",
        )  # fmt: skip
        made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(Exception):
            client.request("DELETE", f"/api/v1/namespaces/{name}", action="delete", what=name)


SealedSecretsFactory = Callable[[str], contextlib.AbstractContextManager[SealedSecretsController]]


@pytest.fixture
def sealed_secrets(
    peers: Peers,
    sealed_secrets_crds: None,
    control_plane: ControlPlane,
    kubectl: Kubectl,  # noqa: F811
    tmp_path: Path,
) -> Iterator[SealedSecretsFactory]:
    """``with sealed_secrets(namespace) as controller:`` a Bitnami controller for that namespace,
    running as a ServiceAccount of it (bound to cluster-admin, as the ClusterRole of the chart is
    not part of the module's CRDs), with whatever keys the namespace holds when it starts."""
    reason = in_cluster_supported()
    if reason:
        pytest.skip(f"the sealed-secrets v0.40 controller reads only in-cluster config: {reason}")
    bindings: list[str] = []

    @contextlib.contextmanager
    def start(namespace: str) -> Iterator[SealedSecretsController]:
        account = "sealed-secrets-controller"
        kubectl("create", "serviceaccount", account, "-n", namespace)
        binding = f"{namespace}-sealed-secrets"
        kubectl("create", "clusterrolebinding", binding, "--clusterrole=cluster-admin",
                f"--serviceaccount={namespace}:{account}")  # fmt: skip
        bindings.append(binding)
        token = kubectl("create", "token", account, "-n", namespace, "--duration=2h").stdout
        host, port = control_plane.url.removeprefix("https://").rsplit(":", 1)
        config = yaml.safe_load(control_plane.kubeconfig_path.read_text(encoding="utf-8"))
        ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
        identity = InClusterIdentity(host=host, port=int(port), ca_pem=ca, token=token.strip())
        with sealed_secrets_controller(
            peers("sealed-secrets"), identity=identity, workdir=tmp_path / "sealed-secrets",
            namespace=namespace,
        ) as controller:  # fmt: skip
            yield controller

    yield start
    for binding in bindings:
        kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found", check=False)


# -- comparing values without showing them -------------------------------------------------------

Keyed = Callable[[bytes], str]


@pytest.fixture
def keyed() -> Keyed:
    """HMAC-SHA256 under a key drawn for this test: equal values give equal digests, and a digest
    in an assertion message tells nothing about the value."""
    key = secrets.token_bytes(32)

    def digest(value: bytes) -> str:
        return hmac.new(key, value, hashlib.sha256).hexdigest()[:16]

    return digest


def secret_digests(secret: dict[str, Any] | None, keyed: Keyed) -> dict[str, str] | None:
    """``{key: keyed hash of the value}`` of a Secret from the API (None when it is absent)."""
    if secret is None:
        return None
    data = secret.get("data") or {}
    return {key: keyed(base64.b64decode(value)) for key, value in data.items()}


def backup_records(cli: Any, namespace: str, tmp_path: Path) -> list[dict[str, Any]]:
    """Every key record of a ``keys backup`` of the KeyRing ``namespace/cluster``, opened with
    the offline identity the backup was made for (our backup format, as a restore reads it)."""
    offline = pyrage.x25519.Identity.generate()
    backup = tmp_path / "backup.age"
    cli(
        ["keys", "backup", "--to", str(offline.to_public()), "-w", str(backup),
         "--keyring", f"{namespace}/cluster"],
        cwd=tmp_path,
    )  # fmt: skip
    document = yaml.safe_load(pyrage.decrypt(backup.read_bytes(), [offline]))
    assert document["kind"] == BACKUP_KIND
    return list(document["keys"])
