"""Just enough Kubernetes protobuf to read what kubectl's typed commands send.

kubectl encodes the bodies of its imperative commands (``create namespace``, ``create secret``,
``create configmap``, ``create serviceaccount``, ``create token``, ``auth can-i``) as protobuf, with
no way to ask for JSON, and a server that answers 415 just makes them fail. The emulator speaks
JSON everywhere else, so this module turns those few messages into the JSON objects they stand for.

Wire format: the bytes ``k8s\\x00``, then a ``runtime.Unknown`` message (1: TypeMeta {1: apiVersion,
2: kind}, 2: raw, 3: contentEncoding, 4: contentType) whose ``raw`` is the typed message. Field
numbers below are those of the upstream ``generated.proto`` files (checked against what kubectl
1.37 sends). Anything else answers 415, as before.
"""

from __future__ import annotations

import base64
from typing import Any, Union

from sealed_gitops.testing.kube.status import ApiError

__all__ = ["MAGIC", "decode"]

MAGIC = b"k8s\x00"

# A field is (json name, kind): a scalar kind name, a nested schema, or ("list", schema).
Kind = Union[str, "Schema", tuple[str, "Schema"]]
Schema = dict[int, tuple[str, Kind]]

_OBJECT_META: Schema = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    11: ("labels", "map"),
    12: ("annotations", "map"),
    14: ("finalizers", "strings"),
}
_LOCAL_REF: Schema = {1: ("name", "string")}
_OBJECT_REF: Schema = {
    1: ("kind", "string"),
    2: ("namespace", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
}
_RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", "string"),
    2: ("verb", "string"),
    3: ("group", "string"),
    4: ("version", "string"),
    5: ("resource", "string"),
    6: ("subresource", "string"),
    7: ("name", "string"),
}

# rbac/v1 (k8s.io/api/rbac/v1/generated.proto), for `kubectl create role|rolebinding|...`
_POLICY_RULE: Schema = {
    1: ("verbs", "strings"),
    2: ("apiGroups", "strings"),
    3: ("resources", "strings"),
    4: ("resourceNames", "strings"),
    5: ("nonResourceURLs", "strings"),
}
_SUBJECT: Schema = {
    1: ("kind", "string"),
    2: ("apiGroup", "string"),
    3: ("name", "string"),
    4: ("namespace", "string"),
}
_ROLE_REF: Schema = {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")}
_ROLE: Schema = {1: ("metadata", _OBJECT_META), 2: ("rules", ("list", _POLICY_RULE))}
_BINDING: Schema = {
    1: ("metadata", _OBJECT_META),
    2: ("subjects", ("list", _SUBJECT)),
    3: ("roleRef", _ROLE_REF),
}

_KINDS: dict[str, Schema] = {
    "Role": _ROLE,
    "ClusterRole": _ROLE,
    "RoleBinding": _BINDING,
    "ClusterRoleBinding": _BINDING,
    "Namespace": {1: ("metadata", _OBJECT_META), 2: ("spec", {1: ("finalizers", "strings")})},
    "Secret": {
        1: ("metadata", _OBJECT_META),
        2: ("data", "bytesmap"),
        3: ("type", "string"),
        4: ("stringData", "map"),
        5: ("immutable", "bool"),
    },
    "ConfigMap": {
        1: ("metadata", _OBJECT_META),
        2: ("data", "map"),
        3: ("binaryData", "bytesmap"),
        4: ("immutable", "bool"),
    },
    "ServiceAccount": {
        1: ("metadata", _OBJECT_META),
        2: ("secrets", ("list", _OBJECT_REF)),
        3: ("imagePullSecrets", ("list", _LOCAL_REF)),
        4: ("automountServiceAccountToken", "bool"),
    },
    "TokenRequest": {
        1: ("metadata", _OBJECT_META),
        2: (
            "spec",
            {
                1: ("audiences", "strings"),
                3: ("boundObjectRef", _OBJECT_REF),
                4: ("expirationSeconds", "int"),
            },
        ),
    },
    "SelfSubjectAccessReview": {
        1: ("metadata", _OBJECT_META),
        2: (
            "spec",
            {
                1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
                2: ("nonResourceAttributes", {1: ("path", "string"), 2: ("verb", "string")}),
            },
        ),
    },
}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, varint value or length-delimited bytes), in wire order."""
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            out.append((number, value))
        elif wire == 2:
            size, i = _varint(buf, i)
            if i + size > len(buf):
                raise ValueError("truncated field")
            out.append((number, buf[i : i + size]))
            i += size
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _entry(raw: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for number, item in _fields(raw):
        if number == 1 and isinstance(item, bytes):
            key = item.decode()
        elif number == 2 and isinstance(item, bytes):
            value = item
    return key, value


def _message(buf: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, item in _fields(buf):
        if number not in schema:
            continue
        name, kind = schema[number]
        if isinstance(kind, dict):
            nested = _message(item, kind) if isinstance(item, bytes) else {}
            if nested:
                out[name] = nested
        elif isinstance(kind, tuple):
            if isinstance(item, bytes):
                out.setdefault(name, []).append(_message(item, kind[1]))
        elif kind in ("map", "bytesmap") and isinstance(item, bytes):
            key, value = _entry(item)
            text = value.decode() if kind == "map" else base64.b64encode(value).decode()
            out.setdefault(name, {})[key] = text
        elif kind == "strings" and isinstance(item, bytes):
            out.setdefault(name, []).append(item.decode())
        else:
            scalar = _scalar(kind, item)
            if scalar:  # proto3 writes zero values; JSON leaves them out
                out[name] = scalar
    return out


def _scalar(kind: str, item: int | bytes) -> str | int | bool | None:
    if kind == "string" and isinstance(item, bytes):
        return item.decode()
    if kind == "int" and isinstance(item, int):
        return item
    if kind == "bool" and isinstance(item, int):
        return bool(item)
    return None


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object a protobuf request body stands for; 415 for kinds not listed above."""
    if not body.startswith(MAGIC):
        raise ApiError(415, "the protobuf body does not start with the Kubernetes magic bytes")
    try:
        envelope = _fields(body[len(MAGIC) :])
        type_meta: dict[str, Any] = {}
        raw = b""
        for number, item in envelope:
            if number == 1 and isinstance(item, bytes):
                type_meta = _message(item, {1: ("apiVersion", "string"), 2: ("kind", "string")})
            elif number == 2 and isinstance(item, bytes):
                raw = item
        schema = _KINDS.get(str(type_meta.get("kind", "")))
        if schema is None:
            raise ApiError(
                415,
                f"the emulator cannot read {type_meta.get('kind', 'this kind')} as protobuf; "
                "send it as application/json (e.g. kubectl create -f / kubectl apply)",
                reason="UnsupportedMediaType",
            )
        obj = _message(raw, schema)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the protobuf body cannot be decoded: {exc}") from exc
    return {**type_meta, **obj}
