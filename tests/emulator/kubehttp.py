"""HTTP helpers for the emulator suite: reach the API server a kubeconfig names.

Plain HTTP (urllib for synchronous fixtures, aiohttp for async tests) rather than a Kubernetes
client, so the tests see status codes and ``Status`` bodies exactly as the server sends them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml


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
            # ssl wants files; it reads them at once, so the private temp dir goes right after.
            with tempfile.TemporaryDirectory(prefix="e2e-client-") as folder:
                cert, key = Path(folder) / "client.crt", Path(folder) / "client.key"
                cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
                key.touch(mode=0o600)
                key.write_bytes(base64.b64decode(user["client-key-data"]))
                ctx.load_cert_chain(cert, key)
        return cls(server=cluster["server"].rstrip("/"), headers=headers, ssl=ctx)

    def call(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """A synchronous request (for fixtures and sync tests): (status, decoded JSON body)."""
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = content_type
        if not self.server.startswith("https://"):
            raise ValueError(f"refusing a non-HTTPS server URL: {self.server}")
        request = urllib.request.Request(  # noqa: S310 - https only, checked above
            self.server + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(  # noqa: S310 - https only, checked above
                request, context=self.ssl, timeout=30
            ) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


@contextlib.contextmanager
def fresh_namespace(endpoint: Endpoint, *, prefix: str) -> Iterator[str]:
    """A namespace of a test's own (so tests can run in parallel), deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    status, body = endpoint.call(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    assert status == 201, body
    yield name
    endpoint.call("DELETE", f"/api/v1/namespaces/{name}")


class Http:
    """An aiohttp session on the API server: ``await http.get(path)`` -> (status, body)."""

    def __init__(self, endpoint: Endpoint, session: aiohttp.ClientSession) -> None:
        self.endpoint = endpoint
        self.session = session

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = None
        all_headers = dict(self.endpoint.headers)
        all_headers.update(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers["Content-Type"] = content_type
        async with self.session.request(
            method,
            self.endpoint.server + path,
            data=data,
            headers=all_headers,
            ssl=self.endpoint.ssl,
        ) as response:
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
