"""A minimal admin HTTP client for the control plane's own start-up checks and token requests.

Why not the ``kubernetes`` package: the fixture needs four requests (``/readyz``, a GET, a POST for
TokenRequest) and must work where the client library's configuration loading would itself be
under test. urllib with an SSL context that verifies the server against the fresh CA and presents
the admin client certificate is enough, and it keeps the fixture independent of cluster/.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sealed_gitops.errors import ControlPlaneError

__all__ = ["AdminClient"]


class AdminClient:
    """Requests to one API server as the ``system:masters`` admin."""

    def __init__(self, url: str, *, ca_cert: Path, client_cert: Path, client_key: Path) -> None:
        self.url = url.rstrip("/")
        self._context = ssl.create_default_context(cafile=str(ca_cert))
        self._context.load_cert_chain(str(client_cert), str(client_key))

    def status(self, path: str, *, timeout: float = 5.0) -> tuple[int, str]:
        """``(HTTP status, body)``; connection errors become status 0 with the reason as body."""
        request = urllib.request.Request(f"{self.url}{path}", method="GET")  # noqa: S310 (https)
        try:
            with urllib.request.urlopen(  # noqa: S310 (https to loopback)
                request, timeout=timeout, context=self._context
            ) as response:
                return int(response.status), response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(exc)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """A JSON request; a non-2xx answer raises ControlPlaneError with the server's message."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (https to loopback)
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(  # noqa: S310 (https to loopback)
                request, timeout=timeout, context=self._context
            ) as response:
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
                return answer
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            raise ControlPlaneError(f"{method} {path} answered {exc.code}: {text[:1000]}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ControlPlaneError(f"{method} {path} failed: {exc}") from exc

    def request_token(
        self,
        *,
        namespace: str,
        service_account: str,
        audiences: list[str] | None = None,
        expiration_seconds: int = 3600,
    ) -> str:
        """A ServiceAccount token from the TokenRequest API (what a projected volume would hold)."""
        spec: dict[str, Any] = {"expirationSeconds": expiration_seconds}
        if audiences:
            spec["audiences"] = audiences
        answer = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )
        token = answer.get("status", {}).get("token")
        if not isinstance(token, str) or not token:
            raise ControlPlaneError(f"TokenRequest for {namespace}/{service_account} had no token")
        return token
