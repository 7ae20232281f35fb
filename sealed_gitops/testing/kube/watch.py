"""WATCH: a chunked stream of ``{"type": ..., "object": ...}`` lines.

Resume semantics follow the real server: no resourceVersion (or "0") starts with a synthetic ADDED
per existing object; a recent version replays what happened since from the resource's ring buffer;
a version older than the buffer answers an ERROR event carrying a 410 ``Status`` (what client-go,
kopf and the Python client all handle by re-listing). ``timeoutSeconds`` ends the stream;
``allowWatchBookmarks`` adds BOOKMARK events, and ``sendInitialEvents=true`` ends the initial
ADDED events with the ``k8s.io/initial-events-end`` bookmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sealed_gitops.testing.kube.resources import ResourceType
from sealed_gitops.testing.kube.selectors import Matcher
from sealed_gitops.testing.kube.status import ApiError, bad_request
from sealed_gitops.testing.kube.store import Store, Watcher

__all__ = ["serve_watch"]

#: longest a watch stays open without timeoutSeconds (a real server picks 30-60 minutes)
_DEFAULT_TIMEOUT = 1800.0


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _bookmark(rt: ResourceType, rv: int, *, initial_end: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}


async def serve_watch(
    request: web.Request,
    *,
    rt: ResourceType,
    store: Store,
    namespace: str | None,
    match: Matcher | None,
    render: Callable[[dict[str, Any]], dict[str, Any]],
    bookmark_interval: float,
) -> web.StreamResponse:
    query = request.query
    rv_text = query.get("resourceVersion", "")
    try:
        timeout = float(query.get("timeoutSeconds") or _DEFAULT_TIMEOUT)
    except ValueError as exc:
        raise bad_request("timeoutSeconds must be a number") from exc
    bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
    initial = query.get("sendInitialEvents") == "true"
    bucket = store.bucket(rt.key)
    watcher = Watcher(namespace=namespace if rt.namespaced else None)
    # Subscribe before reading the backlog: both happen without an await in between, so no event
    # can fall between the snapshot and the live stream.
    backlog: list[tuple[str, dict[str, Any]]] = []
    error: ApiError | None = None
    if rv_text in ("", "0") or initial:
        objs = store.items(rt.key, watcher.namespace)
        backlog = [("ADDED", o) for o in sorted(objs, key=lambda o: (
            o["metadata"].get("namespace", ""), o["metadata"]["name"]))]
        start_rv = store.rv
    else:
        try:
            start_rv = int(rv_text)
            backlog = [(e.type, e.obj) for e in bucket.since(start_rv)]
        except ValueError:
            error = bad_request(f"invalid resource version {rv_text!r}")
        except ApiError as exc:
            error = exc
    bucket.watchers.add(watcher)
    response = web.StreamResponse(headers={"Content-Type": "application/json",
                                           "Cache-Control": "no-cache, private"})
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        if error is not None:
            await response.write(_line("ERROR", error.body()))
            return response
        last_rv = start_rv
        for kind, obj in backlog:
            if _visible(obj, watcher.namespace, match):
                await response.write(_line(kind, render(obj)))
            last_rv = max(last_rv, int(obj["metadata"]["resourceVersion"]))
        if initial and bookmarks:
            await response.write(_line("BOOKMARK", _bookmark(rt, store.rv, initial_end=True)))
        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + bookmark_interval
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            wait = deadline - now
            if bookmarks:
                wait = min(wait, max(0.0, next_bookmark - now))
            try:
                event = await asyncio.wait_for(watcher.queue.get(), timeout=wait)
            except TimeoutError:
                if bookmarks and time.monotonic() >= next_bookmark:
                    await response.write(_line("BOOKMARK", _bookmark(rt, max(last_rv, store.rv))))
                    next_bookmark = time.monotonic() + bookmark_interval
                continue
            if event is None:
                break  # the resource went away (its CRD was deleted)
            last_rv = max(last_rv, event.rv)
            if _visible(event.obj, watcher.namespace, match) and event.rv > start_rv:
                await response.write(_line(event.type, render(event.obj)))
    except ConnectionResetError:
        return response
    finally:
        bucket.watchers.discard(watcher)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


def _visible(obj: dict[str, Any], namespace: str | None, match: Matcher | None) -> bool:
    if namespace is not None and obj["metadata"].get("namespace") != namespace:
        return False
    return match is None or match(obj)
