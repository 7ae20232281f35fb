"""Object storage with a global resourceVersion and a bounded watch history per resource.

Why it looks like this: a real API server's cost per request does not depend on how many requests it
has served, and GET does not depend on how many objects are stored. So objects live in one dict per
resource keyed by (namespace, name) (GET is one lookup), nothing about past requests is kept except
a fixed-size ring of recent watch events per resource (so a watch can resume from a recent
resourceVersion, and a too-old one gets 410 Gone as etcd compaction would give), and stored objects
are never mutated in place: every write stores a fresh dict, so readers and queued watch events can
share them without copying.
"""

from __future__ import annotations

import asyncio
import base64
import json
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sealed_gitops.testing.kube.selectors import Matcher
from sealed_gitops.testing.kube.status import bad_request, gone

__all__ = ["Bucket", "Event", "Store", "Watcher"]

Key = tuple[str, str]


@dataclass(frozen=True)
class Event:
    """One change, as a watch sends it; ``obj`` is shared and must not be mutated."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]
    #: the state before a MODIFIED, so a filtered watch can tell "entered" from "left" the filter
    prev: dict[str, Any] | None = None


@dataclass(eq=False)
class Watcher:
    """A live watch: events are pushed to its queue, filtering happens on the watcher's side."""

    namespace: str | None
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)


@dataclass
class Bucket:
    """The objects of one resource (all its versions), and its recent history."""

    history: int
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    events: deque[Event] = field(init=False)
    #: a resume from a version below this needs events that were dropped: 410 Gone
    compacted_rv: int = 0
    #: the resourceVersion of this resource's latest write (0: none yet), kept apart from the
    #: bounded history so a cache over one resource can tell whether it changed
    last_rv: int = 0
    watchers: set[Watcher] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.events = deque(maxlen=self.history)
        self._sorted: list[Key] | None = None

    def store(self, key: Key, obj: dict[str, Any]) -> None:
        if key not in self.objects:
            self._sorted = None  # only a new key changes the order; updates keep it
        self.objects[key] = obj

    def drop(self, key: Key) -> None:
        if self.objects.pop(key, None) is not None:
            self._sorted = None

    def keys(self, namespace: str | None) -> list[Key]:
        """Keys in namespace/name order, sorted once per membership change, not per LIST."""
        if self._sorted is None:
            self._sorted = sorted(self.objects)
        if namespace is None:
            return self._sorted
        # "\x00" sorts after every name and before any other namespace that starts with this one
        low = bisect_left(self._sorted, (namespace, ""))
        high = bisect_left(self._sorted, (namespace + "\x00", ""))
        return self._sorted[low:high]

    def record(self, event: Event) -> None:
        if len(self.events) == self.history:
            self.compacted_rv = self.events[0].rv
        self.events.append(event)
        self.last_rv = event.rv
        for watcher in self.watchers:
            ns = event.obj["metadata"].get("namespace")
            if watcher.namespace is None or watcher.namespace == ns:
                watcher.queue.put_nowait(event)

    def since(self, rv: int) -> list[Event]:
        """Events after ``rv``, or 410 if some of them were already dropped."""
        if rv < self.compacted_rv:
            raise gone(f"too old resource version: {rv} ({self.compacted_rv})")
        return [e for e in self.events if e.rv > rv]


class Store:
    """All buckets, and the one counter every write takes its resourceVersion from."""

    def __init__(self, *, history: int = 2000, first_rv: int = 1000) -> None:
        self.history = history
        # Versions below the first one never existed here; treating them as compacted makes an
        # arbitrary old version (a client's "1") answer 410 as a long-running real cluster would.
        self._first_rv = first_rv
        self._rv = first_rv
        self._buckets: dict[tuple[str, str], Bucket] = {}

    @property
    def rv(self) -> int:
        return self._rv

    def next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def bucket(self, key: tuple[str, str]) -> Bucket:
        found = self._buckets.get(key)
        if found is None:
            found = Bucket(history=self.history, compacted_rv=self._first_rv)
            self._buckets[key] = found
        return found

    def drop_bucket(self, key: tuple[str, str]) -> list[dict[str, Any]]:
        """Forget a resource entirely (its CRD was deleted); returns what it held."""
        found = self._buckets.pop(key, None)
        if found is None:
            return []
        for watcher in found.watchers:
            watcher.queue.put_nowait(None)
        return list(found.objects.values())

    def close_watchers(self) -> None:
        """End every open watch (the server is stopping)."""
        for bucket in self._buckets.values():
            for watcher in bucket.watchers:
                watcher.queue.put_nowait(None)

    # -- writes --------------------------------------------------------------------------------

    def put(
        self,
        key: tuple[str, str],
        obj: dict[str, Any],
        *,
        event_type: str,
        prev: dict[str, Any] | None = None,
    ) -> None:
        meta = obj["metadata"]
        bucket = self.bucket(key)
        bucket.store((meta.get("namespace", ""), meta["name"]), obj)
        bucket.record(Event(int(meta["resourceVersion"]), event_type, obj, prev))

    def remove(self, key: tuple[str, str], obj: dict[str, Any]) -> None:
        """Delete ``obj``; its final state (with a fresh resourceVersion) goes to watchers."""
        meta = obj["metadata"]
        bucket = self.bucket(key)
        bucket.drop((meta.get("namespace", ""), meta["name"]))
        bucket.record(Event(int(meta["resourceVersion"]), "DELETED", obj))

    # -- reads ---------------------------------------------------------------------------------

    def last_write(self, key: tuple[str, str]) -> int:
        """The resourceVersion of the latest write to one resource (0 if it never had one)."""
        found = self._buckets.get(key)
        return 0 if found is None else found.last_rv

    def get(self, key: tuple[str, str], namespace: str, name: str) -> dict[str, Any] | None:
        found = self._buckets.get(key)
        return None if found is None else found.objects.get((namespace, name))

    def items(self, key: tuple[str, str], namespace: str | None) -> Iterator[dict[str, Any]]:
        found = self._buckets.get(key)
        if found is None:
            return iter(())
        if namespace is None:
            return iter(list(found.objects.values()))
        return iter([found.objects[k] for k in found.keys(namespace)])

    def list(
        self,
        key: tuple[str, str],
        *,
        namespace: str | None,
        match: Matcher | None,
        limit: int,
        continue_token: str | None,
    ) -> tuple[list[dict[str, Any]], str, int | None]:
        """One page, sorted by namespace/name: (items, continue token or "", remaining count)."""
        found = self._buckets.get(key)
        if found is None:
            return [], "", None
        objects = found.objects
        keys = found.keys(namespace)
        start = 0
        if continue_token:
            # continue right after the last key the previous page sent
            start = bisect_right(keys, _decode_continue(continue_token))
        items: list[dict[str, Any]] = []
        index = start
        while index < len(keys) and (limit <= 0 or len(items) < limit):
            obj = objects[keys[index]]
            index += 1
            if match is None or match(obj):
                items.append(obj)
        if limit > 0 and index < len(keys):
            remaining = None
            if match is None:
                remaining = len(keys) - index
            last = keys[index - 1]
            return items, _encode_continue(last, self._rv), remaining
        return items, "", None


def _encode_continue(last: Key, rv: int) -> str:
    raw = json.dumps({"v": "emulator/1", "rv": rv, "start": list(last)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> Key:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        ns, name = data["start"]
        return (str(ns), str(name))
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion"
        ) from exc
