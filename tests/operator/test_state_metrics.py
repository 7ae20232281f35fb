"""The per-object metrics the alerts read (operator/state_metrics.py), without a cluster: what each
call exposes, that a deleted object's series go away, that a key's age is taken at scrape time,
and how each answer of the webhook receiver is counted."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sealed_gitops.operator.metrics import Metrics
from sealed_gitops.operator.state_metrics import WEBHOOK_RESULTS, StateMetrics, webhook_result

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(registry: CollectorRegistry) -> Samples:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _names(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


def test_sync_ready_and_decryption_failures_per_sync_and_forgotten() -> None:
    registry = CollectorRegistry()
    state = StateMetrics(registry)
    state.sync_status("team-a", "app", ready=True)
    state.sync_status("team-b", "web", ready=False, decryption_failures=2)
    state.sync_status("team-b", "web", ready=False, decryption_failures=1)
    samples = _samples(registry)
    assert _names(samples, "sealed_gitops_sync_ready") == {
        (("name", "app"), ("namespace", "team-a")): 1.0,
        (("name", "web"), ("namespace", "team-b")): 0.0,
    }
    # the healthy Sync's counter exists at 0, so increase() sees its first failure
    assert _names(samples, "sealed_gitops_sync_decryption_failures_total") == {
        (("name", "app"), ("namespace", "team-a")): 0.0,
        (("name", "web"), ("namespace", "team-b")): 3.0,
    }
    state.forget_sync("team-b", "web")
    state.forget_sync("team-c", "never-seen")
    after = _samples(registry)
    assert set(_names(after, "sealed_gitops_sync_ready")) == {
        (("name", "app"), ("namespace", "team-a"))
    }
    assert set(_names(after, "sealed_gitops_sync_decryption_failures_total")) == {
        (("name", "app"), ("namespace", "team-a"))
    }


def test_key_age_is_taken_when_scraped() -> None:
    registry = CollectorRegistry()
    created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    now = [created.timestamp() + 100.0]
    state = StateMetrics(registry, clock=lambda: now[0])
    state.keyring_status(
        "keys",
        "cluster",
        active_created=created,
        interval=3600.0,
        states={"active": 1, "retired": 2},
    )
    labels = (("keyring", "cluster"), ("namespace", "keys"))
    samples = _samples(registry)
    assert samples[("sealed_gitops_keyring_active_key_age_seconds", labels)] == 100.0
    assert samples[("sealed_gitops_keyring_rotation_interval_seconds", labels)] == 3600.0
    assert _names(samples, "sealed_gitops_keyring_keys") == {
        (*labels, ("state", "active")): 1.0,
        (*labels, ("state", "previous")): 0.0,
        (*labels, ("state", "retired")): 2.0,
    }
    now[0] += 7200.0  # no pass since: the same key, two hours older
    assert _samples(registry)[("sealed_gitops_keyring_active_key_age_seconds", labels)] == 7300.0
    state.forget_keyring("keys", "cluster")
    assert not _names(_samples(registry), "sealed_gitops_keyring_active_key_age_seconds")


@pytest.mark.parametrize(
    ("status", "body", "result"),
    [
        (202, b'{"status": "accepted"}', "accepted"),
        (200, b'{"status": "duplicate"}', "duplicate"),
        (200, b'{"status": "pong"}', "ping"),
        (401, b'{"error": "invalid signature"}', "invalid_signature"),
        (404, b'{"error": "not found"}', "not_found"),
        (413, None, "too_large"),
        (429, b'{"error": "too many requests"}', "rate_limited"),
        (503, b'{"error": "not recorded, deliver again"}', "unrecorded"),
        (200, b"not json", "other"),
        (200, b'["a list"]', "other"),
        (500, None, "other"),
    ],
)
def test_webhook_result_of_each_answer(status: int, body: bytes | None, result: str) -> None:
    assert webhook_result(status, body) == result
    assert result in WEBHOOK_RESULTS


def test_every_webhook_result_exists_from_the_start_and_counts() -> None:
    metrics = Metrics()
    counts = _names(_samples(metrics.registry), "sealed_gitops_webhook_requests_total")
    assert counts == {(("result", r),): 0.0 for r in WEBHOOK_RESULTS}
    metrics.state.webhook_answered(401, b'{"error": "invalid signature"}')
    metrics.state.webhook_answered(401, b'{"error": "invalid signature"}')
    counts = _names(_samples(metrics.registry), "sealed_gitops_webhook_requests_total")
    assert counts[(("result", "invalid_signature"),)] == 2.0
    assert sum(counts.values()) == 2.0
