"""Run the peers as local processes against a kubeconfig, as their developers run them.

Why out of cluster: the test control plane has no kubelet, so nothing runs as a pod; Flux's and
Sealed Secrets' own ``make run`` targets start the controller binary on the developer's machine
with a kubeconfig, and so do these context managers. Each binds only loopback ports the OS picked,
disables leader election (one replica, no Lease to wait for), writes its output to a log file, and
is stopped by its PID (SIGTERM, a grace period, SIGKILL) when the ``with`` block ends, also when
the block fails. Readiness is the controller's own answer, never a sleep: controller-runtime's
``/readyz`` on the health address for Flux, and for Sealed Secrets the certificate it serves once
its key is loaded (``/v1/cert.pem``).

The processes are started through ``setpriv --pdeathsig KILL`` where util-linux has it, as the
control plane's are, so a test run killed with SIGKILL leaves no controller behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sealed_gitops.errors import ControlPlaneError
from sealed_gitops.testing.control_plane.process import Process, free_port, start_process
from sealed_gitops.testing.peers.build import Built

__all__ = [
    "FluxController",
    "InClusterIdentity",
    "SealedSecretsController",
    "in_cluster_supported",
    "kustomize_controller",
    "sealed_secrets_controller",
    "source_controller",
]

#: Start-up is seconds on an idle machine; generous because two cores are shared with builds.
_READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class FluxController:
    """A running Flux controller: its process and the addresses it serves."""

    process: Process
    health_url: str
    metrics_url: str
    #: source-controller only: where it serves artifacts (what kustomize-controller downloads).
    storage_url: str = ""


@dataclass(frozen=True)
class SealedSecretsController:
    """A running Sealed Secrets controller: its process, namespace and HTTP address."""

    process: Process
    namespace: str
    url: str

    def certificate(self) -> bytes:
        """The PEM certificate of the controller's active key (what ``kubeseal`` fetches)."""
        with urllib.request.urlopen(f"{self.url}/v1/cert.pem", timeout=10) as answer:  # noqa: S310
            return bytes(answer.read())


def _spawn(name: str, argv: list[str], *, env: dict[str, str], log: Path, cwd: Path) -> Process:
    """Start ``argv`` with ``env``; its output is appended to ``log`` (as the control plane's)."""
    return start_process(name, argv, log=log, cwd=cwd, env=env)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback)
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _wait_ready(process: Process, ready: Callable[[], bool], *, what: str) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT
    while not ready():
        process.check()  # exited: raise with the end of its log
        if time.monotonic() > deadline:
            raise ControlPlaneError(
                f"{what} was not ready after {_READY_TIMEOUT:.0f} s; the end of {process.log}:\n"
                f"{process.log_tail()}"
            )
        time.sleep(0.1)


def _environment(kubeconfig: Path, runtime_namespace: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "SOPS_"))}
    env["KUBECONFIG"] = str(kubeconfig)
    # Flux records Events and (with leader election) its Lease in RUNTIME_NAMESPACE; in a pod it
    # is the pod's namespace from the downward API.
    env["RUNTIME_NAMESPACE"] = runtime_namespace
    # A developer's SOPS or age variables must not give the controller keys the test did not.
    return env


@contextlib.contextmanager
def _running(process: Process) -> Iterator[Process]:
    try:
        yield process
    finally:
        process.stop()


def _flux_arguments() -> tuple[list[str], str, str]:
    health, metrics = free_port(), free_port()
    args = [
        f"--health-addr=127.0.0.1:{health}",
        f"--metrics-addr=127.0.0.1:{metrics}",
        "--enable-leader-election=false",
        "--log-level=debug",
        "--log-encoding=json",
    ]
    return args, f"http://127.0.0.1:{health}", f"http://127.0.0.1:{metrics}"


@contextlib.contextmanager
def source_controller(
    built: Built, *, kubeconfig: Path, workdir: Path, runtime_namespace: str = "default"
) -> Iterator[FluxController]:
    """Flux's source-controller, serving artifacts from ``workdir/storage`` on a loopback port."""
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    args, health, metrics = _flux_arguments()
    port = free_port()
    args += [
        f"--storage-path={storage}",
        f"--storage-addr=127.0.0.1:{port}",
        # The host kustomize-controller downloads from: in a cluster, the Service's DNS name.
        f"--storage-adv-addr=127.0.0.1:{port}",
    ]
    process = _spawn(
        "source-controller",
        [str(built.binary("source-controller")), *args],
        env=_environment(kubeconfig, runtime_namespace),
        log=workdir / "source-controller.log",
        cwd=workdir,
    )
    with _running(process):
        _wait_ready(process, lambda: _answers(f"{health}/readyz"), what="source-controller")
        yield FluxController(process, health, metrics, storage_url=f"http://127.0.0.1:{port}")


@contextlib.contextmanager
def kustomize_controller(
    built: Built, *, kubeconfig: Path, workdir: Path, runtime_namespace: str = "default"
) -> Iterator[FluxController]:
    """Flux's kustomize-controller; it downloads the artifacts source-controller advertises."""
    workdir.mkdir(parents=True, exist_ok=True)
    args, health, metrics = _flux_arguments()
    process = _spawn(
        "kustomize-controller",
        [str(built.binary("kustomize-controller")), *args],
        env=_environment(kubeconfig, runtime_namespace),
        log=workdir / "kustomize-controller.log",
        cwd=workdir,
    )
    with _running(process):
        _wait_ready(process, lambda: _answers(f"{health}/readyz"), what="kustomize-controller")
        yield FluxController(process, health, metrics)


@dataclass(frozen=True)
class InClusterIdentity:
    """What a pod would find: the API server's address, its CA, a ServiceAccount token."""

    host: str
    port: int
    ca_pem: bytes = field(repr=False)
    token: str = field(repr=False)


#: Where client-go's ``rest.InClusterConfig`` reads the token and the CA, fixed in its code.
_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: Inside the controller's own mount namespace: a fresh /run (the host's stays untouched) holding
#: the ServiceAccount directory, filled from the test's files, then the controller exec'd in place.
_IN_CLUSTER_SHELL = (
    'set -e; mount -t tmpfs -o mode=0755 sealed-gitops-peer /run; mkdir -p "$SA_DIR"; '
    'cp "$PEER_TOKEN" "$SA_DIR/token"; cp "$PEER_CA" "$SA_DIR/ca.crt"; '
    'printf %s "$POD_NAMESPACE" > "$SA_DIR/namespace"; exec "$@"'
)


def in_cluster_supported() -> str:
    """An empty string when a private mount namespace can be made here, else why not."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return "util-linux `unshare` is not installed"
    probe = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "--", "sh", "-c",
         "mount -t tmpfs probe /run"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"cannot make a private mount namespace ({probe.stderr.strip() or 'refused'})"
    return ""


@contextlib.contextmanager
def sealed_secrets_controller(
    built: Built, *, identity: InClusterIdentity, workdir: Path, namespace: str
) -> Iterator[SealedSecretsController]:
    """Bitnami's controller keeping its keys in ``namespace`` (it makes one if it finds none).

    v0.40.0 has no ``--kubeconfig``: it builds its client with ``rest.InClusterConfig()`` only,
    which reads ``KUBERNETES_SERVICE_HOST``/``_PORT`` and a token and CA at a path fixed under
    /var/run. So the controller runs in a private mount namespace (``unshare --mount``, root or
    a user namespace) whose /run is a tmpfs holding that directory; nothing on the host changes.
    Its namespace is ``POD_NAMESPACE``, as the downward API sets it in the Helm chart.
    """
    reason = in_cluster_supported()
    if reason:
        raise ControlPlaneError(
            f"cannot run the sealed-secrets controller out of cluster: {reason}"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    secrets = workdir / "service-account"
    secrets.mkdir(mode=0o700, exist_ok=True)
    (secrets / "token").write_text(identity.token, encoding="ascii")
    (secrets / "ca.crt").write_bytes(identity.ca_pem)
    port, metrics = free_port(), free_port()
    args = [
        f"--listen-addr=127.0.0.1:{port}",
        f"--listen-metrics-addr=127.0.0.1:{metrics}",
        # Only its own namespace's SealedSecrets: tests sharing the control plane stay apart.
        "--all-namespaces=false",
        # No scheduled rotation during a test: the key the test imported stays the newest.
        "--key-renew-period=0",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "SOPS_"))}
    env.update(
        KUBERNETES_SERVICE_HOST=identity.host,
        KUBERNETES_SERVICE_PORT=str(identity.port),
        POD_NAMESPACE=namespace,
        SA_DIR=_SERVICE_ACCOUNT_DIR,
        PEER_TOKEN=str(secrets / "token"),
        PEER_CA=str(secrets / "ca.crt"),
    )
    unshare = shutil.which("unshare") or "unshare"
    argv = [unshare, "--mount", "--propagation", "private", "--", "sh", "-c", _IN_CLUSTER_SHELL,
            "sealed-secrets-controller", str(built.binary("controller")), *args]  # fmt: skip
    process = _spawn(
        "sealed-secrets-controller",
        argv,
        env=env,
        log=workdir / "sealed-secrets-controller.log",
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    with _running(process):
        _wait_ready(process, lambda: _answers(f"{url}/v1/cert.pem"), what="sealed-secrets")
        yield SealedSecretsController(process, namespace, url)
