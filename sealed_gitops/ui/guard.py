"""The web view's walls: only GET, only our own Host, and headers that keep the page inert.

Why a module of its own: every page of the view shows names, messages and commit authors that a
tenant (or anyone who can push to a repository) chose, and the server answers with the rights of
the person who started it. These middlewares hold for every route, so a handler cannot forget
one:

* only ``GET``: the view is read-only; anything else is refused before routing (405);
* the ``Host`` header must name the address the server is bound to (or ``localhost`` for a
  loopback bind, or a host the user allowed): a web page on another site that points its own DNS
  name at 127.0.0.1 (DNS rebinding) would otherwise read the view with the user's cluster rights;
* a strict Content-Security-Policy (scripts and styles only from our ``/static/``, no inline
  script, no framing, no form posts), ``nosniff``, no referrer, and no caching of any answer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

__all__ = ["CONTENT_SECURITY_POLICY", "allowed_hosts", "guard_middleware", "host_name"]

#: Nothing inline, nothing from elsewhere; ``frame-ancestors 'none'`` stops click-jacking.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def allowed_hosts(*, bind: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names (without port) a request may carry for a server bound to ``bind``."""
    names = {bind.lower().strip("[]"), *(h.lower().strip("[]") for h in extra)}
    if _is_loopback(bind):
        names |= {"localhost", "127.0.0.1", "::1"}
    return frozenset(names)


def host_name(header: str) -> str:
    """The host part of a ``Host`` header: ``[::1]:8080`` -> ``::1``, ``a.b:80`` -> ``a.b``."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def _with_headers(response: web.StreamResponse) -> web.StreamResponse:
    for name, value in _HEADERS.items():
        response.headers[name] = value
    return response


def guard_middleware(hosts: frozenset[str]) -> Middleware:
    """The middleware holding the walls above for a server that answers to ``hosts``."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "GET":
            return _with_headers(
                web.Response(status=405, text="read-only: only GET", headers={"Allow": "GET"})
            )
        if host_name(request.headers.get("Host", "")) not in hosts:
            # A rebinding page's Host is its own DNS name: refuse before anything is read.
            return _with_headers(web.Response(status=421, text="unexpected Host header"))
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            # A 404 (or any other HTTP error) gets the same headers as a page.
            for name, value in _HEADERS.items():
                exc.headers[name] = value
            raise
        return _with_headers(response)

    return guard
