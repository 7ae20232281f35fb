"""The web view's pages: one handler per page, each a read through ``reads``/``timeline`` and a
template.

Why this shape: the handlers stay thin, so what a page shows is decided by pure row builders that
the unit tests check, and every byte of HTML comes from an autoescaping Jinja2 template (names,
messages and commit authors are chosen by tenants and committers; none is trusted). Reads through
the project's client are blocking, so they run in a worker thread; an API refusal (the user's own
rights) becomes a page that says so, with the redacted reason, never a traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from aiohttp import web

from sealed_gitops.audit.cluster import live_secrets
from sealed_gitops.cluster import KubeClient
from sealed_gitops.errors import ApiForbidden, ClusterError, ConfigError
from sealed_gitops.plan.names import is_label, is_subdomain
from sealed_gitops.redact import redact
from sealed_gitops.ui import reads
from sealed_gitops.ui.guard import allowed_hosts, guard_middleware
from sealed_gitops.ui.timeline import Comparer, SecretPage, secret_page

__all__ = ["UiSettings", "make_app"]

T = TypeVar("T")
HERE = Path(__file__).resolve().parent
#: the only files /static/ serves (no directory walks, no guessing)
STATIC = {"ui.css": "text/css", "ui.js": "text/javascript"}


@dataclass
class UiSettings:
    """What one UI server shows and where it listens."""

    #: the address to bind; loopback by default (the view has the user's cluster rights)
    bind: str = "127.0.0.1"
    #: TCP port; 0 lets the OS pick one (the URL is printed)
    port: int = 8080
    #: list only this namespace (a user whose rights end at one namespace cannot list them all)
    namespace: str | None = None
    #: further Host names the server answers to (a wildcard bind behind a known name)
    extra_hosts: Sequence[str] = ()
    #: local checkouts of the repositories, for the Secrets' audit timelines
    checkouts: Sequence[Path] = ()
    #: the user's keys, to compare live values with Git by keyed hash (none: not compared)
    comparer: Comparer = field(default_factory=Comparer)


_CLIENT = web.AppKey("client", KubeClient)
_SETTINGS = web.AppKey("settings", UiSettings)
_TEMPLATES = web.AppKey("templates", jinja2.Environment)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name: all data shown is untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short"] = lambda sha: str(sha).rsplit(":", 1)[-1][:12]
    return env


def _render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    html = request.app[_TEMPLATES].get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


async def _read(request: web.Request, work: Callable[[KubeClient], T]) -> T:
    client = request.app[_CLIENT]
    return await asyncio.to_thread(work, client)


def _ref(request: web.Request) -> tuple[str, str]:
    """The ``{namespace}/{name}`` of the URL, checked (DNS-1123) before it reaches the API."""
    ns, name = request.match_info["namespace"], request.match_info["name"]
    if not is_label(ns) or not is_subdomain(name):
        raise web.HTTPNotFound(text="no such object")
    return ns, name


async def index(request: web.Request) -> web.Response:
    ns = request.app[_SETTINGS].namespace

    def work(client: KubeClient) -> tuple[list[reads.ObjectRow], list[reads.ObjectRow]]:
        syncs = reads.fetch_list(client, "Sync", namespace=ns)
        repos = reads.fetch_list(client, "Repository", namespace=ns)
        return (
            reads.object_rows(syncs, kind="Sync"),
            reads.object_rows(repos, kind="Repository"),
        )

    syncs, repos = await _read(request, work)
    return _render(request, "index.html", page="syncs", syncs=syncs, repositories=repos)


async def sync(request: web.Request) -> web.Response:
    ns, name = _ref(request)

    def work(client: KubeClient) -> reads.SyncDetail | None:
        found = reads.fetch_object(client, "Sync", ns, name)
        if found is None:
            return None
        return reads.sync_detail(found, _events(client, ns, "Sync", name))

    detail = await _read(request, work)
    if detail is None:
        raise web.HTTPNotFound(text="no such Sync")
    return _render(request, "sync.html", page="syncs", sync=detail)


def _events(client: KubeClient, namespace: str, kind: str, name: str) -> list[Any]:
    try:
        return reads.fetch_events(client, namespace=namespace, kind=kind, name=name)
    except ClusterError:  # the user may read Syncs but not Events: the page still shows
        return []


async def keyrings(request: web.Request) -> web.Response:
    ns = request.app[_SETTINGS].namespace

    def work(client: KubeClient) -> list[reads.KeyRingRow]:
        return reads.keyring_rows(
            reads.fetch_list(client, "KeyRing", namespace=ns),
            reads.fetch_list(client, "Sync", namespace=ns),
            now=dt.datetime.now(dt.UTC),
        )

    rows = await _read(request, work)
    return _render(request, "keyrings.html", page="keyrings", keyrings=rows)


async def secrets(request: web.Request) -> web.Response:
    ns = request.app[_SETTINGS].namespace
    rows = await _read(request, lambda client: live_secrets(client, namespace=ns))
    return _render(request, "secrets.html", page="secrets", secrets=rows)


async def secret(request: web.Request) -> web.Response:
    ns, name = _ref(request)
    settings = request.app[_SETTINGS]

    def work(client: KubeClient) -> SecretPage | None:
        def sync_events(sync_ns: str, sync_name: str) -> list[dict[str, str]]:
            # secret_page passes only a checked reference (timeline._sync_ref)
            return reads.event_rows(_events(client, sync_ns, "Sync", sync_name))

        return secret_page(
            client,
            namespace=ns,
            name=name,
            checkouts=settings.checkouts,
            comparer=settings.comparer,
            sync_events=sync_events,
        )

    page = await _read(request, work)
    if page is None:
        raise web.HTTPNotFound(text="no such Secret (or no right to read it)")
    return _render(request, "secret.html", page="secrets", secret=page)


async def static(request: web.Request) -> web.Response:
    file = request.match_info["file"]
    if file not in STATIC:
        raise web.HTTPNotFound()
    return web.Response(
        body=(HERE / "static" / file).read_bytes(), content_type=STATIC[file], charset="utf-8"
    )


async def _no_icon(_request: web.Request) -> web.Response:
    """Browsers ask for it on every site; an empty answer keeps their consoles clean."""
    return web.Response(status=204)


@web.middleware
async def _api_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """An API refusal or an unusable name is a page that says so (the user's rights show)."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ClusterError as exc:
        status = 403 if isinstance(exc, ApiForbidden) else 502
        return _render(request, "error.html", status=status, page="", message=redact(str(exc)))
    except ConfigError as exc:
        return _render(request, "error.html", status=400, page="", message=redact(str(exc)))


def make_app(client: KubeClient, settings: UiSettings) -> web.Application:
    """The read-only view over ``client`` (the caller keeps it; closing it is theirs)."""
    hosts = allowed_hosts(bind=settings.bind, extra=settings.extra_hosts)
    app = web.Application(middlewares=[guard_middleware(hosts), _api_errors])
    app[_CLIENT] = client
    app[_SETTINGS] = settings
    app[_TEMPLATES] = _environment()
    app.router.add_get("/", index, allow_head=False)
    app.router.add_get("/syncs/{namespace}/{name}", sync, allow_head=False)
    app.router.add_get("/keyrings", keyrings, allow_head=False)
    app.router.add_get("/secrets", secrets, allow_head=False)
    app.router.add_get("/secrets/{namespace}/{name}", secret, allow_head=False)
    app.router.add_get("/static/{file}", static, allow_head=False)
    app.router.add_get("/favicon.ico", _no_icon, allow_head=False)
    return app
