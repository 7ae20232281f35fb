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


def _at(*path: str) -> Callable[[dict[str, Any]], str]:
    """A getter of the string at ``path`` ("" when absent, as a Go zero value)."""

    def get(obj: dict[str, Any]) -> str:
        value: Any = obj
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return "" if value is None else str(value)

    return get


_REFERENCE = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")


def _event_fields(*, reference: str, controller: str, source: str) -> dict[str, Any]:
    """An Event's selectable fields: the same set in both APIs, named after each API's fields.

    ``source`` is the legacy source component, falling back to the reporting controller (what
    the server's field set does since events.k8s.io/v1 writers leave the legacy one empty).
    """
    fields: dict[str, Callable[[dict[str, Any]], str]] = {
        f"{reference}.{part}": _at(reference, part) for part in _REFERENCE
    }
    legacy, reporting = _at(source, "component"), _at(controller)
    fields |= {
        "reason": _at("reason"),
        "type": _at("type"),
        controller: reporting,
        "source": lambda o: legacy(o) or reporting(o),
    }
    return fields


#: (group, plural) -> the fields kube-apiserver's field set of that kind adds
_KIND_FIELDS: dict[tuple[str, str], dict[str, Callable[[dict[str, Any]], str]]] = {
    ("", "secrets"): {"type": _at("type")},
    ("", "events"): _event_fields(
        reference="involvedObject", controller="reportingComponent", source="source"
    ),
    ("events.k8s.io", "events"): _event_fields(
        reference="regarding", controller="reportingController", source="deprecatedSource"
    ),
    ("", "namespaces"): {"status.phase": _at("status", "phase")},
}


def _field_test(
    getter: Callable[[dict[str, Any]], str], value: str, *, negate: bool
) -> Callable[[dict[str, Any]], bool]:
    def test(obj: dict[str, Any]) -> bool:
        return (getter(obj) == value) != negate

    return test


def _split_escaped(text: str) -> list[str]:
    """Split a field selector on commas a backslash does not escape (fields.ParseSelector)."""
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(value: str, selector: str) -> str:
    """Field selector values escape ``\\``, ``,`` and ``=`` with a backslash; nothing else."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                sequence = value[i : i + 2]
                raise bad_request(f"invalid field selector: invalid escape sequence: {sequence}")
            out.append(value[i + 1])
            i += 2
        elif value[i] in ",=":
            # Go names the rune by its code point
            raise bad_request(
                f"invalid field selector: unescaped character in value: {ord(value[i])}"
            )
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _term(part: str, selector: str) -> tuple[str, str, str]:
    """(field, operator, raw value) of one term: the first unescaped ``!=``, ``==`` or ``=``."""
    i = 0
    while i < len(part):
        if part[i] == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if part.startswith(op, i):
                return part[:i].strip(), op, part[i + len(op) :]
        i += 1
    raise bad_request(f"invalid selector: {selector!r}; can't understand {part!r}")


#: built-in kinds with field label conversions of their own: an unknown label is "not supported"
_CONVERTED = frozenset(_KIND_FIELDS) | {("", "pods"), ("batch", "jobs"), ("apps", "replicasets")}


def _unsupported(path: str, *, group: str, plural: str, custom: bool) -> ApiError:
    """The 400 for a field the kind cannot select on, worded as kube-apiserver words it.

    Kinds with their own field conversions (and custom resources) answer "field label not
    supported"; the rest answer with the fields every kind has.
    """
    if custom or (group, plural) in _CONVERTED:
        return ApiError(400, f"field label not supported: {path}", reason="BadRequest")
    return ApiError(
        400,
        f'"{path}" is not a known field selector: only "metadata.name", "metadata.namespace"',
        reason="BadRequest",
    )


def parse_field_selector(
    selector: str | None, *, plural: str, kind: str, group: str = "", custom: bool = False
) -> Matcher | None:
    """A matcher over the supported field paths; an unknown field answers 400 as a server does.

    The grammar is the server's: terms split on unescaped commas, values taken verbatim up to
    the next one (so ``involvedObject.apiVersion=sealed-gitops.io/v1alpha1`` is one value) with
    ``\\,``, ``\\=`` and ``\\\\`` as the only escapes.
    """
    if not selector or not selector.strip():
        return None
    getters = {**_FIELDS, **_KIND_FIELDS.get((group, plural), {})}
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for part in _split_escaped(selector):
        if not part.strip():
            continue
        path, op, raw = _term(part, selector)
        value = _unescape(raw, selector)
        getter = getters.get(path)
        if getter is None:
            raise _unsupported(path, group=group, plural=plural, custom=custom)
        tests.append(_field_test(getter, value, negate=op == "!="))
    del kind

    def match(obj: dict[str, Any]) -> bool:
        return all(test(obj) for test in tests)

    return match
