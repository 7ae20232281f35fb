"""Reading a pod's log through the API (``pods/{name}/log``): whole, or followed line by line.

Why here: the log subresource answers text, not JSON, and ``--follow`` keeps the answer open, so
:meth:`KubeClient.request` (one decoded JSON answer) cannot serve it; and only ``cluster/`` may
talk to the kubernetes client. Used by ``sealed-gitops logs`` to read the operator pods' lines.

Bounded: a whole read asks the server for at most ``limit_bytes`` (``limitBytes``, applied by
the kubelet) and reads no more than that; a followed line longer than :data:`MAX_LINE` is cut,
so a line a tenant's value made enormous cannot exhaust the reader's memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from sealed_gitops.cluster.apierrors import error_for_status, unavailable
from sealed_gitops.cluster.client import KubeClient
from sealed_gitops.errors import ApiUnavailable
from sealed_gitops.plan import names

__all__ = ["DEFAULT_LIMIT", "MAX_LINE", "follow_pod_log", "read_pod_log"]

#: Bytes of one pod's log read at most by default (the newest are wanted: use since/tail).
DEFAULT_LIMIT = 32 * 1024 * 1024
#: Characters of one followed line kept; the rest is dropped.
MAX_LINE = 64 * 1024
_CONNECT_TIMEOUT = 5.0


def _open(
    client: KubeClient,
    namespace: str,
    pod: str,
    query: Mapping[str, str],
    *,
    read_timeout: float | None,
) -> Any:
    """The open answer (urllib3 response, content not read) of a pods/log GET, or an error."""
    what = f"Pod {namespace}/{pod}"
    if client.halted.is_set():
        raise ApiUnavailable(f"read the log of {what}: not sent, the client is stopping")
    path = (
        f"/api/v1/namespaces/{names.namespace(namespace, field='pod namespace')}"
        f"/pods/{names.object_name(pod, field='pod name')}/log"
    )
    try:
        _, url, headers, _, _ = client.api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=list(query.items()),
            header_params={"Accept": "text/plain, */*"},
            auth_settings=["BearerToken"],
        )
        answer = client.api.rest_client.request(
            "GET", url, headers=headers, _request_timeout=(_CONNECT_TIMEOUT, read_timeout)
        )
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise unavailable(exc, action="read the log of", what=what) from exc
    if answer.status >= 400:
        raise error_for_status(answer.status, answer.read(), action="read the log of", what=what)
    return answer.response


def _query(
    *, container: str | None, since_seconds: int | None, limit_bytes: int | None, follow: bool
) -> dict[str, str]:
    query: dict[str, str] = {}
    if container:
        query["container"] = container
    if since_seconds is not None:
        query["sinceSeconds"] = str(max(1, since_seconds))
    if limit_bytes is not None:
        query["limitBytes"] = str(limit_bytes)
    if follow:
        query["follow"] = "true"
    return query


def read_pod_log(
    client: KubeClient,
    namespace: str,
    pod: str,
    *,
    container: str | None = None,
    since_seconds: int | None = None,
    limit_bytes: int = DEFAULT_LIMIT,
    timeout: float = 60.0,
) -> str:
    """The pod's log as text (invalid UTF-8 replaced), at most ``limit_bytes`` of it."""
    query = _query(
        container=container, since_seconds=since_seconds, limit_bytes=limit_bytes, follow=False
    )
    response = _open(client, namespace, pod, query, read_timeout=timeout)
    try:
        data = response.read(limit_bytes + 1)[:limit_bytes]
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise unavailable(exc, action="read the log of", what=f"Pod {namespace}/{pod}") from exc
    finally:
        response.release_conn()
    return bytes(data).decode("utf-8", "replace")


def follow_pod_log(
    client: KubeClient,
    namespace: str,
    pod: str,
    *,
    container: str | None = None,
    since_seconds: int | None = None,
) -> Iterator[str]:
    """The pod's log lines as they are written (``follow=true``), until the server ends it."""
    query = _query(container=container, since_seconds=since_seconds, limit_bytes=None, follow=True)
    response = _open(client, namespace, pod, query, read_timeout=None)
    pending = b""
    try:
        for chunk in response.stream(8192, decode_content=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line[:MAX_LINE].decode("utf-8", "replace")
            if len(pending) > MAX_LINE:
                pending = pending[:MAX_LINE]
        if pending:
            yield pending.decode("utf-8", "replace")
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise unavailable(exc, action="follow the log of", what=f"Pod {namespace}/{pod}") from exc
    finally:
        response.release_conn()
