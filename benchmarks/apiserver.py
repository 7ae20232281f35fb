"""How fast the Kubernetes API emulator is, and whether it stays fast as it fills up.

Issue 4, item 8: creates per second, and p50/p99 GET latency with 100 and with 10,000 objects
stored; the p50 at 10,000 must stay within 2x of the p50 at 100 (GET is a dict lookup, and nothing
about past requests is kept). Requests go over real HTTPS on keep-alive connections, as a client
would send them; the emulator shares this process's event loop with the client.

    .venv/bin/python benchmarks/apiserver.py [--gets 2000] [--concurrency 8]

It exits 1 when the p50 ratio misses the goal, so CI or a person running it sees a regression.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import aiohttp

from sealed_gitops.testing import KubeEmulator

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


async def main(gets: int, concurrency: int) -> float:
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
            results = {}
            stored = 0
            for target in (100, 10_000):
                rate = await _create(session, api, stored, target - stored, concurrency)
                stored = target
                await _gets(session, api, stored, 200)  # warm up
                latencies = await _gets(session, api, stored, gets)
                results[target] = (rate, statistics.median(latencies), _pct(latencies, 0.99))
                listed = statistics.median(await _lists(session, api, 200))
                print(
                    f"{target:>6} objects: creates/s {rate:8.0f}   GET p50 "
                    f"{results[target][1] * 1000:6.3f} ms   p99 {results[target][2] * 1000:6.3f} ms"
                    f"   LIST of a 10-object namespace p50 {listed * 1000:6.3f} ms"
                )
    ratio = results[10_000][1] / results[100][1]
    print(f"p50@10000 / p50@100 = {ratio:.2f} (goal: <= 2.00)")
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    ratio = asyncio.run(main(args.gets, args.concurrency))
    sys.exit(0 if ratio <= 2.0 else 1)
