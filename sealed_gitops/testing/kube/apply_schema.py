"""Server-side apply: the apply configuration must fit the kind's schema before it is merged.

Why: before merging, kube-apiserver's field manager converts the apply configuration into the
schema's type (structured-merge-diff), and a field the schema does not declare or a value of the
wrong JSON type fails that conversion with a 500 and no ``reason``, whatever ``fieldValidation``
says: ``failed to create typed patch object (NS/NAME; GROUP/VERSION, Kind=KIND): .spec.x: field
not declared in schema`` or ``.spec.prune: expected boolean, got &{yes}`` (observed on a
kube-apiserver built from source). A create or update would have pruned or 422'd instead, so the
operator's applies must be checked this way to behave as on a cluster. Only then do the merged
object's ``pattern``/``enum``/... checks run (422, :mod:`schema`).
"""

from __future__ import annotations

import json
from typing import Any

from sealed_gitops.testing.kube.builtin_fields import unknown_metadata
from sealed_gitops.testing.kube.resources import ResourceType
from sealed_gitops.testing.kube.status import ApiError

__all__ = ["apply_problems", "typed_patch_error"]

_ROOT = ("apiVersion", "kind", "metadata")
_KEEP = "x-kubernetes-preserve-unknown-fields"
#: schema type -> (what the conversion calls it, Python types that fit)
_TYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    "string": ("string", (str,)),
    "boolean": ("boolean", (bool,)),
    "integer": ("numeric (int or float)", (int, float)),
    "number": ("numeric (int or float)", (int, float)),
    "object": ("map", (dict,)),
    "array": ("list", (list,)),
}


def _go_syntax(value: Any) -> str:
    """A JSON value in Go's ``%#v`` syntax (``[]interface {}{"a"}``), as the error shows it."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(_go_syntax(v) for v in value) + "}"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(k)}:{_go_syntax(v)}" for k, v in sorted(value.items()))
        return "map[string]interface {}{" + items + "}"
    return "<nil>" if value is None else str(value)


def _shown(value: Any) -> str:
    """The value as the conversion error prints it (Go's ``%v`` of its value wrapper).

    Observed on kube-apiserver: ``&{yes}`` for a string and ``&{1.5}`` for a float,
    ``&value.valueUnstructured{Value:true}`` for a boolean or an integer, and Go syntax inside
    for a list (``Value:[]interface {}{"a"}``); maps are assumed to print alike.
    """
    if isinstance(value, str | float):
        return f"&{{{value}}}"
    return f"&value.valueUnstructured{{Value:{_go_syntax(value)}}}"


def _type_problem(value: Any, schema: dict[str, Any], path: str) -> str | None:
    if value is None or schema.get("x-kubernetes-int-or-string"):
        if value is None or (isinstance(value, int | str) and not isinstance(value, bool)):
            return None
        return f".{path}: expected int-or-string, got {_shown(value)}"
    wanted = _TYPES.get(str(schema.get("type", "")))
    if wanted is None:
        return None
    name, fits = wanted
    if isinstance(value, bool) and bool not in fits:
        return f".{path}: expected {name}, got {_shown(value)}"
    if isinstance(value, fits):
        return None
    return f".{path}: expected {name}, got {_shown(value)}"


def apply_problems(
    value: Any, schema: dict[str, Any], *, path: str = "", root: bool = True
) -> list[str]:
    """What the typed conversion of an apply configuration reports, in document order."""
    problem = None if root else _type_problem(value, schema, path)
    if problem is not None:
        return [problem]
    found: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if root and key == "metadata" and isinstance(item, dict):
                meta = unknown_metadata(item, drop=False)
                found += [f".{path}: field not declared in schema" for path in meta]
                continue
            if root and key in _ROOT:
                continue
            child = f"{path}.{key}" if path else key
            if properties is not None and key in properties:
                found += apply_problems(item, properties[key], path=child, root=False)
            elif isinstance(extra, dict):
                found += apply_problems(item, extra, path=child, root=False)
            elif not schema.get(_KEEP) and extra is not True:
                found.append(f".{child}: field not declared in schema")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += apply_problems(item, schema["items"], path=f"{path}[{i}]", root=False)
    return found


def typed_patch_error(rt: ResourceType, applied: dict[str, Any], problems: list[str]) -> ApiError:
    """The 500 (no ``reason``) naming the object as the apply configuration does."""
    meta = applied.get("metadata") or {}
    where = f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
    listed = problems[0] if len(problems) == 1 else "errors:\n  " + "\n  ".join(problems)
    return ApiError(
        500,
        f"failed to create typed patch object ({where}; {rt.group}/{rt.version}, Kind={rt.kind}): "
        f"{listed}",
        reason="",
    )
