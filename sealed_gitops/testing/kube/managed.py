"""Field ownership (``metadata.managedFields``) and server-side apply.

The operator applies everything with server-side apply, so the emulator must keep the three
promises that make SSA safe: every manager's fields are recorded (in the ``FieldsV1`` format real
servers write, e.g. ``{"f:data": {"f:key": {}}}`` and ``k:{"name":"c"}`` for list items), applying
a value another manager owns is a 409 listing the fields unless ``force=true``, and a field the
applier owned last time but no longer sends is removed (unless someone else still owns it).

Simplifications, deliberate: lists of objects are associative when their items share a merge key
(``name`` first, see :mod:`patch`), every other list is atomic; there is no schema, so CRD lists of
named objects are associative too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sealed_gitops.testing.kube.patch import apply_strategic_patch, merge_key
from sealed_gitops.testing.kube.status import ApiError

__all__ = ["Entry", "apply", "decode", "encode", "field_paths", "record_update"]

Path = tuple[str, ...]

#: metadata fields the server owns; no manager ever does
_SERVER_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
        "generateName",
    }
)
_MISSING = object()


@dataclass
class Entry:
    manager: str
    operation: str  # Apply | Update
    api_version: str
    time: str
    subresource: str = ""
    paths: set[Path] = field(default_factory=set)

    def ident(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)


def _walk(value: Any, prefix: Path, out: set[Path]) -> None:
    if isinstance(value, dict):
        if not value:
            out.add(prefix)
        for key, child in value.items():
            _walk(child, (*prefix, f"f:{key}"), out)
    elif isinstance(value, list):
        key = merge_key(value)
        if key is None:
            out.add(prefix)
            return
        for item in value:
            item_path = (*prefix, _item_key(key, item))
            out.add((*item_path, "."))
            for child_key, child in item.items():
                _walk(child, (*item_path, f"f:{child_key}"), out)
    else:
        out.add(prefix)


def _item_key(key: str, item: dict[str, Any]) -> str:
    return "k:" + json.dumps({key: item[key]}, separators=(",", ":"))


def field_paths(obj: dict[str, Any], *, part: str) -> set[Path]:
    """Leaf paths of ``obj`` a manager can own; ``part`` is "main" (no status) or "status"."""
    out: set[Path] = set()
    if part == "status":
        if "status" in obj:
            _walk(obj["status"], ("f:status",), out)
        return out
    for key, value in obj.items():
        if key in ("apiVersion", "kind") or (key == "status" and part == "main"):
            continue
        if key == "metadata":
            for meta_key, meta_value in (value or {}).items():
                if meta_key not in _SERVER_META:
                    _walk(meta_value, ("f:metadata", f"f:{meta_key}"), out)
            continue
        _walk(value, (f"f:{key}",), out)
    return out


def value_at(obj: Any, path: Path) -> Any:
    for step in path:
        if step == ".":
            return obj
        if step.startswith("f:") and isinstance(obj, dict):
            obj = obj.get(step[2:], _MISSING)
        elif step.startswith("k:") and isinstance(obj, list):
            wanted = json.loads(step[2:])
            obj = next(
                (
                    i
                    for i in obj
                    if isinstance(i, dict) and all(i.get(k) == v for k, v in wanted.items())
                ),
                _MISSING,
            )
        else:
            return _MISSING
        if obj is _MISSING:
            return _MISSING
    return obj


def _remove(obj: Any, path: Path) -> None:
    parent = obj
    for step in path[:-1]:
        if step == ".":
            return
        parent = value_at(parent, (step,))
        if parent is _MISSING:
            return
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)


def _remove_item(obj: Any, path: Path) -> None:
    """Remove the list item ``path`` (ending in ``k:...``) names."""
    container = value_at(obj, path[:-1])
    if isinstance(container, list):
        wanted = json.loads(path[-1][2:])
        container[:] = [
            i
            for i in container
            if not (isinstance(i, dict) and all(i.get(k) == v for k, v in wanted.items()))
        ]


def to_tree(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for step in path:
            node = node.setdefault(step, {})
    return tree


def _from_tree(tree: dict[str, Any], prefix: Path, out: set[Path]) -> None:
    for step, child in tree.items():
        path = (*prefix, step)
        if isinstance(child, dict) and child:
            _from_tree(child, path, out)
        else:
            out.add(path)


def decode(obj: dict[str, Any]) -> list[Entry]:
    entries = []
    for raw in (obj.get("metadata") or {}).get("managedFields") or []:
        paths: set[Path] = set()
        _from_tree(raw.get("fieldsV1") or {}, (), paths)
        entries.append(
            Entry(
                manager=raw.get("manager", ""),
                operation=raw.get("operation", "Update"),
                api_version=raw.get("apiVersion", ""),
                time=raw.get("time", ""),
                subresource=raw.get("subresource", ""),
                paths=paths,
            )
        )
    return entries


def encode(entries: list[Entry]) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        if not e.paths:
            continue
        raw: dict[str, Any] = {
            "manager": e.manager,
            "operation": e.operation,
            "apiVersion": e.api_version,
            "time": e.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_tree(e.paths),
        }
        if e.subresource:
            raw["subresource"] = e.subresource
        out.append(raw)
    return out


def _entry(entries: list[Entry], ident: tuple[str, str, str], api_version: str, now: str) -> Entry:
    for e in entries:
        if e.ident() == ident:
            e.api_version, e.time = api_version, now
            return e
    created = Entry(ident[0], ident[1], api_version, now, ident[2])
    entries.append(created)
    return created


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    subresource: str,
    part: str,
    now: str,
) -> list[dict[str, Any]]:
    """managedFields after a non-apply write: changed fields move to ``manager``."""
    entries = decode(old) if old is not None else []
    new_paths = field_paths(new, part=part)
    changed = {
        p
        for p in new_paths
        if old is None
        or (p[-1] == "." and value_at(old, p[:-1]) is _MISSING)
        or (p[-1] != "." and value_at(old, p) != value_at(new, p))
    }
    every = field_paths(new, part="all")
    for e in entries:
        e.paths &= every
        if changed:
            e.paths -= changed
    if changed:
        target = _entry(entries, (manager, "Update", subresource), api_version, now)
        target.paths |= changed
    return encode(entries)


def _dotted(path: Path) -> str:
    text = ""
    for step in path:
        if step.startswith("f:"):
            text += "." + step[2:]
        elif step.startswith("k:"):
            text += (
                "["
                + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(step[2:]).items())
                + "]"
            )
    return text


def apply(
    live: dict[str, Any],
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    api_version: str,
    subresource: str,
    part: str,
    now: str,
) -> dict[str, Any]:
    """Server-side apply of ``applied`` onto ``live`` (a fresh copy), managedFields included."""
    entries = decode(live)
    me = (manager, "Apply", subresource)
    wanted = field_paths(applied, part=part)
    conflicts = _conflicts(entries, manager, wanted, live, applied)
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for path, owners in conflicts.items():
        for e in owners:
            e.paths.discard(path)
    mine = _entry(entries, me, api_version, now)
    others = [p for e in entries if e is not mine for p in e.paths]
    result = json.loads(json.dumps(live))
    _prune(result, mine.paths - wanted, others)
    mine.paths = wanted
    if part == "status":
        patch = {"status": applied.get("status", {})}
    else:
        patch = {k: v for k, v in applied.items() if k != "status" or part == "all"}
        patch["metadata"] = {
            k: v for k, v in (applied.get("metadata") or {}).items() if k not in _SERVER_META
        }
    result = apply_strategic_patch(result, _no_nulls(patch))
    result.setdefault("metadata", {})["managedFields"] = encode(entries)
    return dict(result)


def _conflicts(
    entries: list[Entry],
    manager: str,
    wanted: set[Path],
    live: dict[str, Any],
    applied: dict[str, Any],
) -> dict[Path, list[Entry]]:
    """Fields another manager owns that the apply would set to a different value."""
    found: dict[Path, list[Entry]] = {}
    for e in entries:
        if e.manager == manager:
            continue
        for path in wanted & e.paths:
            if path[-1] != "." and value_at(live, path) != value_at(applied, path):
                found.setdefault(path, []).append(e)
    return found


def _prune(obj: dict[str, Any], dropped: set[Path], others: list[Path]) -> None:
    """Remove the fields an applier stopped sending, unless another manager still owns them."""
    for path in sorted(dropped, key=len, reverse=True):
        # a list item ("k:..", ".") survives while anyone owns any of its fields
        stem = path[:-1] if path[-1] == "." else path
        if any(o[: len(stem)] == stem for o in others):
            continue
        if path[-1] == ".":
            _remove_item(obj, stem)
        else:
            _remove(obj, path)


def _no_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value]
    return value


def _manager_text(e: Entry) -> str:
    """How a conflict names a manager: its subresource, and its apiVersion for an Update."""
    text = f'conflict with "{e.manager}"'
    if e.subresource:
        text += f' with subresource "{e.subresource}"'
    if e.operation == "Update" and e.api_version:
        text += f" using {e.api_version}"
    return text


def _conflict_error(conflicts: dict[Path, list[Entry]]) -> ApiError:
    causes = []
    for path in sorted(conflicts):
        for e in conflicts[path]:
            causes.append(
                {
                    "reason": "FieldManagerConflict",
                    "message": _manager_text(e),
                    "field": _dotted(path),
                }
            )
    count = len(causes)
    if count == 1:
        text = f"Apply failed with 1 conflict: {causes[0]['message']}: {causes[0]['field']}"
    else:
        text = f"Apply failed with {count} conflicts: " + "\n".join(
            f"{c['message']}: {c['field']}" for c in causes
        )
    return ApiError(409, text, reason="Conflict", details={"causes": causes})
