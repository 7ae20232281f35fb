"""Bounded memory for the webhook receiver: deliveries already acted on, per-Repository rate
limits, and a short-lived cache of webhook secrets.

Why (issue 11, finding 11): a signed delivery could be replayed without limit, and each replay
cost two API writes (the ``requested-at`` annotation, then the status of the reconcile it woke);
every unsigned request cost two API reads. A webhook caller knows no secret but may send as many
requests as it likes, so everything kept here is bounded in entries (least recently used entries
are forgotten first) and in time: an attacker can make the receiver forget, never grow.

No I/O and no asyncio: the receiver runs on one event loop, so plain dictionaries suffice.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Bucket", "DeliveryLog", "RateLimits", "TtlCache"]

K = TypeVar("K")
V = TypeVar("V")

Clock = Callable[[], float]


class TtlCache(Generic[K, V]):
    """At most ``size`` entries, each forgotten ``ttl`` seconds after it was stored."""

    def __init__(self, *, size: int, ttl: float, clock: Clock = time.monotonic) -> None:
        if size < 1 or ttl <= 0:
            raise ValueError("a cache needs a positive size and ttl")
        self._size, self._ttl, self._clock = size, ttl, clock
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        """(found, value); an expired entry is dropped and not found."""
        item = self._items.get(key)
        if item is None:
            return False, None
        expires, value = item
        if expires <= self._clock():
            del self._items[key]
            return False, None
        self._items.move_to_end(key)
        return True, value

    def put(self, key: K, value: V) -> None:
        self._items[key] = (self._clock() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def discard(self, key: K) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class DeliveryLog:
    """Deliveries already taken, by any of their keys (delivery id, signed body digest).

    A key is *claimed* before the API write and *released* if that write fails, so a sender's
    retry of a delivery that was not recorded is taken, while two copies racing are not both.
    """

    def __init__(self, *, size: int = 4096, ttl: float = 3600.0, clock: Clock = time.monotonic):
        self._seen: TtlCache[tuple[str, ...], bool] = TtlCache(size=size, ttl=ttl, clock=clock)

    def seen(self, *keys: tuple[str, ...]) -> bool:
        return any(self._seen.get(key)[0] for key in keys)

    def claim(self, *keys: tuple[str, ...]) -> None:
        for key in keys:
            self._seen.put(key, True)

    def release(self, *keys: tuple[str, ...]) -> None:
        for key in keys:
            self._seen.discard(key)

    def __len__(self) -> int:
        return len(self._seen)


@dataclass
class Bucket:
    """A token bucket: ``capacity`` deliveries at once, then one every ``1/rate`` seconds."""

    tokens: float
    updated: float


class RateLimits:
    """One token bucket per Repository, at most ``size`` of them (the least recently used go;
    a forgotten bucket starts full again, which only ever allows what a fresh Repository gets)."""

    def __init__(
        self,
        *,
        capacity: float = 10.0,
        rate: float = 1.0 / 6.0,
        size: int = 4096,
        clock: Clock = time.monotonic,
    ) -> None:
        if capacity < 1 or rate <= 0 or size < 1:
            raise ValueError("a rate limit needs capacity >= 1, a positive rate and size")
        self.capacity, self.rate, self._size, self._clock = capacity, rate, size, clock
        self._buckets: OrderedDict[tuple[str, str], Bucket] = OrderedDict()

    def take(self, key: tuple[str, str]) -> float:
        """0 if a token was taken, else the seconds until one will be there (for Retry-After)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = Bucket(tokens=self.capacity, updated=now)
            self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._size:
            self._buckets.popitem(last=False)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)
