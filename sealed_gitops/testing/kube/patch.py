"""The three PATCH formats of the Kubernetes API: JSON patch, merge patch, strategic merge patch.

kopf sends JSON patches with ``test`` operations (a failed test must answer 422 so kopf retries),
kubectl and controllers send merge and strategic patches. Strategic merge differs from merge patch
in one way that matters: lists of objects with a merge key (``name`` for containers, env, volumes;
``containerPort`` for ports, ...) are merged item by item instead of replaced, and an item with
``$patch: delete`` is removed. All functions are pure: they return a new document.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from sealed_gitops.testing.kube.status import ApiError

__all__ = [
    "PatchError",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_patch",
    "merge_key",
]

#: merge keys tried in order; the first one every list item has wins
_MERGE_KEYS = ("name", "containerPort", "mountPath", "devicePath", "ip", "type", "topologyKey")


class PatchError(ApiError):
    """A patch that cannot apply; a failed ``test`` is 422 as on a real server."""


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(422, f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, dict):
            if part not in doc:
                raise PatchError(
                    422,
                    f"the server rejected our request due to an error in our "
                    f"request: missing path segment {part!r}",
                )
            doc = doc[part]
        elif isinstance(doc, list):
            doc = doc[_index(doc, part, allow_end=False)]
        else:
            raise PatchError(422, f"cannot walk into a scalar at {part!r}")
    return doc


def _index(doc: list[Any], part: str, *, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(doc)
    if not part.isdigit():
        raise PatchError(422, f"invalid list index {part!r}")
    index = int(part)
    if index > len(doc) or (index == len(doc) and not allow_end):
        raise PatchError(422, f"list index {index} out of range")
    return index


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(422, f"unable to remove nonexistent key: {last}")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, allow_end=False))
    raise PatchError(422, "cannot remove from a scalar")


def _add(doc: Any, parts: list[str], value: Any, *, replace: bool) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(422, f"replace operation does not apply: doc is missing key: {last}")
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last, allow_end=False)] = value
        else:
            parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise PatchError(422, "cannot add to a scalar")
    return doc


def apply_json_patch(doc: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902 over a copy of ``doc``."""
    if not isinstance(operations, list):
        raise PatchError(400, "json patch must be a list of operations")
    result: Any = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(400, f"invalid json patch operation: {json.dumps(op)[:200]}")
        kind, parts = op["op"], _pointer(op["path"])
        if kind == "add":
            result = _add(result, parts, copy.deepcopy(op.get("value")), replace=False)
        elif kind == "replace":
            result = _add(result, parts, copy.deepcopy(op.get("value")), replace=True)
        elif kind == "remove":
            _remove(result, parts)
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = (
                _remove(result, source) if kind == "move" else copy.deepcopy(_walk(result, source))
            )
            result = _add(result, parts, value, replace=False)
        elif kind == "test":
            try:
                current = _walk(result, parts)
            except PatchError:
                current = object()
            if current != op.get("value"):
                raise PatchError(
                    422,
                    f"the server rejected our request due to an error in our request: "
                    f"testing value {op['path']} failed",
                )
        else:
            raise PatchError(400, f"unknown json patch operation {kind!r}")
    if not isinstance(result, dict):
        raise PatchError(422, "the patched document is not an object")
    return result


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def merge_key(items: list[Any]) -> str | None:
    """The key an associative list is merged on, or None for an atomic list."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in _MERGE_KEYS:
        if all(key in i for i in items):
            return key
    return None


def apply_strategic_patch(doc: Any, patch: Any) -> Any:
    """Strategic merge: merge patch plus keyed list merging and ``$patch`` directives."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    result = dict(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue  # $setElementOrder, $retainKeys: ordering hints the emulator does not need
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value)
        elif isinstance(value, list):
            result[key] = [_strip(v) for v in value if not _is_delete(v)]
        else:
            result[key] = apply_strategic_patch(result.get(key), value)
    return result


def _is_delete(item: Any) -> bool:
    return isinstance(item, dict) and item.get("$patch") == "delete"


def _strip(item: Any) -> Any:
    if isinstance(item, dict):
        return {k: _strip(v) for k, v in item.items() if not k.startswith("$")}
    return copy.deepcopy(item)


def _merge_list(current: list[Any], patch: list[Any]) -> list[Any]:
    key = merge_key([i for i in patch if not (_is_delete(i) and len(i) == 1)] + current)
    if key is None:
        return [_strip(v) for v in patch]
    merged = list(current)
    for item in patch:
        position = next((n for n, old in enumerate(merged) if old.get(key) == item.get(key)), None)
        if _is_delete(item):
            if position is not None:
                merged.pop(position)
        elif position is None:
            merged.append(_strip(item))
        else:
            merged[position] = apply_strategic_patch(merged[position], item)
    return merged
