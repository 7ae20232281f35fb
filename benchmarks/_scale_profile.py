"""One Sync of ``scale.py``'s layout reconciled in this process: where a no-op costs CPU, memory.

Why: ``scale.py`` measures the operator from outside (its CPU, its peak RSS), which says how much,
not where. This harness runs the same kind of Sync (N/2 SOPS Secrets and N/2 ConfigMaps from one
directory) with the operator's own reconcile function against the emulator (its own process),
with the operator's garbage-collector tuning, and prints:

- per no-op reconcile: CPU time (median, min), per object, and the share of it spent decoding the
  API's JSON answers and in the cyclic garbage collector; ``--profile`` adds cProfile's top
  entries (CPU clock; its overhead inflates many small calls, so read it for proportions);
- with ``--memory``: what the first reconcile and one no-op leave allocated per object
  (tracemalloc, by file), and what each field of the Sync's memory keeps per object (shared parts
  counted once, in the order printed).

Usage: ``.venv/bin/python benchmarks/_scale_profile.py [--objects 400] [--noop-runs 20]
[--profile] [--memory]``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scale_setup import GROUP, Layout, create_cluster_objects, make_repositories, new_identity
from reconcile import kubectl, start_emulator

import sealed_gitops.cluster.client as client_module
from sealed_gitops.cluster import KubeClient, connect
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.gc_tuning import tune_collector
from sealed_gitops.operator.repository import reconcile_repository
from sealed_gitops.operator.settings import OperatorSettings
from sealed_gitops.operator.sync import reconcile_sync

MEMORY_FIELDS = ("records", "set_by", "inventory", "next_inventory", "desired", "built", "cache",
                 "keyring", "artifact")  # fmt: skip


def _get(client: KubeClient, path: str) -> dict[str, Any]:
    return client.request("GET", path, action="get", what=path)


def _deep_size(obj: object, seen: set[int]) -> int:
    """Bytes of ``obj`` and of everything it reaches that ``seen`` does not hold yet (added)."""
    size, stack = 0, [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(item))
        size += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif hasattr(item, "__dict__"):
            stack.append(vars(item))
        for slot in getattr(type(item), "__slots__", ()):
            if hasattr(item, slot):
                stack.append(getattr(item, slot))
    return size


def _memory_fields(ctx: OperatorContext, namespace: str, objects: int) -> None:
    memory = ctx.sync_memory(namespace, "sync-0")
    seen: set[int] = set()
    for name in MEMORY_FIELDS:
        size = _deep_size(getattr(memory, name), seen)
        print(f"  memory.{name}: {size / objects:.0f} B/object")
    for what in ("parsed", "decrypted"):
        print(f"    cache holds {memory.cache.held(what)} {what} results")


@contextmanager
def _allocations(objects: int, *, enabled: bool) -> Iterator[None]:
    """tracemalloc's count of what the block leaves allocated, per object, by file."""
    if not enabled:
        yield
        return
    gc.collect()
    tracemalloc.start(25)
    before = tracemalloc.take_snapshot()
    yield
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = after.compare_to(before, "filename")
    kept = sum(s.size_diff for s in stats)
    print(f"kept after the first reconcile and one no-op: {kept / 1024:.0f} KiB, "
          f"{kept / objects:.0f} B per object")  # fmt: skip
    for stat in stats[:15]:
        print(f"  {stat.size_diff / objects:8.0f} B/object  {stat.traceback[0].filename}")


@contextmanager
def _clocks() -> Iterator[dict[str, float]]:
    """CPU seconds spent decoding API answers (``decode_json``) and in the cyclic collector."""
    spent = {"json": 0.0, "gc": 0.0, "gc_started": 0.0}
    real_decode = client_module.decode_json  # what the client decodes every answer with

    def timed_decode(data: bytes) -> Any:
        cpu = time.process_time()
        try:
            return real_decode(data)
        finally:
            spent["json"] += time.process_time() - cpu

    def gc_clock(phase: str, _: dict[str, int]) -> None:
        if phase == "start":
            spent["gc_started"] = time.process_time()
        else:
            spent["gc"] += time.process_time() - spent["gc_started"]

    client_module.decode_json = timed_decode
    gc.callbacks.append(gc_clock)
    try:
        yield spent
    finally:
        client_module.decode_json = real_decode
        gc.callbacks.remove(gc_clock)


def _noop_runs(
    reconcile: Callable[[], object], runs: int, profiler: cProfile.Profile | None
) -> list[float]:
    times = []
    for _ in range(runs):
        cpu = time.process_time()
        if profiler is not None:
            profiler.enable()
        reconcile()
        if profiler is not None:
            profiler.disable()
        times.append(time.process_time() - cpu)
    return times


def _make_context(args: argparse.Namespace, root: Path, kubeconfig: Path) -> OperatorContext:
    """The Sync's repository, cluster objects and an operator context (its collector tuned)."""
    layout = Layout(objects=args.objects, syncs=1, repositories=1, interval=3600)
    identity, recipient = new_identity()
    repos = make_repositories(root, layout, recipient=recipient)
    crds = Path(__file__).resolve().parents[1] / "crds"
    subprocess.run(
        [kubectl(), "--kubeconfig", str(kubeconfig), "apply", "--server-side", "-k", str(crds)],
        check=True,
        capture_output=True,
    )
    client = connect(kubeconfig)
    create_cluster_objects(client, layout, repos, identity=identity)
    client.close()
    settings = OperatorSettings(
        namespaces=[layout.namespace(0)],
        kubeconfig=str(kubeconfig),
        cache_dir=root / "cache",
        metrics_port=0,
        webhook_port=0,
        allowed_schemes=frozenset({"file"}),
        leader_lease=None,
    )
    tune_collector()  # as the operator command does
    return OperatorContext(settings)


def run(args: argparse.Namespace, root: Path, kubeconfig: Path) -> None:
    ctx = _make_context(args, root, kubeconfig)
    ns = "scale-0"
    client = ctx.client
    reconcile_repository(ctx, _get(client, f"{GROUP}/namespaces/{ns}/repositories/app"))
    sync_path = f"{GROUP}/namespaces/{ns}/syncs/sync-0"
    with _allocations(args.objects, enabled=args.memory):
        outcome = reconcile_sync(ctx, _get(client, sync_path))
        assert outcome.result == "success", _get(client, sync_path).get("status")
        reconcile_sync(ctx, _get(client, sync_path))  # the first no-op (fills its memos)
    if args.memory:
        _memory_fields(ctx, ns, args.objects)
    writes, sync = client.writes, _get(client, sync_path)
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    with _clocks() as spent:
        times = _noop_runs(lambda: reconcile_sync(ctx, sync), args.noop_runs, profiler)
    assert client.writes == writes, "a no-op reconcile wrote"
    median, runs = statistics.median(times), len(times)
    print(f"per no-op reconcile: decoding answers {spent['json'] / runs * 1000:.2f} ms, "
          f"cyclic GC {spent['gc'] / runs * 1000:.2f} ms")  # fmt: skip
    per_object = median / args.objects * 1e6
    print(f"no-op reconcile of {args.objects} objects: CPU median {median * 1000:.1f} ms "
          f"(min {min(times) * 1000:.1f}), {per_object:.1f} us per object")  # fmt: skip
    if profiler is not None:
        for order, lines in (("tottime", 25), ("cumulative", 40)):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(lines)
            print(out.getvalue())
    ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=400)
    parser.add_argument("--noop-runs", type=int, default=20)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sg-scale-profile-") as tmp:
        emulator, kubeconfig = start_emulator(Path(tmp))
        try:
            run(args, Path(tmp), kubeconfig)
        finally:
            emulator.send_signal(signal.SIGTERM)
            emulator.wait(timeout=30)


if __name__ == "__main__":
    main()
