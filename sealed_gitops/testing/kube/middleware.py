"""The request filters in front of every handler: faults, authentication, impersonation, RBAC.

They run in the order a real server runs its filter chain (plus fault injection first, which only
the emulator has): a request is parsed once into :class:`RequestInfo`, an armed fault may delay,
fail or drop it, the bearer token must name a user (401 otherwise), ``Impersonate-*`` headers
switch to another identity if the caller may impersonate it, and with RBAC on the identity must be
allowed the verb (403 otherwise). Every refusal is a ``Status`` object, as clients expect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from sealed_gitops.redact.forms import go_quote
from sealed_gitops.testing.kube.auth import (
    Authenticator,
    ImpersonationError,
    UserInfo,
    impersonation_target,
)
from sealed_gitops.testing.kube.faults import FaultInjector
from sealed_gitops.testing.kube.handlers import json_response
from sealed_gitops.testing.kube.rbac import Authorizer, forbidden_status, impersonation_checks
from sealed_gitops.testing.kube.requestinfo import RequestInfo, parse
from sealed_gitops.testing.kube.status import ApiError, status_body

__all__ = ["INFO_KEY", "USER_KEY", "make_middleware", "request_info", "request_user"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: per-request storage keys (typed, as aiohttp recommends)
INFO_KEY = web.RequestKey("info", RequestInfo)
USER_KEY = web.RequestKey("user", UserInfo)

#: readable without credentials, as on a real server with anonymous auth left on
_PUBLIC = frozenset({"/version", "/healthz", "/livez", "/readyz"})

#: every authenticated user may ask about itself (the bootstrap ``system:basic-user`` role)
_SELF_SERVICE = frozenset(
    {
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
        ("authentication.k8s.io", "selfsubjectreviews"),
    }
)


def make_middleware(
    *,
    faults: FaultInjector,
    authenticator: Authenticator,
    authorizer: Authorizer,
    rbac: Callable[[], bool],
) -> Middleware:
    """The one aiohttp middleware; ``rbac`` is read per request so tests can switch it."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        info = parse(request.method, request.path, dict(request.query))
        request[INFO_KEY] = info
        fault = faults.take(
            verb=info.verb, resource=info.resource, namespace=info.namespace, name=info.name
        )
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                transport = request.transport
                if transport is not None:
                    transport.abort()
                raise asyncio.CancelledError  # nothing may be written to an aborted connection
            if fault.status is not None:
                message = await _fault_message(request, info, fault.status, echo=fault.echo)
                return json_response(status_body(fault.status, message), status=fault.status)
        header = request.headers.get("Authorization")
        if header is None and request.path in _PUBLIC:
            # what a real server's system:public-info-viewer role lets anonymous callers read
            return await _handle(handler, request)
        user = authenticator.authenticate(header)
        if user is None:
            return json_response(status_body(401, "Unauthorized"), status=401)
        try:
            target = impersonation_target(user, request.headers)
        except ImpersonationError as exc:
            return json_response(status_body(500, str(exc)), status=500)
        if target is not None:
            refused = _impersonation_refused(authorizer, user, target) if rbac() else None
            if refused is not None:
                return json_response(refused, status=403)
            user = target
        request[USER_KEY] = user
        if rbac() and info.is_resource and (info.api_group, info.resource) not in _SELF_SERVICE:
            allowed, reason = authorizer.authorize(
                user,
                verb=info.verb,
                api_group=info.api_group,
                resource=info.resource,
                subresource=info.subresource,
                namespace=info.namespace,
                name=info.name,
            )
            if not allowed:
                return json_response(
                    forbidden_status(
                        api_group=info.api_group,
                        resource=info.resource,
                        name=info.name,
                        reason=reason,
                    ),
                    status=403,
                )
        return await _handle(handler, request)

    return middleware


async def _fault_message(
    request: web.Request, info: RequestInfo, status: int, *, echo: bool
) -> str:
    message = f"injected fault ({status})"
    if not echo:
        return message
    # field.Invalid prints a string value with Go's %q (strconv.Quote)
    quoted = go_quote(await request.text())
    return f'{info.resource} "{info.name}" is invalid: patch: Invalid value: "{quoted}": {message}'


async def _handle(handler: Handler, request: web.Request) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response(exc.body(), status=exc.code)


def _impersonation_refused(
    authorizer: Authorizer, user: UserInfo, target: UserInfo
) -> dict[str, object] | None:
    for check in impersonation_checks(target):
        allowed, reason = authorizer.authorize(user, **check)
        if not allowed:
            return forbidden_status(
                api_group=check["api_group"],
                resource=check["resource"],
                name=check["name"],
                reason=reason,
            )
    return None


def request_info(request: web.Request) -> RequestInfo:
    return request[INFO_KEY]


def request_user(request: web.Request) -> UserInfo:
    return request[USER_KEY]
