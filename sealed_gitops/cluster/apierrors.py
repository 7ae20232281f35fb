"""The boundary where the Kubernetes client's failures become the project's errors.

Why this module exists: callers (the operator, the CLI's ``diff``) must never see
``kubernetes.client.ApiException`` or ``urllib3`` exceptions, and an API server's message about a
Secret can quote what was sent (a 422 echoes an invalid value, a webhook may echo the whole object),
so no server text reaches an error unredacted. For core Secrets we go further and keep only the
machine-readable reason and the names of the refused fields, never the server's prose, because a
value shorter than :data:`sealed_gitops.redact.MIN_LENGTH` is not registered and would survive
redaction. Everything else is redacted *before* it is cut to :data:`_MAX_MESSAGE` (with
:func:`sealed_gitops.redact.cut`): a server that quotes an object quotes it whole, and a value
cut in half by the limit would no longer be recognised (issue 11, finding 8).
"""

from __future__ import annotations

import json
from typing import Any

from sealed_gitops.errors import (
    ApiConflict,
    ApiForbidden,
    ApiNotFound,
    ApiUnavailable,
    ClusterError,
)
from sealed_gitops.redact import cut

__all__ = ["error_for_status", "unavailable"]

_MAX_MESSAGE = 512


def _status_body(body: bytes | str | None) -> dict[str, Any]:
    if not body:
        return {}
    try:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _server_text(data: dict[str, Any], *, sensitive: bool) -> str:
    reason = str(data.get("reason") or "")
    if sensitive:
        causes = ((data.get("details") or {}).get("causes")) or []
        fields = sorted(
            {str(c.get("field")) for c in causes if isinstance(c, dict) and c.get("field")}
        )
        text = reason or "refused"
        if fields:
            text += f" (fields: {', '.join(fields)})"
        return text
    return str(data.get("message") or reason or "no message")


def error_for_status(
    status: int, body: bytes | str | None, *, action: str, what: str, sensitive: bool = False
) -> ClusterError:
    """The error for an HTTP error answer: ``action`` (``apply``) of ``what`` (``Secret a/b``).

    ``sensitive``: the request carried secret values; the server's prose is not kept.
    """
    data = _status_body(body)
    text = cut(_server_text(data, sensitive=sensitive), limit=_MAX_MESSAGE)
    reason = f"{action} {what}: HTTP {status}: {text}"
    cls: type[ClusterError]
    if status == 404:
        cls = ApiNotFound
    elif status == 409:
        cls = ApiConflict
    elif status in (401, 403):
        cls = ApiForbidden
    elif status >= 500 or status in (0, 429):
        cls = ApiUnavailable
    else:
        cls = ClusterError
    return cls(reason, status=status)


def unavailable(exc: BaseException, *, action: str, what: str) -> ApiUnavailable:
    """A transport failure (timeout, refused or dropped connection, TLS) as ApiUnavailable."""
    # The exception text names the host and the failure, never the request body.
    detail = cut(f"{type(exc).__name__}: {exc}", limit=_MAX_MESSAGE)
    return ApiUnavailable(f"{action} {what}: API server unreachable: {detail}")
