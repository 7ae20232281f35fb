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
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sealed_gitops.testing.kube.resources import ResourceType
from sealed_gitops.testing.kube.selectors import Matcher
from sealed_gitops.testing.kube.status import ApiError, bad_request
from sealed_gitops.testing.kube.store import Event, Store, Watcher

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


@dataclass
class _Params:
    """The watch parameters of one request."""

    rv_text: str
    timeout: float
    bookmarks: bool
    initial: bool

    @classmethod
    def parse(cls, request: web.Request) -> _Params:
        query = request.query
        try:
            timeout = float(query.get("timeoutSeconds") or _DEFAULT_TIMEOUT)
        except ValueError as exc:
            raise bad_request("timeoutSeconds must be a number") from exc
        return cls(
            rv_text=query.get("resourceVersion", ""),
            timeout=timeout,
            bookmarks=query.get("allowWatchBookmarks") in ("true", "1"),
            initial=query.get("sendInitialEvents") == "true",
        )


def _backlog(
    store: Store, rt: ResourceType, namespace: str | None, params: _Params
) -> tuple[list[Event], int]:
    """What to send before live events, and the version live events must be newer than."""
    if params.rv_text in ("", "0") or params.initial:
        objs = sorted(
            store.items(rt.key, namespace),
            key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
        )
        return [Event(store.rv, "ADDED", o) for o in objs], store.rv
    try:
        start_rv = int(params.rv_text)
    except ValueError as exc:
        raise bad_request(f"invalid resource version {params.rv_text!r}") from exc
    return store.bucket(rt.key).since(start_rv), start_rv


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
    params = _Params.parse(request)
    watcher = Watcher(namespace=namespace if rt.namespaced else None)
    bucket = store.bucket(rt.key)
    # Snapshot and subscription happen without an await in between, so no event can fall
    # between the backlog and the live stream.
    error: ApiError | None = None
    backlog: list[Event] = []
    start_rv = store.rv
    try:
        backlog, start_rv = _backlog(store, rt, watcher.namespace, params)
    except ApiError as exc:
        error = exc  # a real server answers 200 and an ERROR event (410 for a compacted version)
    bucket.watchers.add(watcher)
    response = web.StreamResponse(
        headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
    )
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        if error is not None:
            await response.write(_line("ERROR", error.body()))
        else:
            for event in backlog:
                kind = _filtered_type(event, watcher.namespace, match)
                if kind is not None:
                    await response.write(_line(kind, render(event.obj)))
            if params.initial and params.bookmarks:
                await response.write(_line("BOOKMARK", _bookmark(rt, store.rv, initial_end=True)))
            await _live(
                response,
                watcher,
                params,
                start_rv=start_rv,
                rt=rt,
                store=store,
                match=match,
                render=render,
                bookmark_interval=bookmark_interval,
            )
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away; nothing to finish
    finally:
        bucket.watchers.discard(watcher)
    return response


async def _live(
    response: web.StreamResponse,
    watcher: Watcher,
    params: _Params,
    *,
    start_rv: int,
    rt: ResourceType,
    store: Store,
    match: Matcher | None,
    render: Callable[[dict[str, Any]], dict[str, Any]],
    bookmark_interval: float,
) -> None:
    deadline = time.monotonic() + params.timeout
    next_bookmark = time.monotonic() + bookmark_interval
    while (now := time.monotonic()) < deadline:
        wait = deadline - now
        if params.bookmarks:
            wait = min(wait, max(0.0, next_bookmark - now))
        try:
            event = await asyncio.wait_for(watcher.queue.get(), timeout=wait)
        except TimeoutError:
            if params.bookmarks and time.monotonic() >= next_bookmark:
                # Only sent while the queue is empty: every event up to store.rv was delivered.
                await response.write(_line("BOOKMARK", _bookmark(rt, store.rv)))
                next_bookmark = time.monotonic() + bookmark_interval
            continue
        if event is None:
            return  # the resource went away (its CRD was deleted) or the server is stopping
        kind = _filtered_type(event, watcher.namespace, match) if event.rv > start_rv else None
        if kind is not None:
            await response.write(_line(kind, render(event.obj)))


def _filtered_type(event: Event, namespace: str | None, match: Matcher | None) -> str | None:
    """The event type a filtered watch sees: an object entering the filter is ADDED to it, one
    leaving it is DELETED from it (as the real watch cache reports selector transitions)."""
    now = _visible(event.obj, namespace, match)
    if event.type != "MODIFIED" or event.prev is None or match is None:
        return event.type if now else None
    before = _visible(event.prev, namespace, match)
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    return "DELETED" if before else None


def _visible(obj: dict[str, Any], namespace: str | None, match: Matcher | None) -> bool:
    if namespace is not None and obj["metadata"].get("namespace") != namespace:
        return False
    return match is None or match(obj)
