"""How fast the Kubernetes API emulator is, and whether it stays fast as it fills up.

Issue 4, item 8: creates per second, and p50/p99 GET latency with 100 and with 10,000 objects
stored; the p50 at 10,000 must stay within 2x of the p50 at 100 (GET is a dict lookup, and nothing
about past requests is kept). Requests go over real HTTPS on keep-alive connections, as a client
would send them; the emulator shares this process's event loop with the client.

    .venv/bin/python benchmarks/apiserver.py [--gets 2000] [--concurrency 8]

Each figure is taken over ``--runs`` rounds (at least 5) at each size: per round the p50 of its
GETs and the CPU time per GET (this process: the client and the emulator share it), printed as the
median and spread of the rounds (benchmarks/_timing.py). The wall-time p50 ratio is printed, and
the last line is the CPU-time ratio (per GET, at 10,000 against at 100), the one the exit code
follows: it exits 1 when that misses the goal, so CI or a person running it sees a regression.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp

from sealed_gitops.testing import KubeEmulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import MIN_RUNS, Sample, Stats, cpu_now, print_ratio

NAMESPACE = "bench"


async def _create(
    session: aiohttp.ClientSession, api: KubeEmulator, start: int, count: int, concurrency: int
) -> float:
    url = f"{api.url}/api/v1/namespaces/{NAMESPACE}/configmaps"
    ssl = api.ssl_context()
    queue = iter(range(start, start + count))

    async def worker() -> None:
        for n in queue:
            body = {
                "metadata": {"name": f"cm-{n:06d}", "labels": {"n": str(n % 10)}},
                "data": {"key": "value" * 4},
            }
            async with session.post(url, json=body, ssl=ssl) as response:
                assert response.status == 201, await response.text()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def _gets(
    session: aiohttp.ClientSession, api: KubeEmulator, stored: int, gets: int
) -> list[float]:
    ssl = api.ssl_context()
    base = f"{api.url}/api/v1/namespaces/{NAMESPACE}/configmaps/"
    latencies = []
    for i in range(gets):
        name = f"cm-{(i * 7919) % stored:06d}"
        started = time.perf_counter()
        async with session.get(base + name, ssl=ssl) as response:
            await response.read()
            assert response.status == 200
        latencies.append(time.perf_counter() - started)
    return latencies


async def _lists(session: aiohttp.ClientSession, api: KubeEmulator, count: int) -> list[float]:
    """LIST of a small namespace: must not pay for the objects stored in other namespaces."""
    ssl = api.ssl_context()
    url = f"{api.url}/api/v1/namespaces/small/configmaps"
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        async with session.get(url, ssl=ssl) as response:
            await response.read()
            assert response.status == 200
        latencies.append(time.perf_counter() - started)
    return latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _rounds(
    session: aiohttp.ClientSession, api: KubeEmulator, stored: int, gets: int, runs: int
) -> tuple[Stats, list[float]]:
    """``runs`` rounds of GETs: (per-GET p50 wall and CPU per round, every latency)."""
    rounds: list[Sample] = []
    everything: list[float] = []
    for _ in range(max(runs, MIN_RUNS)):
        cpu = cpu_now()
        latencies = await _gets(session, api, stored, gets)
        rounds.append(Sample(wall=statistics.median(latencies), cpu=(cpu_now() - cpu) / gets))
        everything.extend(latencies)
    return Stats(tuple(rounds)), everything


async def main(gets: int, concurrency: int, runs: int = MIN_RUNS) -> float:
    async with KubeEmulator() as api:
        headers = {"Authorization": f"Bearer {api.token}"}
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
            for ns in (NAMESPACE, "small"):
                async with session.post(
                    f"{api.url}/api/v1/namespaces",
                    json={"metadata": {"name": ns}},
                    ssl=api.ssl_context(),
                ) as response:
                    assert response.status == 201
            for n in range(10):
                async with session.post(
                    f"{api.url}/api/v1/namespaces/small/configmaps",
                    json={"metadata": {"name": f"s{n}"}},
                    ssl=api.ssl_context(),
                ) as response:
                    assert response.status == 201
            results: dict[int, Stats] = {}
            stored = 0
            for target in (100, 10_000):
                rate = await _create(session, api, stored, target - stored, concurrency)
                stored = target
                await _gets(session, api, stored, 200)  # warm up
                results[target], latencies = await _rounds(session, api, stored, gets, runs)
                listed = statistics.median(await _lists(session, api, 200))
                print(
                    f"{target:>6} objects: creates/s {rate:8.0f}   GET p99 "
                    f"{_pct(latencies, 0.99) * 1000:6.3f} ms   LIST of a 10-object namespace "
                    f"p50 {listed * 1000:6.3f} ms"
                )
                per_get = results[target].describe(unit="ms")
                print(f"       GET (p50 of a round; CPU per GET): {per_get}")
    # ours = at 100 objects, baseline = at 10,000: the printed ratio is p@10000 / p@100
    ratio = print_ratio(
        "GET at 10000 / at 100 (goal: <= 2.00)", baseline=results[10_000], ours=results[100]
    )
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--runs", type=int, default=MIN_RUNS, help=f"rounds of --gets (>= {MIN_RUNS})"
    )
    args = parser.parse_args()
    ratio = asyncio.run(main(args.gets, args.concurrency, args.runs))
    sys.exit(0 if ratio <= 2.0 else 1)
