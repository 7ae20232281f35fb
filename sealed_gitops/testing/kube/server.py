"""``KubeEmulator``: the Kubernetes API emulator as one object you start and stop.

It wires the pieces together (store, registry, verbs, discovery, filters) behind an aiohttp server
on 127.0.0.1 and an OS-picked port, and writes a kubeconfig for an admin user (group
``system:masters``) so kubectl, the Python client and kopf can be pointed at it. Use it in a test
with ``async with KubeEmulator() as api:``, or from synchronous code (the CLI, subprocess-based
tests) with ``with KubeEmulator().run_in_thread() as api:``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import ssl
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from sealed_gitops.testing.kube.auth import Authenticator, UserInfo
from sealed_gitops.testing.kube.discovery import DiscoveryHandler
from sealed_gitops.testing.kube.faults import FaultInjector
from sealed_gitops.testing.kube.handlers import ResourceHandler
from sealed_gitops.testing.kube.kubeconfig import write_kubeconfig
from sealed_gitops.testing.kube.middleware import make_middleware, request_info
from sealed_gitops.testing.kube.objects import Objects
from sealed_gitops.testing.kube.rbac import (
    MASTERS_GROUP,
    RBAC_GROUP,
    RBAC_PLURALS,
    Authorizer,
    bootstrap_policy,
)
from sealed_gitops.testing.kube.resources import Registry, ResourceType
from sealed_gitops.testing.kube.specials import Specials
from sealed_gitops.testing.kube.store import Store
from sealed_gitops.testing.kube.tls import make_certificate

__all__ = ["ADMIN_USER", "KubeEmulator"]

#: namespaces every cluster starts with
_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_ROOT_CA_NOTE = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)
ADMIN_USER = UserInfo("admin", (MASTERS_GROUP, "system:authenticated"))


class KubeEmulator:
    """An in-process Kubernetes API server for tests, benchmarks and the local sandbox.

    ``rbac`` turns authorization on (Roles, ClusterRoles and bindings in the store decide; the
    admin token stays all-powerful through ``system:masters``). ``users`` maps extra bearer tokens
    to identities. ``watch_history`` is how many events per resource a watch can resume from
    before a resume answers 410 Gone. ``bookmark_interval`` is the seconds between BOOKMARK events
    on watches that ask for them (a real server sends one about every minute).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rbac: bool = False,
        users: Mapping[str, UserInfo] | None = None,
        kubeconfig_path: str | Path | None = None,
        watch_history: int = 2000,
        bookmark_interval: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.rbac = rbac
        self.token = secrets.token_urlsafe(32)
        #: the emulator's own CA and server certificate; clients trust ``certificate.ca_pem``
        self.certificate = make_certificate(host)
        self.store = Store(history=watch_history)
        self.registry = Registry()
        self.objects = Objects(store=self.store, registry=self.registry)
        self.faults = FaultInjector()
        #: what ``GET pods/NAME/log`` serves, by (namespace, pod name): a test sets it (no kubelet)
        self.pod_logs: dict[tuple[str, str], str] = {}
        self.authenticator = Authenticator(static_tokens={self.token: ADMIN_USER, **(users or {})})
        # Keyed on the RBAC resources' own writes, so other writes keep the snapshot cached.
        self.authorizer = Authorizer(lister=self.objects.lister, version=self._rbac_version)
        self.objects.on_removed = self._removed
        self.objects.on_created = self._created
        self._kubeconfig_wanted = Path(kubeconfig_path) if kubeconfig_path else None
        self._tempdir: str | None = None
        self._runner: web.AppRunner | None = None
        self._bookmark_interval = bookmark_interval
        self.url = ""
        self.kubeconfig_path = Path()
        namespaces = self.registry.lookup("", "v1", "namespaces")
        assert namespaces is not None  # noqa: S101 - a built-in
        for name in _SYSTEM_NAMESPACES:
            self.objects.create(
                namespaces,
                "",
                {"metadata": {"name": name}},
                dry_run=False,
                manager="kube-apiserver",
            )
        for obj in bootstrap_policy():
            rt = self.registry.first(obj["apiVersion"].split("/")[0], RBAC_PLURALS[obj["kind"]])
            assert rt is not None  # noqa: S101 - built-in RBAC kinds
            self.objects.create(rt, "", obj, dry_run=False, manager="kube-apiserver")

    def _rbac_version(self) -> tuple[int, ...]:
        return tuple(self.store.last_write((RBAC_GROUP, p)) for p in RBAC_PLURALS.values())

    # -- life cycle ----------------------------------------------------------------------------

    def _app(self) -> web.Application:
        specials = Specials(
            objects=self.objects,
            authenticator=self.authenticator,
            authorizer=self.authorizer,
            rbac=lambda: self.rbac,
        )
        resources = ResourceHandler(
            objects=self.objects,
            specials=specials.table(),
            bookmark_interval=self._bookmark_interval,
            pod_logs=self.pod_logs,
        )
        discovery = DiscoveryHandler(registry=self.registry)

        async def dispatch(request: web.Request) -> web.StreamResponse:
            info = request_info(request)
            if info.is_resource:
                return await resources(request, info)
            return await discovery(request)

        app = web.Application(
            middlewares=[
                make_middleware(
                    faults=self.faults,
                    authenticator=self.authenticator,
                    authorizer=self.authorizer,
                    rbac=lambda: self.rbac,
                )
            ],
            client_max_size=16 * 1024 * 1024,
        )
        app.router.add_route("*", "/{tail:.*}", dispatch)
        return app

    async def start(self) -> KubeEmulator:
        runner = web.AppRunner(
            self._app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        self._tempdir = tempfile.mkdtemp(prefix="kube-emulator-")
        site = web.TCPSite(
            runner,
            self.host,
            self.port,
            ssl_context=self.certificate.server_context(Path(self._tempdir)),
        )
        await site.start()
        self._runner = runner
        address: Any = runner.addresses[0]
        self.port = int(address[1])
        self.url = f"https://{self.host}:{self.port}"
        if self._kubeconfig_wanted is None:
            path = Path(self._tempdir) / "kubeconfig"
        else:
            path = self._kubeconfig_wanted
        self.kubeconfig_path = write_kubeconfig(
            path, server=self.url, token=self.token, ca_pem=self.certificate.ca_pem
        )
        return self

    async def stop(self) -> None:
        self.store.close_watchers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    async def __aenter__(self) -> KubeEmulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextlib.contextmanager
    def run_in_thread(self) -> Iterator[KubeEmulator]:
        """Serve from a background thread with its own event loop, for synchronous callers.

        Touch the emulator's state (``faults``, ``add_user``) freely from the caller's thread:
        those are thread-safe; anything else should go through the HTTP API.
        """
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        thread = threading.Thread(
            target=self._thread_main, args=(loop, ready), daemon=True, name="kube-emulator"
        )
        thread.start()
        ready.wait()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=30)
            yield self
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()

    @staticmethod
    def _thread_main(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context trusting this emulator (pass it to aiohttp as ``ssl=``)."""
        return self.certificate.client_context()

    def _created(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Do what a cluster's controllers do for a new namespace, at once instead of soon after:
        a ``default`` ServiceAccount and the ``kube-root-ca.crt`` ConfigMap with the server's CA."""
        if rt.key != ("", "namespaces"):
            return
        namespace = obj["metadata"]["name"]
        accounts = self.registry.lookup("", "v1", "serviceaccounts")
        maps = self.registry.lookup("", "v1", "configmaps")
        assert accounts is not None and maps is not None  # noqa: S101 - built-ins
        self.objects.create(
            accounts,
            namespace,
            {"metadata": {"name": "default"}},
            dry_run=False,
            manager="kube-controller-manager",
        )
        self.objects.create(
            maps,
            namespace,
            {
                "metadata": {
                    "name": "kube-root-ca.crt",
                    "annotations": {"kubernetes.io/description": _ROOT_CA_NOTE},
                },
                "data": {"ca.crt": self.certificate.ca_pem.decode()},
            },
            dry_run=False,
            manager="kube-controller-manager",
        )

    def _removed(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt.key == ("", "serviceaccounts"):
            meta = obj["metadata"]
            self.authenticator.revoke_service_account(
                namespace=meta.get("namespace", ""), name=meta["name"]
            )

    # -- conveniences --------------------------------------------------------------------------

    def add_user(self, token: str, user: UserInfo) -> None:
        """Accept one more bearer token, mapped to ``user``."""
        self.authenticator.add_static_token(token, user)

    def write_kubeconfig(self, path: str | Path, *, token: str | None = None) -> Path:
        """Another kubeconfig for this server, e.g. for a user added with :meth:`add_user`."""
        return write_kubeconfig(
            Path(path), server=self.url, token=token or self.token, ca_pem=self.certificate.ca_pem
        )
