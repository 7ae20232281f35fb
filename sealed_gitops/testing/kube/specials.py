"""The three endpoints that are questions, not storage: TokenRequest, TokenReview, and
SelfSubjectAccessReview.

Vault's Kubernetes auth method (OpenBao in the tests) calls TokenReview with a token a pod got
from TokenRequest; ``kubectl auth can-i`` and the operator's own permission checks call
SelfSubjectAccessReview. They are answered by the authenticator and authorizer, never stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from sealed_gitops.testing.kube.auth import Authenticator
from sealed_gitops.testing.kube.middleware import request_user
from sealed_gitops.testing.kube.objects import Objects
from sealed_gitops.testing.kube.rbac import Authorizer
from sealed_gitops.testing.kube.requestinfo import RequestInfo
from sealed_gitops.testing.kube.status import bad_request, invalid

__all__ = ["Specials"]

#: a TokenRequest without expirationSeconds gets an hour, as on a real server
_DEFAULT_EXPIRY = 3600
_MIN_EXPIRY = 600


def _spec(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("the request body is not a JSON object")
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise bad_request("spec must be an object")
    return spec


class Specials:
    def __init__(
        self,
        *,
        objects: Objects,
        authenticator: Authenticator,
        authorizer: Authorizer,
        rbac: Callable[[], bool],
    ) -> None:
        self.objects = objects
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.rbac = rbac

    def table(self) -> dict[tuple[str, str, str], Any]:
        return {
            ("", "serviceaccounts", "token"): self.token_request,
            ("authentication.k8s.io", "tokenreviews", ""): self.token_review,
            ("authorization.k8s.io", "selfsubjectaccessreviews", ""): self.access_review,
        }

    async def token_request(
        self, request: web.Request, info: RequestInfo, body: Any
    ) -> dict[str, Any]:
        spec = _spec(body)
        rt = self.objects.registry.lookup("", "v1", "serviceaccounts")
        assert rt is not None  # noqa: S101 - a built-in
        account = self.objects.get(rt, info.namespace or "", info.name or "")
        expiry = int(spec.get("expirationSeconds") or _DEFAULT_EXPIRY)
        if expiry < _MIN_EXPIRY:
            raise invalid(
                "authentication.k8s.io",
                "TokenRequest",
                info.name or "",
                [
                    (
                        "spec.expirationSeconds",
                        f"Invalid value: {expiry}: may not specify a duration less than 10 minutes",
                    )
                ],
            )
        audiences = list(spec.get("audiences") or [])
        token, expires = self.authenticator.issue_token(
            namespace=info.namespace or "",
            name=info.name or "",
            uid=account["metadata"]["uid"],
            audiences=audiences,
            expiration_seconds=expiry,
        )
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": info.name, "namespace": info.namespace, "creationTimestamp": None},
            "spec": {
                "audiences": audiences,
                "expirationSeconds": expiry,
                "boundObjectRef": spec.get("boundObjectRef"),
            },
            "status": {
                "token": token,
                "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        }

    async def token_review(
        self, request: web.Request, info: RequestInfo, body: Any
    ) -> dict[str, Any]:
        spec = _spec(body)
        status = self.authenticator.review(
            str(spec.get("token", "")), list(spec.get("audiences") or [])
        )
        return {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": {k: v for k, v in spec.items() if k != "token"},
            "status": status,
        }

    async def access_review(
        self, request: web.Request, info: RequestInfo, body: Any
    ) -> dict[str, Any]:
        spec = _spec(body)
        user = request_user(request)
        attrs = spec.get("resourceAttributes")
        allowed, reason = True, ""
        if isinstance(attrs, dict) and self.rbac():
            allowed, reason = self.authorizer.authorize(
                user,
                verb=str(attrs.get("verb", "")),
                api_group=str(attrs.get("group", "")),
                resource=str(attrs.get("resource", "")),
                subresource=str(attrs.get("subresource", "")),
                namespace=attrs.get("namespace") or None,
                name=attrs.get("name") or None,
            )
        status: dict[str, Any] = {"allowed": allowed}
        if reason and allowed:
            status["reason"] = reason
        if not allowed:
            status["reason"] = ""
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
