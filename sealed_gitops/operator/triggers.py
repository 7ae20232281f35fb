"""Wake-ups for the per-object reconcile loops: "this Repository has news", "reconcile that Sync".

Why not only kopf's own events: a Sync must react to its Repository's new revision, to a webhook,
to ``sealed-gitops reconcile`` and to its interval, and kopf delivers each of those differently (or
not at all for cross-object changes). Each reconcile loop waits on one :class:`Trigger` with a
timeout (its interval); everything else just calls :meth:`Triggers.fire`. Firing a trigger that
nobody waits on is remembered, so a wake-up that races with a reconcile is not lost.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

__all__ = ["Trigger", "Triggers"]

Key = tuple[str, str, str]  # (kind, namespace, name)


class Trigger:
    """A level-triggered wake-up flag with the reasons that set it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.reasons: list[str] = []

    def fire(self, reason: str) -> None:
        self.reasons.append(reason)
        self._event.set()

    async def wait(self, timeout: float) -> list[str]:
        """Wait until fired or ``timeout`` seconds pass; return (and clear) the reasons."""
        if not self._event.is_set():
            try:
                await asyncio.wait_for(self._event.wait(), timeout=max(timeout, 0.0))
            except TimeoutError:
                return ["interval"]
        self._event.clear()
        reasons, self.reasons = self.reasons, []
        return reasons or ["fired"]


class Triggers:
    """All triggers of one operator process, and which Syncs follow which Repository."""

    def __init__(self) -> None:
        self._triggers: dict[Key, Trigger] = {}
        self._followers: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)

    def get(self, kind: str, namespace: str, name: str) -> Trigger:
        key = (kind, namespace, name)
        trigger = self._triggers.get(key)
        if trigger is None:
            trigger = self._triggers[key] = Trigger()
        return trigger

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self._triggers.pop((kind, namespace, name), None)
        if kind == "Sync":
            for followers in self._followers.values():
                followers.discard((namespace, name))

    def fire(self, kind: str, namespace: str, name: str, *, reason: str) -> None:
        self.get(kind, namespace, name).fire(reason)

    def follow(self, *, sync: tuple[str, str], repository: tuple[str, str]) -> None:
        """Record that a Sync uses a Repository (replacing what it followed before)."""
        for followers in self._followers.values():
            followers.discard(sync)
        self._followers[repository].add(sync)

    def repository_changed(self, namespace: str, name: str, *, reason: str) -> list[str]:
        """Wake every Sync that follows the Repository; return their names (for logs)."""
        woken = []
        for sync_ns, sync_name in sorted(self._followers.get((namespace, name), ())):
            self.fire("Sync", sync_ns, sync_name, reason=reason)
            woken.append(f"{sync_ns}/{sync_name}")
        return woken
