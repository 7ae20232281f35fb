"""Non-resource endpoints: version, API discovery, OpenAPI, health.

kubectl and client-go read ``/api`` and ``/apis`` (plus ``/apis/G/V`` per group) before any request,
and the Python client's dynamic client does too. Aggregated discovery (``as=APIGroupDiscoveryList``)
is not offered: answering plain ``application/json`` makes client-go fall back to the per-group
documents, which is what a pre-1.26 server does. OpenAPI is answered with just enough (per
group-version, the operations and the ``fieldValidation`` parameter) for kubectl to use
server-side field validation instead of downloading schemas.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from sealed_gitops.testing.kube.handlers import json_response
from sealed_gitops.testing.kube.resources import Registry, ResourceType
from sealed_gitops.testing.kube.status import ApiError

__all__ = ["VERSION", "DiscoveryHandler"]

VERSION = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0-sealed-gitops-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_PARAMS = [
    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
    {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
]


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _operations(rt: ResourceType) -> dict[str, Any]:
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    base = "/" + _gv_path(rt.group, rt.version)
    collection = (
        f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    )
    op = {
        "parameters": _PARAMS,
        "x-kubernetes-group-version-kind": gvk,
        "responses": {"200": {"description": "OK"}},
    }
    return {
        collection: {
            "post": {**op, "x-kubernetes-action": "post"},
            "get": {**op, "x-kubernetes-action": "list"},
        },
        f"{collection}/{{name}}": {
            "put": {**op, "x-kubernetes-action": "put"},
            "patch": {**op, "x-kubernetes-action": "patch"},
            "get": {**op, "x-kubernetes-action": "get"},
        },
    }


class DiscoveryHandler:
    def __init__(self, *, registry: Registry) -> None:
        self.registry = registry

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/version":
            return json_response(VERSION)
        if path == "/api":
            return json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}
                    ],
                }
            )
        if path == "/apis":
            return json_response(self.registry.group_list())
        if parts[0] in ("api", "apis"):
            return self._group(parts)
        if parts[0] == "openapi" and len(parts) >= 2 and parts[1] == "v3":
            return self._openapi_v3(parts[2:])
        raise ApiError(404, "the server could not find the requested resource")

    def _group(self, parts: list[str]) -> web.Response:
        if parts[0] == "api" and len(parts) == 2:
            found = self.registry.resource_list("", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            if not self.registry.versions(parts[1]):
                raise ApiError(404, "the server could not find the requested resource")
            return json_response(self.registry.group_doc(parts[1]))
        elif parts[0] == "apis" and len(parts) == 3:
            found = self.registry.resource_list(parts[1], parts[2])
        else:
            found = None
        if found is None:
            raise ApiError(404, "the server could not find the requested resource")
        return json_response(found)

    def _openapi_v3(self, rest: list[str]) -> web.Response:
        by_gv: dict[str, list[ResourceType]] = {}
        for rt in self.registry.all():
            by_gv.setdefault(_gv_path(rt.group, rt.version), []).append(rt)
        if not rest:
            roots: dict[str, Any] = {}
            for gv, members in by_gv.items():
                digest = hashlib.sha256(json.dumps(sorted(r.plural for r in members)).encode())
                roots[gv] = {
                    "serverRelativeURL": f"/openapi/v3/{gv}?hash={digest.hexdigest()[:32]}"
                }
            return json_response({"paths": roots})
        rts = by_gv.get("/".join(rest)) or []
        if not rts:
            raise ApiError(404, "the server could not find the requested resource")
        paths: dict[str, Any] = {}
        for rt in rts:
            paths.update(_operations(rt))
        return json_response(
            {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
                "paths": paths,
                "components": {"schemas": {}},
            }
        )
