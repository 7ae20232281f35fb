"""The metrics the alerts of ``deploy/monitoring/`` read: what is wrong now, not how much was done.

Why apart from :mod:`metrics`: the counters there say what the operator did (reconciles, unwraps,
applies). An alert needs the state of each object: a Sync that is not Ready, a Sync whose files
cannot be decrypted, a KeyRing whose active key is older than its rotation interval, webhook
deliveries that were refused for their signature. Each series names an object (namespace and
name), never a value (invariant 1); the series of a deleted object are removed, so an alert does
not keep firing for a Sync or KeyRing that is gone.

Why a key's age and not a timestamp: the operator rotates when the active key falls due, so a key
past its rotation time means rotation keeps failing (Vault unreachable, the key store refusing a
write). The age is computed when Prometheus scrapes, from the creation time of the active key the
last successful KeyRing pass saw; while the passes fail, that key's age keeps growing, which is
exactly the signal. (An age also keeps rule tests independent of the wall clock.)

Why the webhook counter starts every result at 0, and the decryption counter of a Sync at its
first status: ``increase()`` cannot see the step of a series that appears with its first value
already counted, so a counter is made to exist before the first failure it counts.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["KEY_STATES", "WEBHOOK_RESULTS", "StateMetrics", "webhook_result"]

#: The states a KeyRing's key is counted in (``keys/cluster_keys.KeyState``), always all three.
KEY_STATES = ("active", "previous", "retired")
#: Every ``result`` of ``sealed_gitops_webhook_requests_total``, by the receiver's answer.
WEBHOOK_RESULTS = (
    "accepted",  # 202: the Repository was asked to reconcile
    "duplicate",  # 200: a delivery already acted on
    "ping",  # 200: the host's test event
    "invalid_signature",  # 401: missing, malformed or wrong signature or token
    "not_found",  # 404: not a Repository name
    "too_large",  # 413: a body larger than a push
    "rate_limited",  # 429
    "unrecorded",  # 503: verified, but the request could not be recorded on the Repository
    "other",
)
_BY_STATUS = {
    202: "accepted",
    401: "invalid_signature",
    404: "not_found",
    413: "too_large",
    429: "rate_limited",
    503: "unrecorded",
}
_BY_ANSWER = {"duplicate": "duplicate", "pong": "ping"}


def webhook_result(status: int, body: bytes | None) -> str:
    """The ``result`` label of one answer of the webhook receiver (its status, its JSON body)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status == 200 and body:
        try:
            answer = json.loads(body)
        except ValueError:
            return "other"
        if isinstance(answer, dict):
            return _BY_ANSWER.get(str(answer.get("status")), "other")
    return "other"


@dataclass(frozen=True)
class _KeyRingState:
    #: creation of the active key, seconds since the epoch
    active_created: float
    #: spec.rotationInterval in seconds; 0: no scheduled rotation
    interval: float
    states: Mapping[str, int]


class _KeyRingCollector(Collector):
    """The KeyRing gauges, computed at scrape time from what the last passes saw."""

    def __init__(self, owner: StateMetrics) -> None:
        self._owner = owner

    def collect(self) -> Iterator[GaugeMetricFamily]:
        keyrings = self._owner.keyrings()
        now = self._owner.clock()
        labels = ["namespace", "keyring"]
        age = GaugeMetricFamily(
            "sealed_gitops_keyring_active_key_age_seconds",
            "Age of the KeyRing's active key as its last successful pass saw it, at scrape time.",
            labels=labels,
        )
        interval = GaugeMetricFamily(
            "sealed_gitops_keyring_rotation_interval_seconds",
            "The KeyRing's spec.rotationInterval (0: no scheduled rotation).",
            labels=labels,
        )
        keys = GaugeMetricFamily(
            "sealed_gitops_keyring_keys",
            "Keys of the KeyRing by state (active, previous, retired); deleted keys are gone.",
            labels=[*labels, "state"],
        )
        for (namespace, name), state in sorted(keyrings.items()):
            age.add_metric([namespace, name], max(now - state.active_created, 0.0))
            interval.add_metric([namespace, name], state.interval)
            for key_state in KEY_STATES:
                keys.add_metric([namespace, name, key_state], float(state.states.get(key_state, 0)))
        yield age
        yield interval
        yield keys


class StateMetrics:
    """Per-object state for alerts, registered in one operator's registry."""

    def __init__(
        self, registry: CollectorRegistry, *, clock: Callable[[], float] = time.time
    ) -> None:
        #: seconds since the epoch (injected by tests)
        self.clock = clock
        self.sync_ready = Gauge(
            "sealed_gitops_sync_ready",
            "1 when the Sync's Ready condition is True, 0 when it is False (for any reason, "
            "Progressing included), as its last reconcile wrote it.",
            ["namespace", "name"],
            registry=registry,
        )
        self.decryption_failures = Counter(
            "sealed_gitops_sync_decryption_failures",
            "Files a Sync's reconcile could not decrypt (a key it lacks, a MAC failure, tampered "
            "ciphertext, a key provider that failed). Atomic stops at the first: one per failed "
            "reconcile; Isolate counts every file it left out.",
            ["namespace", "name"],
            registry=registry,
        )
        self.webhook_requests = Counter(
            "sealed_gitops_webhook_requests",
            "Deliveries to the webhook receiver by result (invalid_signature: refused for a "
            "missing, malformed or wrong signature or token).",
            ["result"],
            registry=registry,
        )
        for result in WEBHOOK_RESULTS:
            self.webhook_requests.labels(result=result)
        self._lock = threading.Lock()
        self._keyrings: dict[tuple[str, str], _KeyRingState] = {}
        registry.register(_KeyRingCollector(self))

    # -- Syncs ------------------------------------------------------------------------------

    def sync_status(
        self, namespace: str, name: str, *, ready: bool, decryption_failures: int = 0
    ) -> None:
        """What one Sync reconcile wrote: its Ready condition, and how many of its files it
        could not decrypt."""
        self.sync_ready.labels(namespace=namespace, name=name).set(1.0 if ready else 0.0)
        counter = self.decryption_failures.labels(namespace=namespace, name=name)
        if decryption_failures:
            counter.inc(decryption_failures)

    def forget_sync(self, namespace: str, name: str) -> None:
        """Remove a deleted Sync's series."""
        for metric in (self.sync_ready, self.decryption_failures):
            try:
                metric.remove(namespace, name)
            except KeyError:
                continue  # never reconciled by this process

    # -- KeyRings ---------------------------------------------------------------------------

    def keyring_status(
        self,
        namespace: str,
        name: str,
        *,
        active_created: dt.datetime,
        interval: float,
        states: Mapping[str, int],
    ) -> None:
        """What one successful KeyRing pass saw: its active key's creation, its rotation
        interval (seconds, 0 for none) and how many keys are in each state."""
        state = _KeyRingState(active_created.timestamp(), interval, dict(states))
        with self._lock:
            self._keyrings[(namespace, name)] = state

    def forget_keyring(self, namespace: str, name: str) -> None:
        with self._lock:
            self._keyrings.pop((namespace, name), None)

    def keyrings(self) -> dict[tuple[str, str], _KeyRingState]:
        with self._lock:
            return dict(self._keyrings)

    # -- the webhook receiver ---------------------------------------------------------------

    def webhook_answered(self, status: int, body: bytes | None) -> None:
        self.webhook_requests.labels(result=webhook_result(status, body)).inc()
