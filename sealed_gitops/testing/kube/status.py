"""Kubernetes ``Status`` error bodies.

kubectl, kopf and the official Python client all parse the JSON ``Status`` object a real API server
sends with every error (``reason`` drives their retry and conflict logic, ``details.causes`` is what
kubectl prints for a 422), so the emulator answers every failure with one. :class:`ApiError` is
raised anywhere in the emulator and turned into a response in one place, the HTTP layer.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "already_exists",
    "bad_request",
    "conflict",
    "forbidden",
    "gone",
    "invalid",
    "invalid_fields",
    "method_not_allowed",
    "not_found",
    "status_body",
    "unsupported_media_type",
]

#: HTTP code -> the reason a real server puts in ``Status.reason`` for it.
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """A failure the emulator answers with a ``Status`` object and ``code``."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # "" means no reason at all, as a server's internal errors sometimes carry none
        self.reason = reason if reason is not None else _REASONS.get(code, "Unknown")
        self.details = details

    def body(self) -> dict[str, Any]:
        return status_body(self.code, self.message, reason=self.reason, details=self.details)


def status_body(
    code: int, message: str, *, reason: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``Status`` object as a real server writes it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason if reason is not None else _REASONS.get(code, "Unknown"),
        "code": code,
    }
    if code < 400:
        body.pop("reason")
        body.pop("message")
    elif not body["reason"]:
        body.pop("reason")
    if details:
        body["details"] = details
    return body


def _details(group: str, kind: str, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": kind}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return details


def _qualified(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(group: str, resource: str, name: str) -> ApiError:
    return ApiError(
        404,
        f'{_qualified(group, resource)} "{name}" not found',
        details=_details(group, resource, name),
    )


def already_exists(group: str, resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{_qualified(group, resource)} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(group, resource, name),
    )


def conflict(group: str, resource: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {_qualified(group, resource)} "{name}": {why}',
        details=_details(group, resource, name),
    )


def invalid(group: str, kind: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 with one cause per (field, message), the shape kubectl prints for invalid objects."""
    return invalid_fields(
        group, kind, name, [(field, "FieldValueInvalid", message) for field, message in causes]
    )


def invalid_fields(
    group: str, kind: str, name: str, causes: list[tuple[str, str, str]]
) -> ApiError:
    """422 with one cause per (field, reason, message), worded as the server's NewInvalid.

    The message names the kind qualified by its group (``Sync.sealed-gitops.io``) and lists the
    field errors, in brackets when there are several (an aggregate error's text).
    """
    texts = [f"{field}: {message}" if field else message for field, _, message in causes]
    listed = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = _details(group, kind, name)
    details["causes"] = [
        {"reason": reason, "message": message, "field": field} for field, reason, message in causes
    ]
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(422, f'{qualified} "{name}" is invalid: {listed}', details=details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def forbidden(message: str, *, group: str = "", resource: str = "", name: str = "") -> ApiError:
    details = _details(group, resource, name) if resource else None
    return ApiError(403, message, details=details)


def gone(message: str) -> ApiError:
    return ApiError(410, message, reason="Expired")


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, message)


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}",
    )
