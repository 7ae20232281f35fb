"""The ``metadata`` rules every object passes on a real server: labels, annotations, owners.

Why: the operator copies labels and annotations from Git onto live objects and adds its own (a
Sync's name as a label value), so a value a cluster refuses (longer than 63 characters, a space,
a key with two slashes) must be refused here too, or the tests pass and the cluster says 422.
Messages are apimachinery's (``IsQualifiedName``, ``IsValidLabelValue``), keyed by the field
``metadata.labels`` / ``metadata.annotations`` as kube-apiserver reports them (compared with a
kube-apiserver built from source, issue 13).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["metadata_problems"]

_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
#: total bytes of a object's annotations (keys and values)
_ANNOTATIONS_LIMIT = 256 * 1024


def _qualified_name(key: str) -> list[str]:
    """apimachinery's IsQualifiedName: ``[prefix/]name``, the prefix a DNS subdomain."""
    parts = key.split("/")
    if len(parts) > 2:
        return [
            "a valid label key " + _NAME_RULE + " with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    found: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            found.append("prefix part must be non-empty")
        elif len(prefix) > 253:
            found.append("prefix part must be no more than 253 bytes")
        elif not _SUBDOMAIN.match(prefix):
            found.append("prefix part " + _SUBDOMAIN_RULE)
    if not name:
        found.append("name part must be non-empty")
    elif len(name) > 63:
        found.append("name part must be no more than 63 bytes")
    if not _NAME_PART.match(name):
        found.append("name part " + _NAME_RULE)
    return found


def _label_value(value: str) -> list[str]:
    found = []
    if len(value) > 63:
        found.append("must be no more than 63 bytes")
    if value and not _NAME_PART.match(value):
        found.append(_VALUE_RULE)
    return found


def metadata_problems(meta: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, reason, message) for each label, annotation or owner reference a server refuses."""
    found: list[tuple[str, str, str]] = []
    for key, value in (meta.get("labels") or {}).items():
        for message in _qualified_name(key):
            found.append(("metadata.labels", "FieldValueInvalid", _invalid(key, message)))
        for message in _label_value(value):
            found.append(("metadata.labels", "FieldValueInvalid", _invalid(value, message)))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        for message in _qualified_name(key.lower()):
            found.append(("metadata.annotations", "FieldValueInvalid", _invalid(key, message)))
    size = sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())
    if size > _ANNOTATIONS_LIMIT:
        found.append(
            (
                "metadata.annotations",
                "FieldValueTooLong",
                f"Too long: may not be more than {_ANNOTATIONS_LIMIT} bytes",
            )
        )
    for index, owner in enumerate(meta.get("ownerReferences") or []):
        found += _owner_problems(index, owner if isinstance(owner, dict) else {})
    return found


def _owner_problems(index: int, owner: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (
            f"metadata.ownerReferences[{index}].{field}",
            "FieldValueRequired",
            "Required value: must not be empty",
        )
        for field in ("apiVersion", "kind", "name", "uid")
        if not owner.get(field)
    ]


def _invalid(value: str, message: str) -> str:
    return f"Invalid value: {json.dumps(value, ensure_ascii=False)}: {message}"
