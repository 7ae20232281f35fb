"""How a request body becomes a stored object: the pure steps of a write.

Split from :mod:`objects` so the verbs read as a sequence of steps: shape the incoming body
(kind, apiVersion and namespace checked and filled in), split it by subresource (``/status``
changes only status; the main resource of a kind with a status subresource changes everything but
status; server-owned metadata always comes from the stored object), decide whether anything
changed at all, and accept a CustomResourceDefinition the way the apiextensions server does.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from sealed_gitops.testing.kube.crd_schema import schema_problems
from sealed_gitops.testing.kube.jsonpath import JSONPathError, compile_path
from sealed_gitops.testing.kube.resources import ResourceType
from sealed_gitops.testing.kube.status import bad_request, invalid_fields

__all__ = [
    "accept_crd",
    "comparable",
    "copy_obj",
    "incoming",
    "now",
    "spec_part",
    "split_status",
]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def copy_obj(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)


def spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k != "metadata"}
    meta = {
        k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")
    }
    out["metadata"] = meta
    fields = [
        {k: v for k, v in e.items() if k != "time"}
        for e in obj["metadata"].get("managedFields") or []
    ]
    out["_fields"] = fields
    return out


_KEPT_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)


def split_status(
    rt: ResourceType, old: dict[str, Any], obj: dict[str, Any], subresource: str
) -> tuple[dict[str, Any], str]:
    """The object a write produces, and the part of it the writer manages.

    ``/status`` changes only status; the main resource of a kind with a status subresource changes
    everything but status; server-owned metadata always comes from the stored object.
    """
    if subresource == "status":
        new = copy_obj(old)
        if "status" in obj:
            new["status"] = obj["status"]
        else:
            new.pop("status", None)
        return new, "status"
    new = obj
    if rt.status:
        if "status" in old:
            new["status"] = copy_obj(old["status"])
        else:
            new.pop("status", None)
    meta, old_meta = new["metadata"], old["metadata"]
    for keep in _KEPT_META:
        if keep in old_meta:
            meta[keep] = old_meta[keep]
        else:
            meta.pop(keep, None)
    return new, "main" if rt.status else "all"


def incoming(rt: ResourceType, namespace: str, body: Any) -> dict[str, Any]:
    """A request body as an object of ``rt`` in ``namespace``, or 400 if it cannot be one."""
    if not isinstance(body, dict):
        raise bad_request("the request body is not a JSON object")
    obj = copy_obj(body)
    kind = obj.get("kind")
    if kind and kind != rt.kind:
        raise bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )
    version = obj.get("apiVersion")
    if version and version.split("/")[0] != rt.api_version.split("/")[0] and rt.group:
        raise bad_request(
            f"the API version in the data ({version}) does not match the "
            f"expected API version ({rt.api_version})"
        )
    obj = {"apiVersion": rt.api_version, "kind": rt.kind, **obj}
    obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    if rt.namespaced:
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the "
                "namespace sent on the request"
            )
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    return obj


def _column_problems(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """Printer columns whose JSONPath the emulator cannot evaluate, refused rather than misprinted.

    A real server refuses a path that does not start with "." and accepts the rest of client-go's
    JSONPath; paths outside :mod:`jsonpath`'s subset are refused here (docs/emulator.md).
    """
    problems = []
    for i, version in enumerate(spec.get("versions") or []):
        for j, column in enumerate(version.get("additionalPrinterColumns") or []):
            path = column.get("jsonPath", "")
            where = f"spec.versions[{i}].additionalPrinterColumns[{j}].jsonPath"
            try:
                compile_path(path)
            except JSONPathError as exc:
                problems.append((where, f"Invalid value: {json.dumps(path)}: {exc}"))
    return problems


def accept_crd(crd: dict[str, Any]) -> None:
    """Check a CRD the way the apiextensions server does and mark it Established."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    name = crd["metadata"]["name"]
    causes = []
    if not spec.get("group"):
        causes.append(("spec.group", "Required value"))
    if not names.get("plural") or not names.get("kind"):
        causes.append(("spec.names", "Required value: plural and kind are required"))
    elif name != f"{names['plural']}.{spec.get('group')}":
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    if not spec.get("versions"):
        causes.append(
            (
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(("spec.scope", f"Unsupported value: {json.dumps(spec.get('scope'))}"))
    causes += _column_problems(spec)
    found = [(field, "FieldValueInvalid", message) for field, message in causes]
    found += schema_problems(spec)
    if found:
        raise invalid_fields("apiextensions.k8s.io", "CustomResourceDefinition", name, found)
    stamp = now()
    accepted = {k: v for k, v in names.items()}
    accepted.setdefault("singular", names["kind"].lower())
    accepted.setdefault("listKind", f"{names['kind']}List")
    crd["status"] = {
        "acceptedNames": accepted,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": stamp,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": stamp,
            },
        ],
        "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
    }
