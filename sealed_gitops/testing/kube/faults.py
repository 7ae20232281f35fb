"""Fault injection: make the next N matching requests fail, stall, or lose their connection.

Why this module exists: the operator's retry, backoff and error-mapping paths (5xx, 409, timeouts,
a connection dropped mid-request) cannot be exercised against a server that always answers well,
and a real cluster cannot be told to fail on cue. A test arms a rule ("the next 2 PATCHes of
secrets in team-a answer 500"); the emulator's core asks :meth:`FaultInjector.take` once per
request and applies what it gets back before doing any real work.

Rules are matched in the order they were added; ``None`` in a rule matches anything. Each match
consumes one of the rule's ``count`` and a spent rule disappears, so a test that arms one fault gets
exactly one. The injector is thread-safe because tests arm faults from their own thread while the
server's loop consumes them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

__all__ = ["Fault", "FaultInjector"]


@dataclass
class Fault:
    """What to do to one request: wait ``delay`` seconds, then answer ``status`` or drop it.

    ``status`` None with ``drop`` False means "only delay, then serve normally". ``echo`` makes
    the answer quote the request body as a real server's 422 for a patch does (``patch: Invalid
    value: "<the patched object, Go-quoted>"``), or as an admission webhook that echoes the object.
    """

    status: int | None
    delay: float
    drop: bool
    echo: bool = False


@dataclass
class _Rule:
    verb: str | None
    resource: str | None
    namespace: str | None
    name: str | None
    remaining: int
    fault: Fault

    def matches(self, *, verb: str, resource: str, namespace: str | None, name: str | None) -> bool:
        return (
            (self.verb is None or self.verb == verb.lower())
            and (self.resource is None or self.resource == resource)
            and (self.namespace is None or self.namespace == namespace)
            and (self.name is None or self.name == name)
        )


class FaultInjector:
    """The armed fault rules of one emulator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def add(
        self,
        *,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        count: int = 1,
        status: int | None = None,
        delay: float = 0.0,
        drop: bool = False,
        echo: bool = False,
    ) -> None:
        """Arm a fault for the next ``count`` requests matching the given fields.

        ``verb`` is a Kubernetes verb (get, list, watch, create, update, patch, delete,
        deletecollection), compared case-insensitively.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"status {status} is not an HTTP status code")
        if delay < 0:
            raise ValueError("delay must not be negative")
        if status is None and not drop and delay == 0:
            raise ValueError("a fault needs a status, a delay or drop=True")
        if echo and status is None:
            raise ValueError("echo needs a status to answer with")
        rule = _Rule(
            verb=verb.lower() if verb is not None else None,
            resource=resource,
            namespace=namespace,
            name=name,
            remaining=count,
            fault=Fault(status=status, delay=delay, drop=drop, echo=echo),
        )
        with self._lock:
            self._rules.append(rule)

    def take(
        self, *, verb: str, resource: str, namespace: str | None, name: str | None
    ) -> Fault | None:
        """The fault for this request, consuming one use of the first matching rule."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                if rule.matches(verb=verb, resource=resource, namespace=namespace, name=name):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        del self._rules[index]
                    # A copy, so the caller cannot alter a rule that still has uses left.
                    return replace(rule.fault)
        return None

    def pending(self) -> int:
        """How many faults are still armed (the sum of the remaining counts)."""
        with self._lock:
            return sum(rule.remaining for rule in self._rules)

    def clear(self) -> None:
        """Disarm every rule."""
        with self._lock:
            self._rules.clear()
