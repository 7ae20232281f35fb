"""Label and field selectors, parsed once per request and matched per object.

Kubernetes clients filter LIST and WATCH on the server (kopf with label selectors, kubectl ``-l``,
controllers with ``metadata.name`` field selectors), so the emulator must understand the same
grammar: equality (``=``, ``==``, ``!=``), set-based (``in``, ``notin``), existence (``key``,
``!key``), comma meaning AND.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sealed_gitops.testing.kube.status import ApiError, bad_request

__all__ = ["Matcher", "parse_field_selector", "parse_label_selector"]

Matcher = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9._/-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside ``in (a,b)`` parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> Callable[[dict[str, str]], bool]:
    eq = _EQ_RE.match(text)
    if eq:
        key, op, value = eq.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    found = _SET_RE.match(text)
    if not found:
        raise bad_request(f"unable to parse requirement: {text.strip()!r}")
    negate, key, op, values_text = found.groups()
    if op:
        if negate:
            raise bad_request(f"unable to parse requirement: {text.strip()!r}")
        values = {v.strip() for v in values_text.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if negate:
        return lambda labels: key not in labels
    return lambda labels: key in labels


def parse_label_selector(selector: str | None) -> Matcher | None:
    """A matcher over ``metadata.labels``, or None when the selector selects everything."""
    if not selector or not selector.strip():
        return None
    requirements = [_requirement(part) for part in _split(selector)]

    def match(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return match


#: field paths the server can select on, for every kind (kind-specific ones added per resource)
_FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata.name": lambda o: str(o["metadata"].get("name", "")),
    "metadata.namespace": lambda o: str(o["metadata"].get("namespace", "")),
}
_KIND_FIELDS: dict[str, dict[str, Callable[[dict[str, Any]], str]]] = {
    "secrets": {"type": lambda o: str(o.get("type", ""))},
    "events": {
        "involvedObject.name": lambda o: str((o.get("involvedObject") or {}).get("name", "")),
        "involvedObject.kind": lambda o: str((o.get("involvedObject") or {}).get("kind", "")),
        "reason": lambda o: str(o.get("reason", "")),
    },
    "namespaces": {"status.phase": lambda o: str((o.get("status") or {}).get("phase", ""))},
}


def _field_test(
    getter: Callable[[dict[str, Any]], str], value: str, *, negate: bool
) -> Callable[[dict[str, Any]], bool]:
    def test(obj: dict[str, Any]) -> bool:
        return (getter(obj) == value) != negate

    return test


def parse_field_selector(selector: str | None, *, plural: str, kind: str) -> Matcher | None:
    """A matcher over the supported field paths; an unknown field answers 400 as a server does."""
    if not selector or not selector.strip():
        return None
    getters = {**_FIELDS, **_KIND_FIELDS.get(plural, {})}
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for part in _split(selector):
        found = _EQ_RE.match(part)
        if not found:
            raise bad_request(f"invalid selector: {selector!r}; can't understand {part!r}")
        path, op, value = found.groups()
        getter = getters.get(path)
        if getter is None:
            raise ApiError(
                400,
                f"field label not supported: {path}",
                reason="BadRequest",
            )
        tests.append(_field_test(getter, value, negate=op == "!="))
    del kind

    def match(obj: dict[str, Any]) -> bool:
        return all(test(obj) for test in tests)

    return match
