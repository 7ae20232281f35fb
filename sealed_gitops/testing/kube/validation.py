"""What a real API server refuses (422) or rewrites before it stores an object.

Only the checks that code under test can trip over: object names (RFC 1123 subdomains, DNS labels
for namespaces and services, path segments for RBAC), Secret and ConfigMap keys, Secret ``data``
being base64, ``stringData`` folded into ``data``, and the defaults kubectl and kopf read back
(Secret ``type``, Namespace ``phase``), and the rules every Event write passes.

A body that does not fit the kind's Go type (Secret ``data`` that is not base64, label values that
are not strings) fails on a real server while it is *decoded*, before validation: POST and PUT
answer 400 (``transformDecodeError`` in the apiserver's create/update handlers), while a JSON,
merge or strategic-merge patch whose *result* does not decode answers 422 with a ``patch`` cause
(the patch handler wraps the decode error in ``NewInvalid``). :class:`DecodeError` carries that
distinction to the PATCH path.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from sealed_gitops.testing.kube.base64go import corrupt_offset
from sealed_gitops.testing.kube.objectmeta import metadata_problems
from sealed_gitops.testing.kube.rbac import RBAC_GROUP
from sealed_gitops.testing.kube.resources import ResourceType
from sealed_gitops.testing.kube.status import ApiError, invalid, invalid_fields

__all__ = ["DecodeError", "check_update", "normalize", "validate_name"]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
# Go's base64 decoder skips CR and LF wherever they are, so a real server accepts wrapped values.
_LINE_BREAKS = str.maketrans("", "", "\r\n")


class DecodeError(ApiError):
    """The object does not decode into its kind's Go type: 400 on POST and PUT."""

    def __init__(self, rt: ResourceType, why: str) -> None:
        kind = rt.kind
        super().__init__(
            400, f'{kind} in version "{rt.version}" cannot be handled as a {kind}: {why}'
        )
        self.why = why
        self.rt = rt

    def for_apply(self, namespace: str, name: str) -> ApiError:
        """The 500 (no reason) a real server answers when an applied object does not decode."""
        gvk = f"{self.rt.group}/{self.rt.version}, Kind={self.rt.kind}"
        return ApiError(
            500,
            f"failed to convert new object ({namespace}/{name}; {gvk}) to proper version: "
            f"unable to convert unstructured object to {gvk}: error decoding from json: "
            f"{self.why}",
            reason="",
        )

    def for_patch(self) -> ApiError:
        """The 422 a real server answers when a patched object fails to decode.

        It names the field ``patch`` and quotes the whole patched object as the invalid value;
        the emulator leaves the object out, as it may hold secret values.
        """
        value = 'Invalid value: "<the patched object>": ' + self.why
        return ApiError(
            422,
            f' "" is invalid: patch: {value}',
            details={
                "causes": [{"reason": "FieldValueInvalid", "message": value, "field": "patch"}]
            },
        )


def _name_problem(rt: ResourceType, name: str) -> str | None:
    if rt.group == RBAC_GROUP:
        if name in (".", "..") or "/" in name or "%" in name:
            return f'may not be "{name}" or contain "/" or "%"'
        return None
    if rt.plural == "namespaces":
        if len(name) > 63:
            return "must be no more than 63 characters"
        return None if _LABEL.match(name) else _LABEL_MSG
    if rt.plural == "services":
        if len(name) > 63:
            return "must be no more than 63 characters"
        return None if _DNS1035.match(name) else _DNS1035_MSG
    if len(name) > 253:
        return "must be no more than 253 characters"
    return None if _SUBDOMAIN.match(name) else _SUBDOMAIN_MSG


def validate_name(rt: ResourceType, name: str) -> None:
    problem = _name_problem(rt, name)
    if problem:
        raise invalid(
            rt.group, rt.kind, name, [("metadata.name", f'Invalid value: "{name}": {problem}')]
        )


def normalize(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Validate ``obj`` and apply the server's rewrites and defaults, in place."""
    meta = obj["metadata"]
    name = meta.get("name", "")
    validate_name(rt, name)
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is not None and (
            not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())
        ):
            raise DecodeError(rt, f"metadata.{field} values must be strings")
    problems = metadata_problems(meta)
    if problems:
        raise invalid_fields(rt.group, rt.kind, name, problems)
    if rt.group == "" and rt.plural == "secrets":
        _secret(rt, obj)
    elif rt.group == "" and rt.plural == "configmaps":
        _check_keys(rt, name, "data", obj.get("data"))
        _check_keys(rt, name, "binaryData", obj.get("binaryData"))
    elif rt.plural == "events" and rt.group in ("", "events.k8s.io"):
        _event(rt, obj)
    elif rt.group == "" and rt.plural == "namespaces":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name


def _event(rt: ResourceType, obj: dict[str, Any]) -> None:
    """The Event checks every write passes (kube-apiserver's legacy Event validation).

    An Event without ``eventTime`` (the core/v1 style) must live in its object's namespace (or
    in ``default`` for a cluster-scoped object); one with ``eventTime`` must name its reporting
    controller and instance, an action and a reason. events.k8s.io/v1 adds the stricter rules for
    its own writers: ``eventTime`` set, ``type`` Normal or Warning, the deprecated fields unset.
    """
    core = rt.group == ""
    ref = obj.get("involvedObject" if core else "regarding") or {}
    namespace = obj["metadata"].get("namespace", "")
    ref_namespace = str(ref.get("namespace") or "") if isinstance(ref, dict) else ""
    causes: list[tuple[str, str, str]] = []
    mismatch = (
        "involvedObject.namespace",
        "FieldValueInvalid",
        f"Invalid value: {json.dumps(ref_namespace)}: does not match event.namespace",
    )
    if not obj.get("eventTime"):
        if ref_namespace != namespace and (ref_namespace or namespace not in ("", "default")):
            causes.append(mismatch)
    else:
        if not ref_namespace and namespace not in ("default", "kube-system"):
            causes.append(mismatch)
        controller = "reportingComponent" if core else "reportingController"
        for field in (controller, "reportingInstance", "action", "reason"):
            if not obj.get(field):
                causes.append((field, "FieldValueRequired", "Required value"))
    if not core:
        if not obj.get("eventTime"):
            causes.append(("eventTime", "FieldValueRequired", "Required value"))
        if obj.get("type") not in ("Normal", "Warning"):
            causes.append(
                (
                    "type",
                    "FieldValueInvalid",
                    f'Invalid value: "": has invalid value: {obj.get("type") or ""}',
                )
            )
        for field, path in (
            ("deprecatedFirstTimestamp", "firstTimestamp"),
            ("deprecatedLastTimestamp", "lastTimestamp"),
            ("deprecatedCount", "count"),
            ("deprecatedSource", "source"),
        ):
            if obj.get(field):
                causes.append((path, "FieldValueInvalid", 'Invalid value: "": needs to be unset'))
    if causes:
        raise invalid_fields(rt.group, rt.kind, obj["metadata"].get("name", ""), causes)


def check_update(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    """What an update may not change: the contents of an immutable Secret or ConfigMap."""
    if rt.group != "" or rt.plural not in ("secrets", "configmaps") or not old.get("immutable"):
        return
    name = old["metadata"]["name"]
    fields = ("data", "type") if rt.plural == "secrets" else ("data", "binaryData")
    causes = [
        (field, "Forbidden: field is immutable when `immutable` is set")
        for field in fields
        if old.get(field) != new.get(field)
    ]
    if not new.get("immutable"):
        causes.append(("immutable", "Forbidden: field is immutable when `immutable` is set"))
    if causes:
        raise invalid(rt.group, rt.kind, name, causes)


def _check_keys(rt: ResourceType, name: str, field: str, values: Any) -> None:
    if values is None:
        return
    if not isinstance(values, dict):
        raise DecodeError(rt, f"{field} must be an object")
    bad = [k for k in values if len(k) > 253 or not _CONFIG_KEY.match(k) or k in (".", "..")]
    if bad:
        raise invalid(
            rt.group,
            rt.kind,
            name,
            [
                (
                    f"{field}[{key}]",
                    f'Invalid value: "{key}": a valid config key must consist of '
                    f"alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
                    f"'KEY_NAME',  or 'key-name', regex used for validation is "
                    f"'[-._a-zA-Z0-9]+')",
                )
                for key in bad
            ],
        )


def _secret(rt: ResourceType, obj: dict[str, Any]) -> None:
    name = obj["metadata"].get("name", "")
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise DecodeError(rt, "data must be an object")
    if data:
        # A real server stores the decoded bytes and encodes them again when it answers, so a
        # value comes back in canonical form (no line breaks, zero padding bits).
        obj["data"] = {key: _canonical_base64(rt, value) for key, value in data.items()}
    string_data = obj.pop("stringData", None)
    if string_data is not None:
        if not isinstance(string_data, dict) or not all(
            isinstance(v, str) for v in string_data.values()
        ):
            raise DecodeError(rt, "stringData values must be strings")
        merged = dict(obj.get("data") or {})
        for key, value in string_data.items():
            merged[key] = base64.b64encode(value.encode()).decode()
        obj["data"] = merged
    _check_keys(rt, name, "data", obj.get("data"))
    obj.setdefault("type", "Opaque")


def _canonical_base64(rt: ResourceType, value: Any) -> str:
    try:
        if not isinstance(value, str):
            raise TypeError
        raw = base64.b64decode(value.translate(_LINE_BREAKS).encode("ascii"), validate=True)
    except (TypeError, ValueError, binascii.Error, UnicodeEncodeError) as exc:
        # the value itself stays out of the message: it is meant to be secret; Go's decoder
        # names the offset where it gave up
        at = corrupt_offset(value) if isinstance(value, str) else None
        why = "illegal base64 data" + (f" at input byte {at}" if at is not None else "")
        raise DecodeError(rt, why) from exc
    return base64.b64encode(raw).decode()
