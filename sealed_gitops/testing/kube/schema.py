"""A custom resource checked against its CRD's ``openAPIV3Schema``, as kube-apiserver does.

Why: the operator and the CLI write Syncs, Repositories and KeyRings, and people write them by
hand; a real server prunes fields the schema does not declare, fills in ``default`` values and
refuses (422 Invalid, one ``details.causes`` entry per field) what breaks ``type``, ``required``,
``pattern``, ``maxLength``/``minLength``, ``enum``, ``minimum``/``maximum``, ``minItems``/
``maxItems``, ``maxProperties`` or ``nullable``. An emulator that stored anything let tests
pass that fail on a cluster. The order is the server's: prune (unknown fields are refused with
400 under ``fieldValidation=Strict``, what kubectl sends, and reported as warnings under
``Warn``), default, then validate. Patterns are RE2 (the server's dialect) through the
project's wrapper: a CRD is input like any other. Messages follow kube-openapi's
(``spec.path in body should match '...'``) wrapped in apimachinery's field errors
(``spec.path: Invalid value: "x": ...``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from sealed_gitops.crypto.patterns import compile_pattern
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.testing.kube.builtin_fields import unknown_metadata
from sealed_gitops.testing.kube.resources import ResourceType
from sealed_gitops.testing.kube.status import ApiError
from sealed_gitops.testing.kube.validation import DecodeError

__all__ = [
    "FieldError",
    "admit",
    "default",
    "prune",
    "validate",
]

#: fields every object keeps whatever the schema says (metadata is checked elsewhere)
_ROOT = ("apiVersion", "kind", "metadata")
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"


@dataclass(frozen=True)
class FieldError:
    """One ``details.causes`` entry: the field, apimachinery's reason, and its message."""

    field: str
    reason: str
    message: str


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path and key else path or key


def _quote(value: Any) -> str:
    """A bad value as apimachinery's field errors print it."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) or value is None:
        return "null" if value is None else str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


# -- pruning --------------------------------------------------------------------------------------


def prune(obj: Any, schema: dict[str, Any], *, path: str = "", root: bool = True) -> list[str]:
    """Remove, in place, what ``schema`` does not declare; the paths of what was removed."""
    removed: list[str] = []
    if schema.get(_PRESERVE) and not schema.get("properties") and not schema.get("items"):
        return removed
    if isinstance(obj, dict) and schema.get(_INT_OR_STRING) is None:
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key in list(obj):
            if root and key == "metadata" and isinstance(obj[key], dict):
                removed += unknown_metadata(obj[key], drop=True)
                continue
            if root and key in _ROOT:
                continue
            child = _join(path, key)
            if properties is not None and key in properties:
                removed += prune(obj[key], properties[key], path=child, root=False)
            elif isinstance(extra, dict):
                removed += prune(obj[key], extra, path=child, root=False)
            elif not schema.get(_PRESERVE) and extra is not True:
                del obj[key]
                removed.append(child)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            removed += prune(item, schema["items"], path=f"{path}[{i}]", root=False)
    return removed


# -- defaulting -----------------------------------------------------------------------------------


def default(obj: Any, schema: dict[str, Any]) -> None:
    """Fill in ``default`` values, in place: a missing field, or a null where null is not allowed.

    A null the schema neither allows nor defaults is dropped, as the server's defaulting does.
    """
    if isinstance(obj, dict):
        properties = schema.get("properties") or {}
        for key, sub in properties.items():
            if "default" in sub and (
                key not in obj or (obj[key] is None and not sub.get("nullable"))
            ):
                obj[key] = copy.deepcopy(sub["default"])
            elif key in obj and obj[key] is None and not sub.get("nullable"):
                del obj[key]
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            sub = properties.get(key) or (extra if isinstance(extra, dict) else None)
            if sub is not None:
                default(value, sub)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            default(item, schema["items"])


# -- validation -----------------------------------------------------------------------------------


def _in_body(path: str, text: str) -> str:
    return f"{path} in body {text}"


def _invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, "FieldValueInvalid", f"Invalid value: {_quote(value)}: {detail}")


def _type_problem(value: Any, schema: dict[str, Any], path: str) -> FieldError | None:
    wanted = schema.get("type")
    if schema.get(_INT_OR_STRING):
        wanted = "integer,string"
    if value is None:
        if wanted and not schema.get("nullable"):
            detail = _in_body(path, f'must be of type {wanted}: "null"')
            return FieldError(path, "FieldValueTypeInvalid", f'Invalid value: "null": {detail}')
        return None
    actual = _type_name(value)
    allowed = set(str(wanted).split(",")) if wanted else set()
    if "number" in allowed:
        allowed.add("integer")
    if not allowed or actual in allowed:
        return None
    detail = _in_body(path, f'must be of type {wanted}: "{actual}"')
    return FieldError(path, "FieldValueTypeInvalid", f'Invalid value: "{actual}": {detail}')


def _string_problems(value: str, schema: dict[str, Any], path: str) -> list[FieldError]:
    found: list[FieldError] = []
    longest = schema.get("maxLength")
    if longest is not None and len(value) > longest:
        found.append(
            FieldError(path, "FieldValueTooLong", f"Too long: may not be more than {longest} bytes")
        )
    shortest = schema.get("minLength")
    if shortest is not None and len(value) < shortest:
        detail = _in_body(path, f"should be at least {shortest} chars long")
        found.append(_invalid(path, value, detail))
    if "pattern" in schema:
        try:
            matches = compile_pattern(schema["pattern"], what=f"{path} pattern").search(value)
        except SealedGitopsError as exc:
            raise ApiError(500, f"the CRD's pattern for {path} does not compile: {exc}") from exc
        if not matches:
            found.append(
                _invalid(path, value, _in_body(path, f"should match '{schema['pattern']}'"))
            )
    return found


def _number_problems(value: float, schema: dict[str, Any], path: str) -> list[FieldError]:
    found: list[FieldError] = []
    bound = schema.get("maximum")
    if bound is not None:
        exclusive = schema.get("exclusiveMaximum")
        if value > bound or (exclusive and value == bound):
            word = "less than" if exclusive else "less than or equal to"
            found.append(_invalid(path, value, _in_body(path, f"should be {word} {bound}")))
    bound = schema.get("minimum")
    if bound is not None:
        exclusive = schema.get("exclusiveMinimum")
        if value < bound or (exclusive and value == bound):
            word = "greater than" if exclusive else "greater than or equal to"
            found.append(_invalid(path, value, _in_body(path, f"should be {word} {bound}")))
    return found


def _enum_problem(value: Any, schema: dict[str, Any], path: str) -> FieldError | None:
    allowed = schema.get("enum")
    if allowed is None or value in allowed:
        return None
    listed = ", ".join(
        json.dumps(v) if isinstance(v, str) else json.dumps(json.dumps(v)) for v in allowed
    )
    return FieldError(
        path,
        "FieldValueNotSupported",
        f"Unsupported value: {_quote(value)}: supported values: {listed}",
    )


def validate(value: Any, schema: dict[str, Any], *, path: str = "") -> list[FieldError]:
    """Every way ``value`` breaks ``schema``; a type error stops the checks below that node."""
    problem = _type_problem(value, schema, path)
    if problem is not None:
        return [problem]
    if value is None:
        return []
    found: list[FieldError] = []
    enum = _enum_problem(value, schema, path)
    if enum is not None:
        found.append(enum)
    if isinstance(value, str):
        found += _string_problems(value, schema, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        found += _number_problems(value, schema, path)
    elif isinstance(value, list):
        found += _list_problems(value, schema, path)
    elif isinstance(value, dict):
        found += _mapping_problems(value, schema, path)
    return found


def _mapping_problems(value: dict[str, Any], schema: dict[str, Any], path: str) -> list[FieldError]:
    found: list[FieldError] = []
    most = schema.get("maxProperties")
    if most is not None and len(value) > most:
        # The server reports it as it does maxItems (field.TooMany).
        found.append(
            FieldError(
                path, "FieldValueTooMany", f"Too many: {len(value)}: must have at most {most} items"
            )
        )
    for key in schema.get("required") or []:
        if key not in value:
            found.append(FieldError(_join(path, key), "FieldValueRequired", "Required value"))
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        if not path and key in _ROOT:
            continue
        sub = properties.get(key) or (extra if isinstance(extra, dict) else None)
        if sub is not None:
            found += validate(item, sub, path=_join(path, key))
    return found


def _list_problems(value: list[Any], schema: dict[str, Any], path: str) -> list[FieldError]:
    found: list[FieldError] = []
    most = schema.get("maxItems")
    if most is not None and len(value) > most:
        found.append(
            FieldError(
                path, "FieldValueTooMany", f"Too many: {len(value)}: must have at most {most} items"
            )
        )
    least = schema.get("minItems")
    if least is not None and len(value) < least:
        detail = _in_body(path, f"should have at least {least} items")
        found.append(_invalid(path, value, detail))
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            found += validate(item, items, path=f"{path}[{i}]")
    return found


# -- the write path -------------------------------------------------------------------------------


def _at_path(obj: Any, path: str) -> Any:
    """The value at a field path (``spec.items[0].name``), or a sentinel when absent."""
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(obj, list) or index >= len(obj):
                return _ABSENT
            obj = obj[index]
        elif isinstance(obj, dict) and part in obj:
            obj = obj[part]
        else:
            return _ABSENT
    return obj


_ABSENT = object()


def admit(
    rt: ResourceType,
    schema: dict[str, Any],
    obj: dict[str, Any],
    *,
    old: dict[str, Any] | None,
    field_validation: str,
    status_only: bool = False,
) -> tuple[list[str], list[FieldError]]:
    """Prune, default and validate ``obj`` in place: (warnings, errors left after ratcheting).

    On an update a value that did not change is not held against the object (the server's
    validation ratcheting), so a CRD made stricter does not lock existing objects.
    ``status_only`` is a write to the status subresource, which only status can fail.
    """
    unknown = prune(obj, schema)
    if unknown and field_validation == "Strict":
        listed = ", ".join(f'unknown field "{p}"' for p in unknown)
        raise DecodeError(rt, f"strict decoding error: {listed}")
    default(obj, schema)
    if status_only:
        # a /status write is validated against the status schema alone, named from its root
        # (kube-apiserver: `status: Invalid value: "string":  in body must be of type object`)
        sub = (schema.get("properties") or {}).get("status")
        value = obj.get("status", _ABSENT)
        found = [] if sub is None or value is _ABSENT else validate(value, sub)
        errors = [FieldError(_join("status", e.field), e.reason, e.message) for e in found]
    else:
        errors = validate(obj, schema)
    if old is not None:
        errors = [e for e in errors if _at_path(obj, e.field) != _at_path(old, e.field)]
    warnings = [f'unknown field "{p}"' for p in unknown] if field_validation == "Warn" else []
    return warnings, errors
