"""Behaviour only the emulator has: its process mode, tokens, fault injection, bounded history."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from sealed_gitops.testing import KubeEmulator
from tests.emulator.kubehttp import Endpoint, Http


def test_serve_as_a_process_until_sigterm(tmp_path: Path, emulator: KubeEmulator) -> None:
    del emulator  # only to skip on a real cluster
    kubeconfig = tmp_path / "kc"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sealed_gitops.testing",
            "serve",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving https://127.0.0.1:"), line + (
            proc.stderr.read() if proc.stderr else ""
        )
        assert (kubeconfig.stat().st_mode & 0o777) == 0o600
        endpoint = Endpoint.from_kubeconfig(kubeconfig)
        status, version = endpoint.call("GET", "/version")
        assert status == 200
        assert version["major"] == "1"
        config = yaml.safe_load(kubeconfig.read_text())
        config["users"][0]["user"]["token"] = "wrong"
        kubeconfig.write_text(yaml.safe_dump(config))
        status, body = Endpoint.from_kubeconfig(kubeconfig).call("GET", "/api/v1/namespaces")
        assert status == 401
        assert body["reason"] == "Unauthorized"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_public_api_names() -> None:
    from sealed_gitops import testing

    for name in testing.__all__:
        assert getattr(testing, name) is not None
    assert "test" in (testing.__doc__ or "").lower()


async def test_in_process_start_and_stop() -> None:
    async with KubeEmulator() as api:
        assert api.url.startswith("https://127.0.0.1:")
        assert api.kubeconfig_path.exists()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{api.url}/api", ssl=api.ssl_context()) as response:
                assert response.status == 401
            async with session.get(f"{api.url}/version", ssl=api.ssl_context()) as response:
                assert response.status == 200  # public, as with anonymous auth on a cluster
            bad = {"Authorization": "Bearer nope"}
            async with session.get(f"{api.url}/version", ssl=api.ssl_context(), headers=bad) as r:
                assert r.status == 401  # a wrong token is never anonymous
            async with session.get(
                f"{api.url}/api",
                ssl=api.ssl_context(),
                headers={"Authorization": f"Bearer {api.token}"},
            ) as response:
                assert response.status == 200
                assert (await response.json())["versions"] == ["v1"]
        path = api.kubeconfig_path
    assert not path.exists()


@pytest.mark.parametrize("status", [500, 503, 429, 409])
async def test_fault_status(
    emulator: KubeEmulator, http: Http, namespace: str, status: int
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    emulator.faults.add(
        verb="create", resource="configmaps", namespace=namespace, count=2, status=status
    )
    for _ in range(2):
        got, body = await http.post(path, {"metadata": {"name": "x"}})
        assert got == status
        assert body["kind"] == "Status"
    got, _ = await http.post(path, {"metadata": {"name": "x"}})
    assert got == 201


async def test_fault_delay(emulator: KubeEmulator, http: Http, namespace: str) -> None:
    emulator.faults.add(verb="list", resource="configmaps", namespace=namespace, delay=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    got, _ = await http.get(f"/api/v1/namespaces/{namespace}/configmaps")
    assert got == 200
    assert loop.time() - started >= 0.3


async def test_fault_drop(emulator: KubeEmulator, http: Http, namespace: str) -> None:
    # A create, because aiohttp (like client-go) silently retries an idempotent GET once.
    emulator.faults.add(verb="create", resource="configmaps", namespace=namespace, drop=True)
    with pytest.raises(aiohttp.ClientError):
        await http.post(f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "d"}})
    got, _ = await http.get(f"/api/v1/namespaces/{namespace}/configmaps/d")
    assert got == 404  # dropped before any work was done


async def test_watch_history_is_bounded() -> None:
    async with KubeEmulator(watch_history=3) as api, aiohttp.ClientSession() as session:
        endpoint = Endpoint.from_kubeconfig(api.kubeconfig_path)
        http = Http(endpoint, session)
        await http.post("/api/v1/namespaces", {"metadata": {"name": "h"}})
        _, first = await http.post("/api/v1/namespaces/h/configmaps", {"metadata": {"name": "c0"}})
        for n in range(1, 6):
            await http.post("/api/v1/namespaces/h/configmaps", {"metadata": {"name": f"c{n}"}})
        rv = first["metadata"]["resourceVersion"]
        url = f"{endpoint.server}/api/v1/namespaces/h/configmaps?watch=1&resourceVersion={rv}"
        async with session.get(url, headers=endpoint.headers, ssl=endpoint.ssl) as response:
            event = json.loads(await response.content.readline())
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410


async def test_periodic_bookmarks() -> None:
    async with KubeEmulator(bookmark_interval=0.2) as api, aiohttp.ClientSession() as session:
        endpoint = Endpoint.from_kubeconfig(api.kubeconfig_path)
        url = (  # leases: a resource with no objects, so only bookmarks arrive
            f"{endpoint.server}/apis/coordination.k8s.io/v1/leases"
            "?watch=1&allowWatchBookmarks=true&timeoutSeconds=2"
        )
        events: list[dict[str, Any]] = []
        async with session.get(url, headers=endpoint.headers, ssl=endpoint.ssl) as response:
            while len(events) < 2:
                events.append(json.loads(await response.content.readline()))
        assert [e["type"] for e in events] == ["BOOKMARK", "BOOKMARK"]
        assert events[0]["object"]["metadata"]["resourceVersion"]


def test_run_in_thread_serves_synchronous_callers() -> None:
    with KubeEmulator().run_in_thread() as api:
        status, listed = Endpoint.from_kubeconfig(api.kubeconfig_path).call(
            "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles"
        )
        assert status == 200
        assert "cluster-admin" in [i["metadata"]["name"] for i in listed["items"]]


def test_get_cost_does_not_grow_with_requests(
    emulator: KubeEmulator, endpoint: Endpoint, namespace: str
) -> None:
    endpoint.call("POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "p"}})

    def timed(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            endpoint.call("GET", f"/api/v1/namespaces/{namespace}/configmaps/p")
        return (time.perf_counter() - started) / n

    early = timed(50)
    for _ in range(300):
        endpoint.call("GET", f"/api/v1/namespaces/{namespace}/configmaps/p")
    late = timed(50)
    assert late < early * 3 + 0.002, (early, late)


del os
