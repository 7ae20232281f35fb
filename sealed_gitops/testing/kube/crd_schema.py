"""What the apiextensions server checks in a CRD's ``openAPIV3Schema`` before it serves it.

Why: a CRD the emulator accepts but a cluster refuses is a difference found only at deploy time.
An ``apiextensions.k8s.io/v1`` schema must be *structural*: every node says its ``type`` (unless
it is ``x-kubernetes-int-or-string`` or keeps unknown fields), the root is an object; every
``pattern`` must compile as Go's RE2 (checked here through the project's RE2 wrapper, so a CRD is
hostile input like a repository); every ``default`` must pass the schema it defaults. Field paths
are the server's (``spec.versions[0].schema.openAPIV3Schema.properties[spec].type``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from sealed_gitops.crypto.patterns import compile_pattern
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.testing.kube.schema import default, prune, validate

__all__ = ["schema_problems"]

_KEEP = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"


#: RE2's error codes as Go's regexp/syntax words them (the server compiles patterns with Go)
_GO_CODES = {
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid repetition size": "invalid repeat count",
    "invalid named capture group": "invalid named capture",
    "trailing \\": "trailing backslash at end of expression",
}


def _go_regexp_error(message: str, *, what: str, source: str) -> str:
    """The wrapper's refusal reworded as Go's ``error parsing regexp: CODE: `EXPR```.

    The wrapper's message is ``WHAT: invalid regular expression 'SHOWN' (REASON); ...``, and
    RE2's REASON is ``CODE: EXPR`` like Go's.
    """
    shown = source if len(source) <= 80 else source[:77] + "..."
    head = f"{what}: invalid regular expression {shown!r} ("
    reason = message[len(head) :] if message.startswith(head) else message
    reason = reason.rsplit("); patterns use", 1)[0]
    code, _, expr = reason.partition(": ")
    code = _GO_CODES.get(code, code)
    return f"error parsing regexp: {code}: `{expr}`"


def _node_problems(node: Any, path: str, *, what: str) -> list[tuple[str, str, str]]:
    """(field, reason, message) for one schema node and everything below it."""
    if not isinstance(node, dict):
        return [(path, "FieldValueInvalid", "Invalid value: must be an object")]
    found: list[tuple[str, str, str]] = []
    if not node.get("type") and not node.get(_INT_OR_STRING) and not node.get(_KEEP):
        found.append(
            (f"{path}.type", "FieldValueRequired", f"Required value: must not be empty {what}")
        )
    if "pattern" in node:
        try:
            compile_pattern(str(node["pattern"]), what="pattern")
        except SealedGitopsError as exc:
            found.append(
                (
                    f"{path}.pattern",
                    "FieldValueInvalid",
                    f"Invalid value: {json.dumps(node['pattern'])}: must be a valid regular "
                    f"expression, but isn't: "
                    f"{_go_regexp_error(str(exc), what='pattern', source=str(node['pattern']))}",
                )
            )
    for key, sub in (node.get("properties") or {}).items():
        found += _node_problems(
            sub, f"{path}.properties[{key}]", what="for specified object fields"
        )
    if isinstance(node.get("items"), dict):
        found += _node_problems(node["items"], f"{path}.items", what="for specified array items")
    if isinstance(node.get("additionalProperties"), dict):
        found += _node_problems(
            node["additionalProperties"],
            f"{path}.additionalProperties",
            what="for specified additionalProperties",
        )
    if "default" in node and not found:
        found += _default_problems(node, path)
    return found


def _default_problems(node: dict[str, Any], path: str) -> list[tuple[str, str, str]]:
    """A default must be valid for its own schema and survive pruning unchanged."""
    value = copy.deepcopy(node["default"])
    pruned = prune(value, node, root=False)
    if pruned:
        return [
            (
                f"{path}.default.{pruned[0]}",
                "FieldValueInvalid",
                "Invalid value: must not have unknown fields",
            )
        ]
    default(value, node)
    # validated from its own root, so the messages name "" (as the server's do)
    where = f"{path}.default"
    return [
        (f"{where}.{e.field}" if e.field else where, e.reason, e.message)
        for e in validate(value, node)
    ]


def schema_problems(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every structural-schema, pattern and default problem of a CRD ``spec``."""
    found: list[tuple[str, str, str]] = []
    versions = spec.get("versions") or []
    schemas = [(v.get("schema") or {}).get("openAPIV3Schema") for v in versions]
    # one schema shared by every version is reported where the server keeps it then: at
    # spec.validation (the internal form hoists it), else per version
    shared = len(versions) > 0 and all(x == schemas[0] for x in schemas)
    for i, version in enumerate(versions[:1] if shared else versions):
        where = "spec.validation.openAPIV3Schema"
        if not shared:
            where = f"spec.versions[{i}].schema.openAPIV3Schema"
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            found.append((where, "FieldValueRequired", "Required value: schemas are required"))
            continue
        if isinstance(schema, dict) and schema.get("type") != "object":
            found.append(
                (
                    f"{where}.type",
                    "FieldValueInvalid",
                    f"Invalid value: {json.dumps(schema.get('type', ''))}: must be object at the "
                    "root",
                )
            )
            continue
        found += _node_problems(schema, where, what="at the root")
    return found
