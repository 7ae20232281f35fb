"""The two counters benchmarks/scale.py reads from ``/metrics`` (issue 16, Must 4): SOPS files
really opened (``sealed_gitops_sops_files_decrypted_total``) and the API requests the reconciles
sent (``sealed_gitops_api_requests_total`` by method and read/write).

Why they are tested on their own: the benchmark's "no-op interval: 0 writes, 0 decryptions" is
only as true as these counters; here each must move when work happens (a first build opens every
file, a one-file commit opens one, a reconcile reads) and stay still when it does not.
"""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from sealed_gitops.operator.metrics import Metrics
from sealed_gitops.operator.request_metrics import register_request_counter
from sealed_gitops.render.cache import ContentCache

from .conftest import Setup, decoded, is_ready, wait_for
from .manifests import config_doc, secret_doc

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return _parse(answer.read().decode())


def _sum(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and wanted <= set(lab))


def test_request_counter_reads_the_clients_counts_at_scrape_time() -> None:
    metrics = Metrics()
    counts: dict[str, int] = {"GET": 3}
    register_request_counter(metrics.registry, counts)
    counts["PATCH"] = 2  # added after registration: the scrape sees the live dict
    counts["DELETE"] = 1
    samples = _parse(metrics.exposition().decode())
    assert _sum(samples, "sealed_gitops_api_requests_total", kind="read") == 3
    assert _sum(samples, "sealed_gitops_api_requests_total", kind="write") == 3
    assert _sum(samples, "sealed_gitops_api_requests_total", method="PATCH", kind="write") == 2


def test_request_counter_is_per_registry() -> None:
    one, two = CollectorRegistry(), CollectorRegistry()
    register_request_counter(one, {"GET": 1})
    register_request_counter(two, {"GET": 5})
    assert one.get_sample_value("sealed_gitops_api_requests_total",
                                {"method": "GET", "kind": "read"}) == 1  # fmt: skip
    assert two.get_sample_value("sealed_gitops_api_requests_total",
                                {"method": "GET", "kind": "read"}) == 5  # fmt: skip


def test_content_cache_counts_computed_results_by_what_not_hits() -> None:
    cache = ContentCache()
    assert cache.get_or_compute("decrypted", "a.yaml", b"one", lambda: 1) == 1
    assert cache.get_or_compute("decrypted", "a.yaml", b"one", lambda: 2) == 1  # a hit
    assert cache.get_or_compute("parsed", "a.yaml", b"one", lambda: 3) == 3
    assert cache.get_or_compute("decrypted", "a.yaml", b"two", lambda: 4) == 4  # new bytes
    assert cache.computed == {"decrypted": 2, "parsed": 1}


@pytest.mark.e2e
def test_noop_reconciles_open_no_file_and_write_nothing_and_one_change_opens_one(
    setup: Setup, operator_factory: Any
) -> None:
    ns = setup.namespace
    setup.push(
        {
            "deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="scale-one")),
            "deploy/api.yaml": setup.encrypt(secret_doc("api", ns, password="scale-two")),
            "deploy/cm.yaml": config_doc("settings", ns, level="info"),
        }
    )
    setup.objects(interval="1s")
    thread = operator_factory(ns)
    port = thread.ports.metrics
    wait_for(lambda: is_ready(setup.kube.sync()), timeout=120, what="first reconcile Ready")
    syncs = "sealed_gitops_reconcile_total"

    def after_reconciles(count: int, since: Samples) -> Samples:
        base = _sum(since, syncs, kind="Sync")
        found: Samples = wait_for(
            lambda: (m := _scrape(port)) and _sum(m, syncs, kind="Sync") >= base + count and m,
            timeout=120,
            what=f"{count} more Sync reconciles",
        )
        return found

    # two reconciles after Ready: the status has settled (Ready is written once)
    settled = after_reconciles(2, _scrape(port))
    assert _sum(settled, "sealed_gitops_sops_files_decrypted_total") == 2
    assert _sum(settled, "sealed_gitops_api_requests_total", kind="write") > 0  # the first apply
    later = after_reconciles(3, settled)
    for name, kind in (("sealed_gitops_sops_files_decrypted_total", None),
                       ("sealed_gitops_api_requests_total", "write")):  # fmt: skip
        labels = {"kind": kind} if kind else {}
        assert _sum(later, name, **labels) == _sum(settled, name, **labels), name
    assert _sum(later, "sealed_gitops_api_requests_total", kind="read") > _sum(
        settled, "sealed_gitops_api_requests_total", kind="read"
    )

    setup.push({"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="scale-three"))})
    wait_for(
        lambda: decoded(setup.kube.secret("db") or {}).get("password") == "scale-three",
        timeout=120,
        what="the changed Secret",
    )
    # the unchanged file is served from the Sync's content cache: one more file opened
    changed = _scrape(port)
    assert _sum(changed, "sealed_gitops_sops_files_decrypted_total") == 3
