"""Fixtures of the operator end-to-end tests: a cluster, our CRDs, a Git remote, keys, operators.

The cluster is the emulator (one per session, in a thread) or, when SEALED_GITOPS_E2E_KUBECONFIG
names a kubeconfig, a real cluster; every test works in a namespace of its own and runs its own
operator watching only that namespace, so tests run in parallel and never see each other's objects.
The operator runs in the test process (out of cluster), so the file:// remote works in both cases.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
from sealed_gitops.testing.control_plane import ControlPlane
from sealed_gitops.testing.gitserver import WorkRepo
from tests.conftest_control_plane import (
    CONTROL_PLANE,
    E2E,
    E2E_ENV,
    cluster_tiers,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", params=cluster_tiers())
def _cluster(request: pytest.FixtureRequest) -> Iterator[tuple[Path, KubeEmulator | None]]:
    """One cluster per tier (issue 13): the emulator, the real control plane built from source,
    or the cluster SEALED_GITOPS_E2E_KUBECONFIG names. Every test that touches the API runs on
    each, by this parameter (its id says which)."""
    if request.param == E2E:
        yield Path(os.environ[E2E_ENV]), None
        return
    if request.param == CONTROL_PLANE:
        plane: ControlPlane = request.getfixturevalue("control_plane")
        yield plane.kubeconfig_path, None
        return
    with KubeEmulator().run_in_thread() as api:
        yield api.kubeconfig_path, api


@pytest.fixture(scope="session")
def kubeconfig(_cluster: tuple[Path, KubeEmulator | None]) -> Path:
    return _cluster[0]


@pytest.fixture
def emulator(_cluster: tuple[Path, KubeEmulator | None]) -> KubeEmulator:
    if _cluster[1] is None:
        pytest.skip("emulator-only behaviour (fault injection): this tier is a real API server")
    return _cluster[1]


@pytest.fixture(scope="session")
def kubectl_path() -> Path:
    path = Path(sys.executable).parent / "kubectl"
    if not path.exists():
        pytest.skip(f"kubectl is not installed at {path}")
    return path


@pytest.fixture(scope="session")
def crds(kubeconfig: Path, kubectl_path: Path) -> None:
    subprocess.run(
        [
            str(kubectl_path),
            "--kubeconfig",
            str(kubeconfig),
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            str(ROOT / "crds"),
        ],
        check=True,
        capture_output=True,
    )


def _apply_crds(kubectl: Path, kubeconfig: Path) -> None:
    subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "apply", "--server-side",
         "--force-conflicts", "-k", str(ROOT / "crds")],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session", params=cluster_tiers())
def rbac_kubeconfig(request: pytest.FixtureRequest, kubectl_path: Path) -> Iterator[Path]:
    """A cluster whose RBAC decides (a real one has it on; the emulator needs ``rbac=True``),
    with our CRDs; the kubeconfig is an administrator's, as the operator's would be."""
    if request.param in (E2E, CONTROL_PLANE):
        real = (
            Path(os.environ[E2E_ENV])
            if request.param == E2E
            else request.getfixturevalue("control_plane").kubeconfig_path
        )
        _apply_crds(kubectl_path, real)
        yield real
        return
    with KubeEmulator(rbac=True).run_in_thread() as api:
        _apply_crds(kubectl_path, api.kubeconfig_path)
        yield api.kubeconfig_path


@pytest.fixture
def rbac_setup(rbac_kubeconfig: Path, tmp_path: Path) -> Iterator[Setup]:
    api = connect(rbac_kubeconfig)
    try:
        with make_setup(api, tmp_path) as made:
            yield made
    finally:
        api.close()


@pytest.fixture
def client(kubeconfig: Path) -> Iterator[KubeClient]:
    api = connect(kubeconfig)
    yield api
    api.close()


PLURALS = {
    "Secret": "secrets",
    "Repository": "repositories",
    "Sync": "syncs",
    "Namespace": "namespaces",
    "ConfigMap": "configmaps",
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
}


class Kube:
    """Small synchronous helpers over the project's client for test set-up and assertions."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        api_version = obj["apiVersion"]
        plural = PLURALS[obj["kind"]]
        ns = obj["metadata"].get("namespace", self.namespace)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        path = f"{base}/{plural}" if plural == "namespaces" else f"{base}/namespaces/{ns}/{plural}"
        return self.client.request("POST", path, body=obj, action="create", what=obj["kind"])

    def status(self, name: str = "app") -> dict[str, Any]:
        """The Sync's status ({} before the operator wrote one)."""
        return dict(self.sync(name).get("status") or {})

    def sync_path(self, name: str = "app") -> str:
        return f"/apis/sealed-gitops.io/v1alpha1/namespaces/{self.namespace}/syncs/{name}"

    def repository(self, name: str = "app") -> dict[str, Any]:
        found = self.get(
            f"/apis/sealed-gitops.io/v1alpha1/namespaces/{self.namespace}/repositories/{name}"
        )
        assert found is not None
        return found

    def configmaps(self, namespace: str | None = None) -> list[dict[str, Any]]:
        answer = self.client.request(
            "GET",
            f"/api/v1/namespaces/{namespace or self.namespace}/configmaps",
            action="list",
            what="configmaps",
        )
        return [
            cm
            for cm in answer.get("items") or []
            if cm["metadata"]["name"] != "kube-root-ca.crt"
        ]

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            return self.client.request("GET", path, action="get", what=path)
        except ApiNotFound:
            return None

    def secret(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.get(f"/api/v1/namespaces/{namespace or self.namespace}/secrets/{name}")

    def sync(self, name: str = "app") -> dict[str, Any]:
        found = self.get(
            f"/apis/sealed-gitops.io/v1alpha1/namespaces/{self.namespace}/syncs/{name}"
        )
        assert found is not None
        return found

    def events(self) -> list[dict[str, Any]]:
        answer = self.client.request(
            "GET", f"/api/v1/namespaces/{self.namespace}/events", action="list", what="events"
        )
        return list(answer.get("items") or [])

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.request(
            "PATCH",
            path,
            body=body,
            content_type="application/merge-patch+json",
            action="patch",
            what=path,
        )

    def delete(self, path: str) -> None:
        self.client.request("DELETE", path, action="delete", what=path)


def wait_for(check: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == type_:
            return dict(cond)
    return None


def ready(obj: dict[str, Any]) -> dict[str, Any] | None:
    return condition(obj, "Ready")


def is_ready(obj: dict[str, Any], status: str = "True") -> bool:
    return (ready(obj) or {}).get("status") == status


def wait_failed(kube: Kube, *, timeout: float = 30.0) -> dict[str, Any]:
    """The Sync's Ready condition once it is False for a reason other than the start-up race
    with its Repository (DependencyNotReady until the first revision is published)."""
    def check() -> dict[str, Any] | None:
        cond = ready(kube.sync())
        if cond and cond["status"] == "False" and cond["reason"] != "DependencyNotReady":
            return cond
        return None

    return dict(wait_for(check, timeout=timeout, what="Ready=False"))


@dataclass
class Setup:
    kube: Kube
    namespace: str
    repo: WorkRepo
    remote: Path
    recipient: str
    age_secret: str

    def encrypt(self, obj: dict[str, Any]) -> str:
        plain = yaml.safe_dump(obj, sort_keys=False).encode()
        return encrypt_bytes(
            plain, key_groups=[[AgeRecipient(self.recipient)]], file="x.yaml"
        ).decode()

    def push(
        self,
        files: dict[str, str],
        *,
        message: str = "change",
        author: tuple[str, str] = ("Dev One", "dev1@example.invalid"),
    ) -> str:
        self.repo.write(files)
        sha = self.repo.commit(message, author=author)
        self.repo.push()
        return sha

    def remove(self, *names: str, message: str = "remove") -> str:
        for name in names:
            (self.repo.path / name).unlink()
        sha = self.repo.commit(message)
        self.repo.push()
        return sha

    def secret_object(
        self, name: str, values: dict[str, str | bytes], namespace: str | None = None
    ) -> None:
        """A Secret in the cluster (set-up material: keys, tokens), not one from Git."""
        data = {
            k: base64.b64encode(v.encode() if isinstance(v, str) else v).decode()
            for k, v in values.items()
        }
        self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace or self.namespace},
                "data": data,
            }
        )

    def objects(
        self,
        *,
        prune: bool = True,
        policy: str = "Atomic",
        interval: str = "1s",
        extra_spec: dict[str, Any] | None = None,
        repository_spec: dict[str, Any] | None = None,
        keys_secret: bool = True,
    ) -> None:
        if keys_secret:
            self.secret_object("sops-keys", {"identity.agekey": self.age_secret})
        self.kube.create(
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Repository",
                "metadata": {"name": "app", "namespace": self.namespace},
                # a None in repository_spec leaves that field out
                "spec": {
                    k: v
                    for k, v in {
                        "url": f"file://{self.remote}",
                        "ref": {"branch": "main"},
                        "interval": interval,
                        **(repository_spec or {}),
                    }.items()
                    if v is not None
                },
            }
        )
        spec: dict[str, Any] = {
            "repositoryRef": {"name": "app"},
            "path": "./deploy",
            "interval": interval,
            "retryInterval": "1s",
            "prune": prune,
            "failurePolicy": policy,
            "decryption": {"secretRef": {"name": "sops-keys"}},
        }
        spec.update(extra_spec or {})
        self.kube.create(
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Sync",
                "metadata": {"name": "app", "namespace": self.namespace},
                "spec": spec,
            }
        )


@pytest.fixture
def setup(crds: None, client: KubeClient, tmp_path: Path) -> Iterator[Setup]:
    with make_setup(client, tmp_path) as made:
        yield made


@contextlib.contextmanager
def make_setup(client: KubeClient, tmp_path: Path) -> Iterator[Setup]:
    """A namespace of its own, a bare Git remote with a working clone, and an age key."""
    namespace = f"sg-{uuid.uuid4().hex[:10]}"
    kube = Kube(client, namespace)
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    repo = WorkRepo(tmp_path / "work", remote=remote)
    identity = pyrage.x25519.Identity.generate()
    yield Setup(
        kube=kube,
        namespace=namespace,
        repo=repo,
        remote=remote,
        recipient=str(identity.to_public()),
        age_secret=str(identity),
    )
    with contextlib.suppress(Exception):
        kube.delete(f"/api/v1/namespaces/{namespace}")


@pytest.fixture
def operator_factory(kubeconfig: Path, tmp_path: Path) -> Iterator[Callable[..., OperatorThread]]:
    started: list[OperatorThread] = []

    def start(
        namespace: str, *, watch: list[str] | None = None, **overrides: Any
    ) -> OperatorThread:
        settings = OperatorSettings(
            namespaces=watch or [namespace],
            kubeconfig=str(kubeconfig),
            cache_dir=tmp_path / "cache",
            metrics_port=0,
            webhook_port=0,
            allowed_schemes=frozenset({"file", "git", "ssh", "https", "http"}),
            leader_lease=f"op-{uuid.uuid4().hex[:6]}",
            leader_namespace=namespace,
            min_backoff=0.5,
            max_backoff=2.0,
        )
        for key, value in overrides.items():
            setattr(settings, key, value)
        thread = OperatorThread(settings).start()
        started.append(thread)
        return thread

    yield start
    errors = []
    for thread in started:
        try:
            thread.stop()
        except Exception as exc:  # stop the others regardless, then report
            errors.append(exc)
    assert not errors, errors


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def as_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
