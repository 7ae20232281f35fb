"""Run one operator: leader election, the metrics and webhook servers, then kopf.

Why a runner of our own around ``kopf.operator``: the operator is more than kopf's handlers — the
HTTP servers must answer while a standby waits for the Lease, the Lease must be released on a
clean exit so a standby takes over at once, and the demo and the tests start and stop operators
inside one process (:class:`OperatorThread`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import secrets
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import kopf
from aiohttp import web

from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.handlers import build_registry, configure_kopf
from sealed_gitops.operator.leader import Leadership
from sealed_gitops.operator.settings import OperatorSettings
from sealed_gitops.operator.webhook import webhook_app

__all__ = ["OperatorThread", "Ports", "run_operator"]

log = logging.getLogger(__name__)


@dataclass
class Ports:
    """The ports the HTTP servers actually bound (useful when 0 asked the OS to pick)."""

    metrics: int | None = None
    webhook: int | None = None
    ready: threading.Event = field(default_factory=threading.Event)


def _metrics_app(ctx: OperatorContext) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=ctx.metrics.exposition(), content_type="text/plain")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", healthz)
    return app


@contextlib.asynccontextmanager
async def _serve(app: web.Application, *, host: str, port: int) -> AsyncIterator[int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        await runner.cleanup()


async def _halt_when_stopped(ctx: OperatorContext, stop: asyncio.Event) -> None:
    """Stop (a signal, the owner, a lost Lease) halts the API client first: a reconcile still
    running in a worker thread must not keep writing while kopf winds down."""
    await stop.wait()
    ctx.halt()


async def run_operator(
    settings: OperatorSettings,
    *,
    stop: asyncio.Event | None = None,
    ports: Ports | None = None,
    context: OperatorContext | None = None,
) -> None:
    """Run until ``stop`` is set (or the Lease is lost)."""
    stop = stop or asyncio.Event()
    ports = ports or Ports()
    ctx = context or OperatorContext(settings)
    async with contextlib.AsyncExitStack() as stack:
        if settings.metrics_port is not None:
            ports.metrics = await stack.enter_async_context(
                _serve(_metrics_app(ctx), host=settings.bind_address, port=settings.metrics_port)
            )
        if settings.webhook_port is not None:
            ports.webhook = await stack.enter_async_context(
                _serve(webhook_app(ctx), host=settings.bind_address, port=settings.webhook_port)
            )
        ports.ready.set()
        halter = asyncio.create_task(_halt_when_stopped(ctx, stop))
        stack.callback(halter.cancel)
        leadership = None
        if settings.leader_lease:
            leadership = Leadership(
                # Its own request counts (a renewal is not reconcile work) and never halted:
                # the Lease is released after the reconciles stop.
                dataclasses.replace(
                    ctx.client.impersonating(None), counts={}, halted=threading.Event()
                ),
                namespace=settings.leader_namespace,
                name=settings.leader_lease,
                # Random part: two operators in one process (tests, the demo) are two replicas.
                identity=settings.identity
                or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
                duration=settings.lease_duration,
            )
            if not await leadership.acquire(stop):
                ctx.close()
                return
            stack.push_async_callback(asyncio.to_thread, leadership.release)
        keeper = asyncio.create_task(leadership.keep(stop)) if leadership else None
        kopf_settings = configure_kopf(kopf.OperatorSettings(), shard=settings.shard)
        try:
            await kopf.operator(
                registry=build_registry(ctx),
                settings=kopf_settings,
                standalone=True,
                clusterwide=not settings.namespaces,
                namespaces=settings.namespaces,
                stop_flag=stop,
            )
        finally:
            if keeper:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            await asyncio.to_thread(ctx.close)


class OperatorThread:
    """An operator in a background thread with its own event loop (tests, the demo)."""

    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.ports = Ports()
        self.context = OperatorContext(settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._main, name="sealed-gitops-operator", daemon=True
        )
        self.error: BaseException | None = None

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await run_operator(
                self.settings, stop=self._stop, ports=self.ports, context=self.context
            )

        try:
            asyncio.run(main())
        except BaseException as exc:  # the owner reads it; a thread cannot raise to it
            self.error = exc
            self.ports.ready.set()

    def start(self, *, timeout: float = 10.0) -> OperatorThread:
        self._thread.start()
        if not self.ports.ready.wait(timeout):
            raise TimeoutError("the operator did not start")
        if self.error:
            raise self.error
        return self

    def trigger(self, kind: str, namespace: str, name: str, *, reason: str = "requested") -> None:
        """Wake one object's reconcile loop now, from any thread."""
        if self._loop is None:
            raise RuntimeError("the operator has not started")
        self._loop.call_soon_threadsafe(
            functools.partial(self.context.triggers.fire, kind, namespace, name, reason=reason)
        )

    @property
    def running(self) -> bool:
        """False once the operator ended: stopped, failed, or its Lease was lost."""
        return self._thread.is_alive()

    def stop(self, *, timeout: float = 15.0) -> None:
        """Stop and wait; stopping a stopped operator does nothing."""
        if not self._thread.is_alive():
            return
        self.context.halt()  # at once, before the loop even sees the stop flag
        if self._loop is not None and self._stop is not None:
            # The loop may close between the check and the call: then it has stopped anyway.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> OperatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
