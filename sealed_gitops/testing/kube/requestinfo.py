"""What a request is about: verb, API group, resource, namespace, name, subresource.

The same parse feeds fault matching, authorization and dispatch, exactly as the real server's
RequestInfoFactory feeds its filters, so a rule written for ``secrets`` in ``team-a`` matches the
same requests in all three places.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RequestInfo", "parse"]

_WATCH_VALUES = ("1", "true", "True")
_VERBS = {"get": "get", "post": "create", "put": "update", "patch": "patch"}


@dataclass(frozen=True)
class RequestInfo:
    is_resource: bool
    verb: str
    path: str
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str | None = None
    name: str | None = None


def parse(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    """The Kubernetes reading of ``method path?query``."""
    parts = [p for p in path.split("/") if p]
    lower = method.lower()
    if len(parts) < 2 or parts[0] not in ("api", "apis") or (parts[0] == "apis" and len(parts) < 3):
        return RequestInfo(False, lower, path)
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return RequestInfo(False, lower, path)
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) == 2:
        namespace = rest[1]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else ""
    if lower == "get" and name is None:
        verb = "watch" if query.get("watch") in _WATCH_VALUES else "list"
    elif lower == "delete":
        verb = "delete" if name is not None else "deletecollection"
    else:
        verb = _VERBS.get(lower, lower)
    return RequestInfo(True, verb, path, group, version, resource, subresource, namespace, name)
