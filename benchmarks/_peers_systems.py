"""The four systems of benchmarks/peers.py, each run once from an empty namespace.

Why one function per system: each starts its own controller process(es) fresh (so peak RSS and
CPU are that run's), drives them the way their users do, and returns the same figures:

- ours, SOPS: ``sealed-gitops operator`` as its own process; a Repository and a Sync;
- Flux: source-controller + kustomize-controller; a GitRepository and a Kustomization with SOPS
  decryption (Flux's documented set-up), the same repository over the same smart-HTTP server;
- ours, SealedSecrets: the operator applying the kubeseal'd files from Git with a shared KeyRing;
- Bitnami: its controller with that KeyRing's key imported, the same files applied with kubectl.

Reconciles are asked for the way each project's CLI asks (``flux reconcile``: the
``reconcile.fluxcd.io/requestedAt`` annotation; ``sealed-gitops reconcile``: ours), intervals
are an hour so nothing else wakes them, and a run waits for the controller's own statement that
it is done (the applied revision, the handled request) before it reads the CPU counters.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _peers_measure import Api, AuditLog, Meter, wait_until

from sealed_gitops.testing.control_plane import ControlPlane
from sealed_gitops.testing.control_plane.process import Process, free_port, start_process
from sealed_gitops.testing.gitserver import WorkRepo
from sealed_gitops.testing.peers.build import Built
from sealed_gitops.testing.peers.processes import (
    InClusterIdentity,
    kustomize_controller,
    sealed_secrets_controller,
    source_controller,
)

__all__ = ["Bench", "bitnami_sealed", "flux_sops", "our_operator", "ours_sealed", "ours_sops"]

OURS = "sealed-gitops.io/v1alpha1"
FLUX_REQUEST = "reconcile.fluxcd.io/requestedAt"
OUR_REQUEST = "sealed-gitops.io/requested-at"
KEYRING_NAMESPACE = "sealed-gitops-system"
#: After a controller says it is ready, its informers may still be listing: both sides get the
#: same pause before the clock starts, so neither pays for its own start-up in the figures.
SETTLE = 2.0
#: Late writes of a reconcile (an Event, a status) still count if they land in this many seconds.
WRITES_SETTLE = 2.0
#: Generous: two shared cores, 3,000 objects.
TIMEOUT = 1800.0

Figures = dict[str, float]


@dataclass
class Bench:
    """Everything a run needs, made once by benchmarks/peers.py."""

    plane: ControlPlane
    api: Api
    audit: AuditLog
    kubectl: str
    root: Path
    repo: WorkRepo
    url: str
    sops: str
    age_identity: str = field(repr=False)
    objects: int
    peers: dict[str, Built]
    #: the Secret the Bitnami controller loads as its key (our KeyRing's, imported)
    controller_key: dict[str, Any] = field(repr=False)
    #: the snapshot our operator runs from (see :func:`our_operator`)
    ours_source: Path | None
    #: name -> what it measured besides the figures (kubectl apply time, dry-run counts)
    notes: dict[str, list[float]] = field(default_factory=dict)
    #: the no-op's writes by verb and resource, of the last run, per side
    breakdown: dict[str, str] = field(default_factory=dict)

    def note(self, name: str, value: float) -> None:
        self.notes.setdefault(name, []).append(value)

    def run_kubectl(self, *args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            [self.kubectl, "--kubeconfig", str(self.plane.kubeconfig_path), *args],
            input=stdin, capture_output=True, text=True, check=True, timeout=TIMEOUT,
        ).stdout  # fmt: skip

    def change_one_file(self, run: int) -> tuple[str, str, bytes]:
        """A commit changing one Secret's password (a fresh random value); pushed."""
        index = (run * 7919) % self.objects
        value = secrets.token_urlsafe(18)
        env = {**os.environ, "SOPS_AGE_KEY": self.age_identity, "SOPS_DISABLE_VERSION_CHECK": "1"}
        path = self.repo.path / "deploy" / f"secret-{index}.yaml"
        subprocess.run([self.sops, "set", str(path), '["stringData"]["password"]', f'"{value}"'],
                       env=env, check=True, capture_output=True, timeout=60)  # fmt: skip
        sha = self.repo.commit(f"change secret {index}")
        self.repo.push()
        return sha, f"app-{index}", value.encode()

    def sops_names(self) -> tuple[set[str], set[str]]:
        n = range(self.objects)
        return {f"app-{i}" for i in n}, {f"settings-{i}" for i in n}

    def all_present(self, namespace: str, *, secrets_: set[str], configmaps: set[str]) -> bool:
        if secrets_ - self.api.names(f"/api/v1/namespaces/{namespace}/secrets"):
            return False
        return not configmaps or not (
            configmaps - self.api.names(f"/api/v1/namespaces/{namespace}/configmaps")
        )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _delete(bench: Bench, ns: str, lists: list[str]) -> None:
    """Delete the namespace once its controllers have stopped: their finalizers (ours and
    Flux's) would hold it in Terminating forever, so they are dropped first (the objects the
    run applied go with the namespace)."""
    for path in lists:
        for name in bench.api.names(path):
            bench.api.call("PATCH", f"{path}/{name}", {"metadata": {"finalizers": None}},
                           content_type="application/merge-patch+json")  # fmt: skip
    bench.api.delete_namespace(ns)


def _ready(status: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status.get("conditions") or [])  # fmt: skip


@contextlib.contextmanager
def our_operator(
    plane: ControlPlane, namespaces: list[str], log: Path, *, source: Path | None
) -> Iterator[Process]:
    """``sealed-gitops operator`` as its own process, watching ``namespaces``, until the block
    ends; ready once its health endpoint answers. ``source``: a directory holding the
    ``sealed_gitops`` package to run (a snapshot of a commit), else the installed one."""
    port = free_port()
    argv = [sys.executable, "-m", "sealed_gitops", "operator",
            "--kubeconfig", str(plane.kubeconfig_path),
            *(arg for ns in namespaces for arg in ("-n", ns)),
            "--metrics-port", str(port), "--webhook-port", "off", "--no-leader-election",
            "--cache-dir", str(log.parent / f"{log.stem}-cache"),
            "--log-level", "warning"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "SOPS_"))}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    process = start_process("sealed-gitops operator", argv, log=log, cwd=log.parent, env=env)
    try:

        def healthy() -> bool:
            process.check()
            with contextlib.suppress(OSError):
                import urllib.request

                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    return True
            return False

        wait_until(healthy, timeout=120, what="our operator's /healthz")
        yield process
    finally:
        process.stop()


def _our_sync(bench: Bench, ns: str, *, path: str, decryption: dict[str, Any]) -> None:
    base = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{ns}"
    bench.api.create(f"{base}/repositories", {
        "apiVersion": OURS, "kind": "Repository", "metadata": {"name": "app", "namespace": ns},
        "spec": {"url": bench.url, "interval": "1h"}})  # fmt: skip
    bench.api.create(f"{base}/syncs", {
        "apiVersion": OURS, "kind": "Sync", "metadata": {"name": "app", "namespace": ns},
        "spec": {"repositoryRef": {"name": "app"}, "path": path, "interval": "1h",
                 "targetNamespace": ns, "decryption": decryption}})  # fmt: skip


def _our_sync_status(bench: Bench, ns: str) -> dict[str, Any]:
    sync = bench.api.call("GET", f"/apis/sealed-gitops.io/v1alpha1/namespaces/{ns}/syncs/app")
    return dict((sync or {}).get("status") or {})


def _our_applied(bench: Bench, ns: str, sha: str) -> bool:
    status = _our_sync_status(bench, ns)
    return sha in str(status.get("lastAppliedRevision")) and _ready(status)


def _flux_status(bench: Bench, ns: str) -> dict[str, Any]:
    path = f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{ns}/kustomizations/app"
    return dict((bench.api.call("GET", path) or {}).get("status") or {})


def _flux_applied(bench: Bench, ns: str, sha: str) -> bool:
    status = _flux_status(bench, ns)
    return str(status.get("lastAppliedRevision", "")).endswith(sha) and _ready(status)


def _sops_figures(
    bench: Bench, ns: str, run: int, meter: Meter, *, start: Any, applied: Any,
    noop_path: str, source_path: str, request: str,
) -> Figures:  # fmt: skip
    """The SOPS figures, the same steps for both systems; ``start()`` creates their objects."""
    api, out = bench.api, {}
    wanted_secrets, wanted_configmaps = bench.sops_names()
    sha = bench.repo.head()
    time.sleep(SETTLE)
    cpu, began = meter.cpu(), time.monotonic()
    start()
    wait_until(lambda: bench.all_present(ns, secrets_=wanted_secrets, configmaps=wanted_configmaps),
               timeout=TIMEOUT, what=f"{ns}: every object")  # fmt: skip
    out["first_wall"] = time.monotonic() - began
    wait_until(lambda: applied(sha), timeout=TIMEOUT, what=f"{ns}: revision applied")
    out["first_cpu"] = meter.cpu() - cpu

    time.sleep(SETTLE)
    mark, cpu, began = bench.audit.mark(), meter.cpu(), time.monotonic()
    value = api.annotate(noop_path, request)
    wait_until(lambda: (api.call("GET", noop_path) or {}).get("status", {})
               .get("lastHandledReconcileAt") == value,
               timeout=TIMEOUT, what=f"{ns}: no-op")  # fmt: skip
    out["noop_wall"] = time.monotonic() - began
    out["noop_cpu"] = meter.cpu() - cpu
    time.sleep(WRITES_SETTLE)
    writes, _, kinds = bench.audit.writes(mark, ns)
    out["noop_writes"] = float(writes)
    side = "ours" if request == OUR_REQUEST else "Flux"
    bench.breakdown[side] = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))

    sha, name, secret_value = bench.change_one_file(run)
    cpu, began = meter.cpu(), time.monotonic()
    api.annotate(source_path, request)
    wait_until(lambda: api.secret_holds(ns, name, "password", secret_value),
               timeout=TIMEOUT, what=f"{ns}: the changed Secret")  # fmt: skip
    out["change_wall"] = time.monotonic() - began
    wait_until(lambda: applied(sha), timeout=TIMEOUT, what=f"{ns}: changed revision applied")
    out["change_cpu"] = meter.cpu() - cpu
    out["sops_rss"] = meter.peak_rss_mb()
    return out


def ours_sops(bench: Bench, run: int) -> Figures:
    ns = f"ours-sops-{run}"
    api = bench.api
    api.namespace(ns)
    api.create(f"/api/v1/namespaces/{ns}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sops-keys"},
        "data": {"id.agekey": _b64(bench.age_identity)}})  # fmt: skip
    base = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{ns}"
    try:
        with our_operator(bench.plane, [ns], bench.root / f"operator-{ns}.log",
                          source=bench.ours_source) as process:  # fmt: skip
            return _sops_figures(
                bench, ns, run, Meter((process.pid,)),
                start=lambda: _our_sync(bench, ns, path="./deploy",
                                        decryption={"secretRef": {"name": "sops-keys"}}),
                applied=lambda sha: _our_applied(bench, ns, sha),
                noop_path=f"{base}/syncs/app", source_path=f"{base}/repositories/app",
                request=OUR_REQUEST,
            )  # fmt: skip
    finally:
        _delete(bench, ns, [f"{base}/syncs", f"{base}/repositories"])


def flux_sops(bench: Bench, run: int) -> Figures:
    ns = f"flux-sops-{run}"
    api = bench.api
    api.namespace(ns)
    api.create(f"/api/v1/namespaces/{ns}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sops-age"},
        "data": {"age.agekey": _b64(bench.age_identity)}})  # fmt: skip
    source = f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories"
    kustomize = f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{ns}/kustomizations"

    def start() -> None:
        api.create(source, {
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {"interval": "1h", "url": bench.url, "ref": {"branch": "main"}}})  # fmt: skip
        api.create(kustomize, {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {"interval": "1h", "path": "./deploy", "prune": True, "targetNamespace": ns,
                     "sourceRef": {"kind": "GitRepository", "name": "app"},
                     "decryption": {"provider": "sops",
                                    "secretRef": {"name": "sops-age"}}}})  # fmt: skip

    work = bench.root / f"flux-{ns}"
    kubeconfig = bench.plane.kubeconfig_path
    try:
        with (
            source_controller(bench.peers["source-controller"], kubeconfig=kubeconfig,
                              workdir=work / "source", runtime_namespace=ns) as src,
            kustomize_controller(bench.peers["kustomize-controller"], kubeconfig=kubeconfig,
                                 workdir=work / "kustomize", runtime_namespace=ns) as kus,
        ):  # fmt: skip
            return _sops_figures(
                bench, ns, run, Meter((src.process.pid, kus.process.pid)), start=start,
                applied=lambda sha: _flux_applied(bench, ns, sha),
                noop_path=f"{kustomize}/app", source_path=f"{source}/app", request=FLUX_REQUEST,
            )  # fmt: skip
    finally:
        _delete(bench, ns, [source, kustomize])


def _sealed_names(bench: Bench) -> set[str]:
    return {f"sealed-{i}" for i in range(bench.objects)}


def ours_sealed(bench: Bench, run: int) -> Figures:
    ns = f"ours-sealed-{run}"
    bench.api.namespace(ns)
    sha, wanted = bench.repo.head(), _sealed_names(bench)
    try:
        with our_operator(bench.plane, [ns], bench.root / f"operator-{ns}.log",
                          source=bench.ours_source) as process:  # fmt: skip
            meter = Meter((process.pid,))
            time.sleep(SETTLE)
            cpu, began = meter.cpu(), time.monotonic()
            _our_sync(bench, ns, path="./sealed", decryption={
                "keyRingRef": {"name": "cluster", "namespace": KEYRING_NAMESPACE}})  # fmt: skip
            wait_until(lambda: bench.all_present(ns, secrets_=wanted, configmaps=set()),
                       timeout=TIMEOUT, what=f"{ns}: every Secret")  # fmt: skip
            wall = time.monotonic() - began
            wait_until(lambda: _our_applied(bench, ns, sha), timeout=TIMEOUT,
                       what=f"{ns}: revision applied")  # fmt: skip
            return {"sealed_wall": wall, "sealed_cpu": meter.cpu() - cpu,
                    "sealed_rss": meter.peak_rss_mb()}  # fmt: skip
    finally:
        base = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{ns}"
        _delete(bench, ns, [f"{base}/syncs", f"{base}/repositories"])


def _all_synced(bench: Bench, ns: str) -> bool:
    listed = bench.api.call("GET", f"/apis/bitnami.com/v1alpha1/namespaces/{ns}/sealedsecrets")
    items = (listed or {}).get("items") or []
    return len(items) == bench.objects and all(
        any(c.get("type") == "Synced" and c.get("status") == "True"
            for c in (item.get("status") or {}).get("conditions") or [])
        for item in items
    )  # fmt: skip


def bitnami_sealed(bench: Bench, run: int) -> Figures:
    """Bitnami's controller, running as a ServiceAccount of its namespace with our KeyRing's key
    imported; the SealedSecrets applied with ``kubectl apply --server-side`` while it runs."""
    ns = f"bitnami-sealed-{run}"
    api, wanted = bench.api, _sealed_names(bench)
    api.namespace(ns)
    binding = f"{ns}-sealed-secrets"
    try:
        api.create(f"/api/v1/namespaces/{ns}/secrets",
                   {**bench.controller_key, "metadata": {**bench.controller_key["metadata"],
                                                         "namespace": ns}})  # fmt: skip
        api.create(f"/api/v1/namespaces/{ns}/serviceaccounts",
                   {"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "sealed-secrets-controller"}})  # fmt: skip
        api.create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": binding},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "sealed-secrets-controller",
                          "namespace": ns}]})  # fmt: skip
        token = bench.plane.admin_client().request_token(
            namespace=ns, service_account="sealed-secrets-controller", expiration_seconds=7200
        )
        host, port = bench.plane.url.removeprefix("https://").rsplit(":", 1)
        identity = InClusterIdentity(host=host, port=int(port), token=token,
                                     ca_pem=bench.plane.pki.ca_cert.read_bytes())  # fmt: skip
        with sealed_secrets_controller(bench.peers["sealed-secrets"], identity=identity,
                                       workdir=bench.root / f"bitnami-{ns}",
                                       namespace=ns) as controller:  # fmt: skip
            meter = Meter((controller.process.pid,))
            time.sleep(SETTLE)
            cpu, began = meter.cpu(), time.monotonic()
            bench.run_kubectl("apply", "--server-side", "-n", ns, "-f",
                              str(bench.repo.path / "sealed"))  # fmt: skip
            bench.note("kubectl_apply", time.monotonic() - began)
            wait_until(lambda: bench.all_present(ns, secrets_=wanted, configmaps=set()),
                       timeout=TIMEOUT, what=f"{ns}: every Secret")  # fmt: skip
            wall = time.monotonic() - began
            wait_until(lambda: _all_synced(bench, ns), timeout=TIMEOUT,
                       what=f"{ns}: every SealedSecret Synced")  # fmt: skip
            return {"sealed_wall": wall, "sealed_cpu": meter.cpu() - cpu,
                    "sealed_rss": meter.peak_rss_mb()}  # fmt: skip
    finally:
        api.call("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{binding}")
        api.delete_namespace(ns)
