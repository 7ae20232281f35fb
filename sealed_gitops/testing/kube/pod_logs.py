"""A minimal ``pods/{name}/log`` subresource: the text a test set for the pod, as text/plain.

Why: ``sealed-gitops logs`` reads the operator pods' logs through the API. A real API server
proxies that request to the kubelet of the pod's node; the emulator has no kubelet and no
containers, so a test stores the log text it wants served (:attr:`KubeEmulator.pod_logs`,
keyed by namespace and pod name) and this module serves it for a pod that exists.

Honoured: ``limitBytes`` (the first N bytes), as the kubelet applies it. Accepted and not
applied: ``sinceSeconds``/``sinceTime`` (the emulator has no container-runtime timestamps),
``tailLines``, ``container``, ``timestamps``; ``follow`` returns the text and ends the stream, as
a container that exited would. See docs/emulator.md ("Known differences").
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from sealed_gitops.testing.kube.objects import Objects
from sealed_gitops.testing.kube.requestinfo import RequestInfo
from sealed_gitops.testing.kube.resources import ResourceType
from sealed_gitops.testing.kube.status import bad_request, method_not_allowed

__all__ = ["serve_pod_log"]


def _count(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name}: invalid value {raw!r}") from None
    if value <= 0:
        raise bad_request(f"{name}: must be greater than 0")
    return value


def serve_pod_log(
    request: web.Request,
    info: RequestInfo,
    *,
    objects: Objects,
    rt: ResourceType,
    logs: Mapping[tuple[str, str], str],
) -> web.Response:
    """The stored log of pod ``info.namespace/info.name`` (404 when the pod does not exist)."""
    if info.verb != "get":
        raise method_not_allowed(f"{info.verb} is not supported on pods/log")
    namespace, name = info.namespace or "", info.name or ""
    objects.get(rt, namespace, name)  # a missing pod is the API's 404, as on a real server
    text = logs.get((namespace, name), "")
    limit = _count(request, "limitBytes")
    data = text.encode("utf-8")
    if limit is not None:
        data = data[:limit]
    return web.Response(body=data, content_type="text/plain", charset="utf-8")
