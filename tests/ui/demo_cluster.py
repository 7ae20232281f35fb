"""The demo's cluster, held open for the web view's browser tests.

Why a helper module: ``sealed-gitops demo`` already builds the state the view must show (a Sync
whose last commit was tampered with, so it fails naming the file; a Secret whose password Alice
added and Bob changed; a pruned ConfigMap). ``run_demo(hold=...)`` keeps its API emulator,
operator and Bob's checkout alive while the tests look; this module runs it in a thread, adds a
KeyRing for the KeyRing page, and always lets the demo tear down (by releasing the hold).
"""

from __future__ import annotations

import base64
import contextlib
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from sealed_gitops.cli.demo import NS, run_demo
from sealed_gitops.cluster import KubeClient, connect
from sealed_gitops.errors import ApiNotFound

__all__ = ["DemoCluster", "demo_cluster"]

#: how long the demo may take to reach its last step on a loaded machine
READY_TIMEOUT = 150.0


@dataclass
class DemoCluster:
    kubeconfig: Path
    checkout: Path
    client: KubeClient
    #: the cluster's age identity (from the demo's decryption Secret), for --compare
    age_identity: str


def _keyring(client: KubeClient, *, timeout: float) -> None:
    """A KeyRing in the demo's namespace; the demo's operator generates its keys."""
    base = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{NS}/keyrings"
    client.request(
        "POST",
        base,
        body={
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "KeyRing",
            "metadata": {"name": "cluster-keys", "namespace": NS},
            "spec": {"backend": "kubernetes"},
        },
        action="create",
        what="KeyRing",
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiNotFound):
            found = client.request("GET", f"{base}/cluster-keys", action="read", what="KeyRing")
            if (found.get("status") or {}).get("keys"):
                return
        time.sleep(0.2)
    raise AssertionError(f"the operator gave KeyRing {NS}/cluster-keys no keys in {timeout}s")


@contextlib.contextmanager
def demo_cluster() -> Iterator[DemoCluster]:
    """The demo's final state, alive until the ``with`` block ends."""
    ready = threading.Event()
    release = threading.Event()
    held: dict[str, Path] = {}
    failure: list[BaseException] = []

    def hold(kubeconfig: Path, checkout: Path) -> None:
        held.update(kubeconfig=kubeconfig, checkout=checkout)
        ready.set()
        release.wait(timeout=600)

    def run() -> None:
        try:
            console = Console(file=io.StringIO(), width=200)
            run_demo(console, timeout=60, verbose=False, hold=hold)
        except BaseException as exc:  # reported to the test, which waits on `ready`
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=run, name="ui-demo", daemon=True)
    thread.start()
    try:
        if not ready.wait(timeout=READY_TIMEOUT) or failure:
            raise AssertionError(f"the demo did not reach its last step: {failure}")
        client = connect(held["kubeconfig"])
        try:
            keys = client.request(
                "GET",
                f"/api/v1/namespaces/{NS}/secrets/sops-keys",
                action="read",
                what="sops-keys",
                sensitive=True,
            )
            identity = base64.b64decode(keys["data"]["identity.agekey"]).decode()
            _keyring(client, timeout=60)
            yield DemoCluster(
                kubeconfig=held["kubeconfig"],
                checkout=held["checkout"],
                client=client,
                age_identity=identity,
            )
        finally:
            client.close()
    finally:
        release.set()
        thread.join(timeout=60)
