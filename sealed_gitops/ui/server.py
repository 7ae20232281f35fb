"""Running the web view: in the foreground for ``sealed-gitops ui``, or in a thread of the operator.

Why a module: both faces start the same application and must report the port the OS picked
(``--port 0``) only once it is bound, and stop what they started. The view's reads are blocking
calls through the project's client; they run in worker threads (see ``views``), so one slow API
answer does not stall other pages.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from sealed_gitops.cluster import KubeClient
from sealed_gitops.ui.views import UiSettings, make_app

__all__ = ["UiThread", "bound_url", "serve"]


def bound_url(runner: web.AppRunner, *, bind: str) -> tuple[str, int]:
    """The URL and port a started runner listens on (the OS's pick for port 0)."""
    for site in runner.sites:
        server = getattr(site, "_server", None)
        for sock in getattr(server, "sockets", None) or ():
            port = int(sock.getsockname()[1])
            host = f"[{bind}]" if ":" in bind else bind
            return f"http://{host}:{port}/", port
    raise RuntimeError("the UI server has no listening socket")


async def _start(client: KubeClient, settings: UiSettings) -> tuple[web.AppRunner, str, int]:
    runner = web.AppRunner(make_app(client, settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.bind, settings.port).start()
    url, port = bound_url(runner, bind=settings.bind)
    return runner, url, port


def serve(client: KubeClient, settings: UiSettings, *, ready: Callable[[str], None]) -> None:
    """Serve until interrupted (Ctrl-C); ``ready(url)`` is called once the port is bound."""

    async def main() -> None:
        runner, url, _ = await _start(client, settings)
        ready(url)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())


@dataclass
class UiThread:
    """The view in a daemon thread with its own event loop (the operator's ``--ui-port``).

    Used as a context manager: ``__enter__`` returns once the port is bound (``self.url``),
    ``__exit__`` stops the server and joins the thread.
    """

    client: KubeClient
    settings: UiSettings
    url: str = ""
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sealed-gitops-ui", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            runner, self.url, self.port = await _start(self.client, self.settings)
        except BaseException as exc:  # reported to __enter__, which raises it in the caller
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> UiThread:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def __exit__(self, *_exc: object) -> None:
        stop = self._stop
        if stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout=10)
