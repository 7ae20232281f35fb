"""The operator's API requests as a Prometheus counter: how many reads and writes it sends.

Why: "a no-op interval costs N reads and 0 writes" must be checkable on any cluster, from the
outside, without an audit log: ``benchmarks/scale.py`` reads this from ``/metrics`` before and
after an interval. The client already counts every request it sends, by HTTP method
(``KubeClient.counts``, shared with its impersonating copies); this exposes that dict at scrape
time instead of incrementing a second counter on the hot path. Not counted: kopf's own watch
streams (opened once, long-lived) and the clients of remote clusters (``spec.kubeConfig``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = ["WRITE_METHODS", "register_request_counter"]

#: The HTTP methods that change something on the API server (the rest are reads: GET, HEAD).
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _RequestCollector(Collector):
    def __init__(self, counts: Mapping[str, int]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "sealed_gitops_api_requests",
            "API requests the operator's reconciles sent, by HTTP method and whether it writes.",
            labels=["method", "kind"],
        )
        # a copy: reconcile threads add methods to the dict while it is scraped
        for method, count in sorted(dict(self._counts).items()):
            kind = "write" if method in WRITE_METHODS else "read"
            family.add_metric([method, kind], float(count))
        yield family


def register_request_counter(registry: CollectorRegistry, counts: Mapping[str, int]) -> None:
    """Expose ``counts`` (method -> requests sent so far) in ``registry``."""
    registry.register(_RequestCollector(counts))
