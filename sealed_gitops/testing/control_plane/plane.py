"""One real control plane on loopback: etcd, kube-apiserver and kube-controller-manager.

Why: the emulator was written by the same hands as the operator; this is the API server the
operator's users run. It is the envtest shape plus a controller manager: no scheduler and no
kubelet (pods never run), but garbage collection, namespace deletion, the ``default``
ServiceAccount of every namespace and the ``kube-root-ca.crt`` ConfigMap work, and so do
TokenRequest and TokenReview (the operator runs as a process with a ServiceAccount's token, and
OpenBao's Kubernetes auth can log in through TokenReview).

Start-up order, each step waited for before the next (and the reason):

1. etcd answers ``/health`` (kube-apiserver would otherwise spend its first seconds retrying);
2. kube-apiserver answers ``/readyz`` with ``ok`` (every post-start hook ran: RBAC bootstrap
   roles, priority levels, the ``default`` / ``kube-system`` namespaces);
3. kube-controller-manager has created the ServiceAccount ``default/default`` (its controllers are
   running and talking to the server, so a test's first TokenRequest or namespaced object works);
4. only then is the admin kubeconfig written, so whoever waits for the file may use it at once.

A failure at any step stops what was started, in reverse order, and raises ControlPlaneError
with the tail of the failing process's log.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sealed_gitops.errors import ControlPlaneError
from sealed_gitops.testing.control_plane.build import Binaries, ensure_binaries
from sealed_gitops.testing.control_plane.certs import (
    ADMIN_USER,
    CONTROLLER_MANAGER_USER,
    PkiFiles,
    write_pki,
)
from sealed_gitops.testing.control_plane.client import AdminClient
from sealed_gitops.testing.control_plane.kubeconfigs import write_kubeconfig
from sealed_gitops.testing.control_plane.process import Process, free_port, start_process

__all__ = ["AUDIT_POLICY", "DEFAULT_AUDIENCE", "ControlPlane"]

#: The issuer (``iss``) of ServiceAccount tokens and the audience the API server accepts: the
#: in-cluster name of the API server, as on a kubeadm cluster.
DEFAULT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
#: A start on two busy cores takes 10-30 s; a minute and a half leaves room for a loaded CI.
_START_TIMEOUT = 90.0
_POLL = 0.1
#: A port picked free can be taken before the server binds it; such a start is tried again.
_BIND_RACE = ("address already in use", "bind: ")
_ATTEMPTS = 3
#: The audit policy of ``audit_log``: one line (metadata only: who, verb, object, never a body,
#: so no Secret value reaches the file) per write request once it is answered; reads and
#: watches are not logged, so the file stays small while a controller lists thousands of objects.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
"""

Progress = Callable[[str], None]


@dataclass
class ControlPlane:
    """A running control plane: where it answers, its credentials, and its processes."""

    #: ``https://127.0.0.1:<port>``
    url: str
    #: the admin's kubeconfig (client certificate in group ``system:masters``)
    kubeconfig_path: Path
    #: this run's certificates, etcd data and logs (``etcd.log``, ``kube-apiserver.log`` ...)
    workdir: Path
    pki: PkiFiles
    etcd_url: str
    service_account_issuer: str = DEFAULT_AUDIENCE
    #: where kube-apiserver writes an audit line (JSON) per write request, if asked: benchmarks
    #: count the API writes a controller makes (:data:`AUDIT_POLICY`); None writes no audit log
    audit_log: Path | None = None
    #: seconds from the start of each process to its readiness check passing, and ``total``
    timings: dict[str, float] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    #: the temporary directory made by launch(), removed by stop()
    _remove: Path | None = None

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        *,
        workdir: Path | None = None,
        kubeconfig_path: Path | None = None,
        binaries: Binaries | None = None,
        progress: Progress | None = None,
        timeout: float = _START_TIMEOUT,
        audit_log: Path | None = None,
    ) -> Iterator[ControlPlane]:
        """Run a control plane for the duration of the ``with`` block, then stop it.

        ``workdir`` keeps certificates and logs under ``run-*/`` (a temporary directory, removed
        at stop, if None); ``kubeconfig_path`` defaults to ``<workdir>/admin.kubeconfig``;
        ``binaries`` defaults to :func:`ensure_binaries` (which builds them on first use);
        ``audit_log``: a file for the audit lines of write requests (:data:`AUDIT_POLICY`).
        """
        plane = cls.launch(
            workdir=workdir,
            kubeconfig_path=kubeconfig_path,
            binaries=binaries,
            progress=progress,
            timeout=timeout,
            audit_log=audit_log,
        )
        try:
            yield plane
        finally:
            plane.stop()

    @classmethod
    def launch(
        cls,
        *,
        workdir: Path | None = None,
        kubeconfig_path: Path | None = None,
        binaries: Binaries | None = None,
        progress: Progress | None = None,
        timeout: float = _START_TIMEOUT,
        audit_log: Path | None = None,
    ) -> ControlPlane:
        """Start and return a control plane; the caller must call :meth:`stop`."""
        say = progress or (lambda _line: None)
        binaries = binaries or ensure_binaries(progress=say)
        remove = workdir is None
        root = Path(tempfile.mkdtemp(prefix="sg-control-plane-")) if workdir is None else workdir
        root.mkdir(parents=True, exist_ok=True)
        # Absolute: the servers run with their run directory as cwd and get paths in flags.
        root = root.resolve()
        kubeconfig_path = kubeconfig_path.absolute() if kubeconfig_path else None
        try:
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    plane = cls._launch_once(
                        Path(tempfile.mkdtemp(prefix="run-", dir=root)),
                        kubeconfig_path=kubeconfig_path or root / "admin.kubeconfig",
                        binaries=binaries,
                        say=say,
                        timeout=timeout,
                        audit_log=audit_log.absolute() if audit_log else None,
                    )
                except ControlPlaneError as exc:
                    if attempt == _ATTEMPTS or not any(m in str(exc) for m in _BIND_RACE):
                        raise
                    first_line = str(exc).splitlines()[0]
                    say(f"a port was taken before a server bound it ({first_line}); again")
                    continue
                plane._remove = root if remove else None
                return plane
        except BaseException:
            if remove:
                shutil.rmtree(root, ignore_errors=True)
            raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    @classmethod
    def _launch_once(
        cls,
        run: Path,
        *,
        kubeconfig_path: Path,
        binaries: Binaries,
        say: Progress,
        timeout: float,
        audit_log: Path | None = None,
    ) -> ControlPlane:
        started = time.monotonic()
        deadline = started + timeout
        pki = write_pki(run / "pki")
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        plane = cls(
            url=f"https://127.0.0.1:{api_port}",
            kubeconfig_path=kubeconfig_path,
            workdir=run,
            pki=pki,
            etcd_url=f"http://127.0.0.1:{etcd_port}",
            audit_log=audit_log,
        )
        try:
            plane._start_etcd(binaries, peer_port=peer_port, say=say, deadline=deadline)
            plane._start_apiserver(binaries, say=say, deadline=deadline)
            plane._start_controller_manager(binaries, say=say, deadline=deadline)
            write_kubeconfig(
                kubeconfig_path,
                server=plane.url,
                ca_cert=pki.ca_cert,
                user=ADMIN_USER,
                client_cert=pki.admin_cert,
                client_key=pki.admin_key,
            )
        except BaseException:
            plane.stop()
            raise
        plane.timings["total"] = round(time.monotonic() - started, 2)
        say(f"control plane ready at {plane.url} in {plane.timings['total']:.1f} s")
        return plane

    # -- the three processes -------------------------------------------------------------------

    def _start_etcd(
        self, binaries: Binaries, *, peer_port: int, say: Progress, deadline: float
    ) -> None:
        peer = f"http://127.0.0.1:{peer_port}"
        argv = [
            str(binaries.etcd),
            "--name=control-plane",
            f"--data-dir={self.workdir / 'etcd-data'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=control-plane={peer}",
            # Test data is thrown away at stop: fsync only costs time (envtest does the same).
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
        process = self._spawn("etcd", argv, say=say)

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(  # noqa: S310 (http to loopback)
                    f"{self.etcd_url}/health", timeout=2
                ) as response:
                    return bool(json.loads(response.read()).get("health") == "true")
            except (urllib.error.URLError, OSError, ValueError):
                return False

        self._wait(process, "etcd /health", healthy, deadline=deadline)

    def _start_apiserver(self, binaries: Binaries, *, say: Progress, deadline: float) -> None:
        pki = self.pki
        port = self.url.rsplit(":", 1)[1]
        argv = [
            str(binaries.kube_apiserver),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # The endpoint reconciler would publish the advertise address as the endpoints of the
            # `kubernetes` Service, and endpoints may not be loopback: the server refuses to start.
            # Nothing in-cluster dials that Service here (no pods run), so it is turned off.
            "--endpoint-reconciler-type=none",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={self.service_account_issuer}",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--api-audiences={self.service_account_issuer}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--profiling=false",
        ]
        if self.audit_log is not None:
            policy = self.workdir / "audit-policy.yaml"
            policy.write_text(AUDIT_POLICY, encoding="utf-8")
            # The log backend's default mode (blocking) writes each line before the response.
            argv += [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}",
                     "--audit-log-format=json", "--audit-log-maxsize=0"]  # fmt: skip
        process = self._spawn("kube-apiserver", argv, say=say)
        client = self.admin_client()
        self._wait(
            process,
            "kube-apiserver /readyz",
            lambda: client.status("/readyz") == (200, "ok"),
            deadline=deadline,
        )

    def _start_controller_manager(
        self, binaries: Binaries, *, say: Progress, deadline: float
    ) -> None:
        pki = self.pki
        kubeconfig = write_kubeconfig(
            self.workdir / "controller-manager.kubeconfig",
            server=self.url,
            ca_cert=pki.ca_cert,
            user=CONTROLLER_MANAGER_USER,
            client_cert=pki.controller_manager_cert,
            client_key=pki.controller_manager_key,
        )
        argv = [
            str(binaries.kube_controller_manager),
            f"--kubeconfig={kubeconfig}",
            # No HTTPS endpoint of its own: nothing scrapes it, and it would need a port.
            "--secure-port=0",
            "--controllers=*",
            "--leader-elect=false",
            # Each controller acts as its own ServiceAccount, as in a real cluster, so RBAC
            # denials show up here the way they would there.
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca_cert}",
            "--profiling=false",
        ]
        process = self._spawn("kube-controller-manager", argv, say=say)
        client = self.admin_client()
        self._wait(
            process,
            "the ServiceAccount default/default",
            lambda: client.status("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
            deadline=deadline,
        )

    def _spawn(self, name: str, argv: list[str], *, say: Progress) -> Process:
        say(f"starting {name}")
        process = start_process(name, argv, log=self.workdir / f"{name}.log", cwd=self.workdir)
        self.processes.append(process)
        return process

    def _wait(
        self, process: Process, what: str, ready: Callable[[], bool], *, deadline: float
    ) -> None:
        began = time.monotonic()
        while not ready():
            process.check()
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"timed out waiting for {what}; the end of {process.log}:\n{process.log_tail()}"
                )
            time.sleep(_POLL)
        self.timings[process.name] = round(time.monotonic() - began, 2)

    # -- using and stopping it -----------------------------------------------------------------

    def admin_client(self) -> AdminClient:
        """Requests as the admin (``system:masters``), for set-up that must not depend on RBAC."""
        return AdminClient(
            self.url,
            ca_cert=self.pki.ca_cert,
            client_cert=self.pki.admin_cert,
            client_key=self.pki.admin_key,
        )

    def check(self) -> None:
        """Raise ControlPlaneError if any of the processes has exited."""
        for process in self.processes:
            process.check()

    def service_account_kubeconfig(
        self,
        path: Path,
        *,
        namespace: str,
        name: str,
        audiences: list[str] | None = None,
        expiration_seconds: int = 3600,
    ) -> Path:
        """Write a kubeconfig that authenticates as ServiceAccount ``namespace/name``.

        The token comes from the TokenRequest API (what a pod's projected token would be); the
        ServiceAccount must exist. ``expiration_seconds`` is at least 600 (the server's minimum).
        """
        token = self.admin_client().request_token(
            namespace=namespace,
            service_account=name,
            audiences=audiences,
            expiration_seconds=expiration_seconds,
        )
        return write_kubeconfig(
            path,
            server=self.url,
            ca_cert=self.pki.ca_cert,
            user=f"system:serviceaccount:{namespace}:{name}",
            token=token,
            namespace=namespace,
        )

    def stop(self, *, grace: float = 10.0) -> None:
        """Stop the processes in reverse start order (SIGTERM, then SIGKILL after ``grace``)."""
        errors: list[BaseException] = []
        while self.processes:
            process = self.processes.pop()
            try:
                process.stop(grace=grace)
            except BaseException as exc:  # stop the others before reporting it
                errors.append(exc)
        if self._remove is not None:
            shutil.rmtree(self._remove, ignore_errors=True)
        if errors:
            raise errors[0]
