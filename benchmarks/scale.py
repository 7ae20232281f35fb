"""The operator at scale: 10,000 SOPS Secrets + 10,000 ConfigMaps in 100 Syncs (issue 16, Must 4).

Why: a cluster with many tenants must not cost more per object as it grows, and a quiet cluster
must cost almost nothing: no writes, no decryptions. The operator runs as its own process
(``python -m sealed_gitops operator``), so its CPU time (``/proc/PID/stat``) and peak RSS
(``VmHWM``) are its own; API requests and decryptions are read from its ``/metrics``:
``sealed_gitops_api_requests_total`` (every request its reconciles send, by method; kopf's
long-lived watch streams are not in it), ``sealed_gitops_sops_files_decrypted_total`` (SOPS files
really opened) and ``sealed_gitops_decryption_operations_total`` (data-key unwraps).

Figures, per size (``--objects N``: N/2 Secrets and N/2 ConfigMaps over ``--syncs`` Syncs and
``--repositories`` Git repositories served as file:// URLs; see ``_scale_setup.py``):

- first reconcile: from creating the Repositories and Syncs (commits already pushed, operator
  idle) to every Sync Ready at its revision; the objects are then counted in the cluster;
- no-op interval: every Sync reconciles once more at the same revision (``spec.interval``);
  the window ends once the Sync reconcile counter rose by the number of Syncs. Operator CPU
  (idle costs included), reads, writes, decryptions, unwraps; median of ``--noop-runs``
  (goal: under 1 s of CPU at 100 Syncs, 0 writes, 0 decryptions);
- one changed file: commit and push a new value of one Secret, ask its Repository to check
  (``sealed-gitops.io/requested-at``), until the new value is in the cluster; median of
  ``--changes``;
- peak RSS of the operator process (goal under 300 MB at 20,000 objects).

With ``--sizes 1000,5000,20000`` each size runs on a fresh cluster and operator, then a table shows
each figure per size and its growth against linear (``(f(n)/f(n0)) / (n/n0)``: 1.0 is linear,
below is better); ``--plot FILE`` draws it with matplotlib when installed (skipped otherwise).

Usage: ``.venv/bin/python benchmarks/scale.py [--objects N | --sizes A,B,C] [--syncs 100]
[--repositories 10] [--interval 20] [--noop-runs 5] [--changes 5] [--plot docs/img/scale.png]
[--control-plane | --kubeconfig FILE]``. Each size prints one ``RESULT key=value ...`` line.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sealed_gitops.cluster import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scale_setup import (
    GROUP,
    Layout,
    Operator,
    change_one_secret,
    create_cluster_objects,
    make_repositories,
    new_identity,
    operator_process,
    total,
)
from _scale_table import plot, print_table
from _timing import MIN_RUNS, Sample, Stats, process_cpu
from reconcile import kubectl, start_emulator

ROOT = Path(__file__).resolve().parents[1]
REQUESTED_AT = "sealed-gitops.io/requested-at"


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, pause: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(pause)


def all_ready(client: Any, layout: Layout, revisions: dict[str, str]) -> bool:
    """Every Sync Ready=True at the revision its repository's head has."""
    syncs = client.request("GET", f"{GROUP}/syncs", action="list", what="syncs")
    ready = 0
    for sync in syncs.get("items") or []:
        ns = sync["metadata"]["namespace"]
        status = sync.get("status") or {}
        applied = str(status.get("lastAppliedRevision") or "")
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        if conditions.get("Ready") == "True" and revisions[ns] in applied:
            ready += 1
    return ready == layout.syncs


def count_objects(client: Any, layout: Layout) -> int:
    found = 0
    for r in range(layout.repositories):
        ns = layout.namespace(r)
        for kind in ("secrets", "configmaps"):
            items = client.request(
                "GET", f"/api/v1/namespaces/{ns}/{kind}", action="list", what=kind
            ).get("items")
            found += sum(1 for o in items or () if o["metadata"]["name"].startswith("sync-"))
    return found


def noop_window(operator: Operator, layout: Layout) -> dict[str, float]:
    """One interval of every Sync at the same revision, from the operator's side."""
    before, cpu, start = operator.metrics(), process_cpu(operator.pid), time.perf_counter()
    reconciles = total(before, "sealed_gitops_reconcile_total", kind="Sync")
    wait_until(
        lambda: (
            total(operator.metrics(), "sealed_gitops_reconcile_total", kind="Sync")
            >= reconciles + layout.syncs
        ),
        timeout=layout.interval * 4 + 120,
        what="an interval of every Sync",
        # each look is a /metrics scrape the operator's CPU pays for (a few ms): look seldom
        pause=max(0.2, min(2.0, layout.interval / 10)),
    )
    after, cpu_after = operator.metrics(), process_cpu(operator.pid)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    return {
        "wall": time.perf_counter() - start,
        "cpu": cpu_after - cpu,
        "reads": delta("sealed_gitops_api_requests_total", kind="read"),
        "writes": delta("sealed_gitops_api_requests_total", kind="write"),
        "decryptions": delta("sealed_gitops_sops_files_decrypted_total"),
        "unwraps": delta("sealed_gitops_decryption_operations_total"),
        "reconciles": delta("sealed_gitops_reconcile_total", kind="Sync"),
    }


def secret_value(client: Any, ns: str, name: str) -> str | None:
    try:
        found = client.request(
            "GET", f"/api/v1/namespaces/{ns}/secrets/{name}", action="get", what="secret"
        )
    except Exception:  # not there yet
        return None
    raw = (found.get("data") or {}).get("password")
    return base64.b64decode(raw).decode() if raw else None


def run_size(
    args: argparse.Namespace, objects: int, *, root: Path, kubeconfig: Path
) -> dict[str, float]:
    layout = Layout(objects=objects, syncs=args.syncs, repositories=args.repositories,
                    interval=args.interval)  # fmt: skip
    identity, recipient = new_identity()
    t0 = time.perf_counter()
    repos = make_repositories(root, layout, recipient=recipient)
    print(f"[{objects}] made {layout.secrets} SOPS Secrets + {layout.configmaps} ConfigMaps in "
          f"{layout.syncs} Syncs over {layout.repositories} repositories, committed, in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
    subprocess.run([kubectl(), "--kubeconfig", str(kubeconfig), "apply", "--server-side", "-k",
                    str(ROOT / "crds")], check=True, capture_output=True)  # fmt: skip
    client = connect(kubeconfig)
    revisions = {layout.namespace(r): w.head() for r, w in enumerate(repos.work)}
    with operator_process(kubeconfig, layout, root) as operator:
        time.sleep(1.0)  # start-up work done: the first figure is the reconcile alone
        cpu0, start = process_cpu(operator.pid), time.perf_counter()
        create_cluster_objects(client, layout, repos, identity=identity)
        wait_until(lambda: all_ready(client, layout, revisions), timeout=args.timeout,
                   what="every Sync Ready", pause=0.5)  # fmt: skip
        first = Sample(wall=time.perf_counter() - start, cpu=process_cpu(operator.pid) - cpu0)
        present = count_objects(client, layout)
        assert present == layout.secrets + layout.configmaps, (present, layout)
        print(f"[{objects}] first reconcile: wall {first.wall:.2f} s, operator CPU "
              f"{first.cpu:.2f} s; {present} objects present", flush=True)  # fmt: skip

        noop_window(operator, layout)  # settles: the first interval after the first reconcile
        windows = [noop_window(operator, layout) for _ in range(args.noop_runs)]
        noop = Stats(tuple(Sample(w["wall"], w["cpu"]) for w in windows))
        sums = {k: sum(w[k] for w in windows) for k in ("writes", "decryptions", "unwraps")}
        reads = statistics.median(w["reads"] for w in windows)
        print(f"[{objects}] no-op interval (operator): {noop.describe()}; per interval: median "
              f"{reads:.0f} reads, {statistics.median(w['reconciles'] for w in windows):.0f} "
              f"Sync reconciles; in all {len(windows)}: {sums['writes']:.0f} writes, "
              f"{sums['decryptions']:.0f} SOPS files decrypted, {sums['unwraps']:.0f} data-key "
              "unwraps", flush=True)  # fmt: skip

        ns = layout.namespace(repos.target[0])
        changes = []
        for k in range(args.changes):
            value = f"changed-{k}-{time.time_ns()}"
            cpu0, start = process_cpu(operator.pid), time.perf_counter()
            name = change_one_secret(repos, value=value, recipient=recipient)
            stamp = datetime.datetime.now(datetime.UTC).isoformat()
            client.request("PATCH", f"{GROUP}/namespaces/{ns}/repositories/app",
                           body={"metadata": {"annotations": {REQUESTED_AT: stamp}}},
                           content_type="application/merge-patch+json", action="request",
                           what="Repository")  # fmt: skip
            wait_until(lambda: secret_value(client, ns, name) == value, timeout=120,  # noqa: B023
                       what="the changed Secret", pause=0.02)  # fmt: skip
            changes.append(Sample(time.perf_counter() - start, process_cpu(operator.pid) - cpu0))
        change = Stats(tuple(changes))
        print(f"[{objects}] one changed file, commit to changed Secret (operator CPU): "
              f"{change.describe()}", flush=True)  # fmt: skip
        rss = operator.peak_rss_mb()
        print(f"[{objects}] operator peak RSS (VmHWM): {rss:.0f} MB", flush=True)
    client.close()
    figures = {
        "objects": float(objects),
        "first_wall_s": first.wall,
        "first_cpu_s": first.cpu,
        "noop_wall_s": noop.wall,
        "noop_cpu_s": noop.cpu,
        "noop_reads": reads,
        "noop_writes": sums["writes"],
        "noop_decryptions": sums["decryptions"],
        "noop_unwraps": sums["unwraps"],
        "change_wall_s": change.wall,
        "change_cpu_s": change.cpu,
        "peak_rss_mb": rss,
    }
    print("RESULT " + " ".join(f"{k}={v:.3f}" if k.endswith(("_s", "_mb")) else f"{k}={v:.0f}"
                               for k, v in figures.items()), flush=True)  # fmt: skip
    return figures


def on_cluster(args: argparse.Namespace, objects: int, root: Path) -> dict[str, float]:
    """One size on a fresh cluster of the kind asked for."""
    if args.kubeconfig:
        return run_size(args, objects, root=root, kubeconfig=args.kubeconfig)
    if args.control_plane:
        from sealed_gitops.testing.control_plane import ControlPlane

        with ControlPlane.start(workdir=root / "control-plane") as plane:
            return run_size(args, objects, root=root, kubeconfig=plane.kubeconfig_path)
    emulator, kubeconfig = start_emulator(root)
    try:
        return run_size(args, objects, root=root, kubeconfig=kubeconfig)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--objects", type=int, default=20_000, help="Secrets + ConfigMaps")
    size.add_argument("--sizes", help="several sizes, comma-separated (a fresh cluster each)")
    parser.add_argument("--syncs", type=int, default=100)
    parser.add_argument("--repositories", type=int, default=10)
    parser.add_argument("--interval", type=int, default=20, help="every Sync's spec.interval (s)")
    parser.add_argument("--noop-runs", type=int, default=MIN_RUNS)
    parser.add_argument("--changes", type=int, default=MIN_RUNS)
    parser.add_argument("--timeout", type=float, default=1800, help="for the first reconcile")
    parser.add_argument("--plot", type=Path, help="PNG of the figures per size (matplotlib)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--control-plane", action="store_true",
                       help="the real kube-apiserver, etcd and controller-manager built from "
                       "source (cached) instead of the emulator")  # fmt: skip
    where.add_argument("--kubeconfig", type=Path,
                       help="run on this cluster (namespaces scale-* must not exist; "
                       "one size)")  # fmt: skip
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.objects]
    if args.repositories > args.syncs or any(n < 2 * args.syncs for n in sizes):
        sys.exit("need at least one Sync per repository and two objects per Sync")
    if args.kubeconfig and len(sizes) > 1:
        sys.exit("--kubeconfig runs one size (its namespaces cannot be made fresh)")
    cluster = ("the real control plane (built from source)" if args.control_plane
               else f"cluster {args.kubeconfig}" if args.kubeconfig
               else "the emulator (its own process)")  # fmt: skip
    print(f"cluster: {cluster}; operator: its own process; sizes: {sizes}", flush=True)
    results = []
    for objects in sizes:
        with tempfile.TemporaryDirectory(prefix="sg-scale-bench-") as tmp:
            results.append(on_cluster(args, objects, Path(tmp)))
    if len(results) > 1:
        print_table(results)
    if args.plot:
        print(plot(results, args.plot))


if __name__ == "__main__":
    main()
