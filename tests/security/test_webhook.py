"""Issue 11, finding 11 (the webhook) and the webhook-path part of finding 1.

A webhook caller is anyone who can reach the operator's webhook port: it knows no secret. What it
tried, and what it must get now, against a running operator on the emulator:

* a malformed (non-ASCII) signature: before, 500 for an existing Repository and 401 otherwise,
  an oracle of which Repositories exist; now 401 for both;
* the same signed delivery replayed 10 times: before, 20 API writes; now the first one counts and
  the others are dropped (same delivery id, or same signed body under another id);
* a flood of signed deliveries: a per-Repository rate limit answers 429;
* ``/hook/<ns>/x%2F..%2Fapp`` and other names Kubernetes would not admit: 404 without any API
  request;
* a body over the size limit: 413 without any API request.

API requests are counted with the emulator's own request hooks (a rule that delays by a
microsecond is consumed by each matching request and changes nothing else).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import time
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealed_gitops.operator.webhook import MAX_BODY, SIGNATURE_HEADER, sign
from sealed_gitops.operator.webhook_auth import credential_of
from sealed_gitops.operator.webhook_guard import DeliveryLog, RateLimits, TtlCache
from sealed_gitops.testing import KubeEmulator
from tests.operator.conftest import (
    Setup,
    wait_for,
)
from tests.operator.manifests import secret_doc

HOOK_TOKEN = b"webhook-hmac-secret-sec11"
_MANY = 100_000


def _post(
    port: int, path: str, body: bytes, *, signature: bytes | None, delivery: str | None = None
) -> int:
    """A raw POST (http.client, so header bytes go out exactly as given)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.putrequest("POST", path, skip_accept_encoding=True)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("X-GitHub-Event", "push")
        conn.putheader("Content-Length", str(len(body)))
        if signature is not None:
            conn.putheader(SIGNATURE_HEADER, signature)
        if delivery is not None:
            conn.putheader("X-GitHub-Delivery", delivery)
        conn.endheaders(body)
        return conn.getresponse().status
    except (ConnectionResetError, BrokenPipeError):
        return -1  # the server closed a connection whose body it refused to read
    finally:
        conn.close()


def _signed(body: bytes) -> bytes:
    return sign(HOOK_TOKEN, body).encode()


def _serve(setup: Setup, operator_factory: Any, **settings: Any) -> Any:
    """A Repository ``app`` polling hourly with a webhook secret, its first revision applied."""
    doc = secret_doc("db", setup.namespace, password="first")
    setup.push({"deploy/db.yaml": setup.encrypt(doc)})
    setup.secret_object("hook", {"token": HOOK_TOKEN})
    setup.objects(interval="1h", repository_spec={"webhook": {"secretRef": {"name": "hook"}}})
    thread = operator_factory(setup.namespace, **settings)
    wait_for(
        lambda: (setup.kube.repository().get("status") or {}).get("artifact"),
        what="first revision",
    )
    time.sleep(1.0)  # let the first reconciles settle before requests are counted
    return thread


class Counter:
    """Counts the emulator requests matching one rule from now on."""

    def __init__(self, emulator: KubeEmulator, **match: Any) -> None:
        self.emulator = emulator
        emulator.faults.clear()
        emulator.faults.add(count=_MANY, delay=1e-6, **match)

    def seen(self) -> int:
        return _MANY - self.emulator.faults.pending()


NON_ASCII = {
    "utf8-in-hex": b"sha256=" + "\u00e9".encode() * 32,
    "latin1-byte": b"sha256=\xff" + b"0" * 63,
    "non-ascii-prefix": "sh\u00e4256=".encode() + b"0" * 64,
    # (control characters never reach the receiver: aiohttp's parser answers 400 for any path)
}
MALFORMED = {
    **NON_ASCII,
    "short": b"sha256=abc",
    "uppercase-hex": b"sha256=" + b"A" * 64,
    "empty": b"",
    "huge": b"sha256=" + b"0" * 4000,
}


@pytest.mark.e2e
def test_every_malformed_signature_gets_401_whether_or_not_the_repository_exists(
    setup: Setup, operator_factory: Any, emulator: KubeEmulator
) -> None:
    thread = _serve(setup, operator_factory)
    ns, port = setup.namespace, thread.ports.webhook
    body = b'{"ref": "refs/heads/main"}'
    writes = Counter(emulator, verb="patch", resource="repositories", namespace=ns)
    answers = {
        (what, repo): _post(port, f"/hook/{ns}/{repo}", body, signature=signature)
        for what, signature in MALFORMED.items()
        for repo in ("app", "nope")
    }
    assert answers == dict.fromkeys(answers, 401)
    # the valid signature still works, so the 401s above are about the signature alone
    assert _post(port, f"/hook/{ns}/app", body, signature=_signed(body)) == 202
    wait_for(lambda: writes.seen() >= 1, what="the accepted push recorded")


@pytest.mark.e2e
def test_a_replayed_delivery_is_acted_on_once(
    setup: Setup, operator_factory: Any, emulator: KubeEmulator
) -> None:
    thread = _serve(setup, operator_factory)
    ns, port = setup.namespace, thread.ports.webhook
    body = b'{"ref": "refs/heads/main", "after": "%s"}' % uuid.uuid4().hex.encode()
    delivery = str(uuid.uuid4())
    writes = Counter(emulator, verb="patch", resource="repositories", namespace=ns, name="app")
    assert _post(port, f"/hook/{ns}/app", body, signature=_signed(body), delivery=delivery) == 202
    wait_for(lambda: writes.seen() >= 2, what="the annotation and the reconcile's status")
    time.sleep(2.0)
    once = writes.seen()  # what one delivery costs: the annotation, then the reconcile's status

    answers = [
        _post(port, f"/hook/{ns}/app", body, signature=_signed(body), delivery=delivery)
        for _ in range(10)
    ]
    # the same signed body under a fresh delivery id is the same delivery, replayed
    answers.append(
        _post(port, f"/hook/{ns}/app", body, signature=_signed(body), delivery=str(uuid.uuid4()))
    )
    assert answers == [200] * 11, answers
    time.sleep(3.0)  # what the replays would have caused has had time to happen
    assert writes.seen() == once, (once, writes.seen())
    # a new delivery (another push) is still taken
    other = b'{"ref": "refs/heads/main", "after": "%s"}' % uuid.uuid4().hex.encode()
    assert _post(port, f"/hook/{ns}/app", other, signature=_signed(other), delivery="x-2") == 202


@pytest.mark.e2e
def test_a_flood_of_signed_deliveries_is_rate_limited_per_repository(
    setup: Setup, operator_factory: Any, emulator: KubeEmulator
) -> None:
    thread = _serve(setup, operator_factory)
    ns, port = setup.namespace, thread.ports.webhook
    writes = Counter(emulator, verb="patch", resource="repositories", namespace=ns, name="app")
    answers = []
    for i in range(40):
        body = b'{"ref": "refs/heads/main", "n": %d}' % i
        answers.append(_post(port, f"/hook/{ns}/app", body, signature=_signed(body)))
    assert 429 in answers, answers
    accepted = answers.count(202)
    assert 1 <= accepted <= 12, answers  # the burst (10), and what refilled meanwhile
    time.sleep(2.0)
    # each accepted delivery: one annotation, and the status writes of at most one reconcile
    assert writes.seen() <= 3 * accepted


HOSTILE_PATHS = [
    "/hook/{ns}/x%2F..%2Fapp",
    "/hook/{ns}/..%2Fapp",
    "/hook/{ns}/%2E%2E",
    "/hook/{ns}/App",
    "/hook/{ns}/" + "a" * 254,
    "/hook/{ns}/app%00",
    "/hook/{ns}%2F..%2F{ns}/app",
    "/hook/Not_A_Namespace/app",
    "/hook/" + "n" * 64 + "/app",
]


@pytest.mark.e2e
def test_a_hostile_webhook_path_is_refused_before_any_api_request(
    setup: Setup, operator_factory: Any, emulator: KubeEmulator
) -> None:
    thread = _serve(setup, operator_factory)
    ns, port = setup.namespace, thread.ports.webhook
    body = b'{"ref": "refs/heads/main"}'
    reads = Counter(emulator, verb="get", namespace=ns)
    answers = {
        path: _post(port, path.format(ns=ns), body, signature=_signed(body))
        for path in HOSTILE_PATHS
    }
    assert all(code in (400, 404) for code in answers.values()), answers
    assert reads.seen() == 0


@pytest.mark.e2e
def test_an_oversized_body_is_refused_before_any_api_request(
    setup: Setup, operator_factory: Any, emulator: KubeEmulator
) -> None:
    thread = _serve(setup, operator_factory)
    ns, port = setup.namespace, thread.ports.webhook
    body = b"{" + b" " * (MAX_BODY + 1) + b"}"
    reads = Counter(emulator, verb="get", resource="secrets", namespace=ns)
    assert _post(port, f"/hook/{ns}/app", body, signature=_signed(body)) in (413, -1)
    assert reads.seen() == 0


# --- the receiver's memory is bounded, whatever a caller sends (no cluster needed) ---


class FakeClock:
    """Time the test moves by hand (the guard takes a clock, so no sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_delivery_memory_stays_bounded_and_forgets_after_its_ttl() -> None:
    clock = FakeClock()
    log = DeliveryLog(size=64, ttl=60.0, clock=clock)
    for i in range(10_000):
        log.claim(("delivery", "ns", "app", str(i)))
    assert len(log) == 64
    assert log.seen(("delivery", "ns", "app", "9999"))
    assert not log.seen(("delivery", "ns", "app", "0"))  # evicted, least recently used first
    clock.now += 61
    assert not log.seen(("delivery", "ns", "app", "9999"))
    log.claim(("k",))
    log.release(("k",))
    assert not log.seen(("k",))


def test_rate_limits_allow_a_burst_then_refill_and_stay_bounded() -> None:
    clock = FakeClock()
    limits = RateLimits(capacity=3, rate=0.5, size=16, clock=clock)
    assert [limits.take(("ns", "app")) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limits.take(("ns", "app"))
    assert wait == pytest.approx(2.0)  # one token every 2 s
    assert limits.take(("ns", "other")) == 0.0  # per Repository
    clock.now += 2.0
    assert limits.take(("ns", "app")) == 0.0
    for i in range(5000):
        limits.take(("ns", f"r{i}"))
    assert len(limits) == 16


def test_secret_cache_stays_bounded() -> None:
    clock = FakeClock()
    cache: TtlCache[str, bytes | None] = TtlCache(size=8, ttl=5.0, clock=clock)
    for i in range(1000):
        cache.put(str(i), None)
    assert len(cache) == 8 and cache.get("999") == (True, None)
    clock.now += 5.0
    assert cache.get("999") == (False, None)


def _hmac_shape(text: str, *, prefix: str) -> bool:
    return (
        text.startswith(prefix)
        and len(text) == len(prefix) + 64
        and all(c in "0123456789abcdef" for c in text[len(prefix) :])
    )


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=200),
    st.sampled_from(
        ["X-Hub-Signature-256", "X-Gitea-Signature", "X-Hub-Signature", "X-Gitlab-Token"]
    ),
)
def test_any_signature_text_is_judged_without_raising(text: str, header: str) -> None:
    """Fuzz each host's header check: any text (non-ASCII, surrogates, controls) gives a
    verdict, and only the host's exact shape is accepted: ``sha256=<64 lowercase hex>``, 64
    lowercase hex for Gitea's own header, printable ASCII for GitLab's token."""
    credential = credential_of({header: text})
    if header == "X-Gitea-Signature":
        expected = _hmac_shape(text, prefix="")
    elif header == "X-Gitlab-Token":
        expected = 0 < len(text) <= 256 and all("!" <= c <= "~" for c in text)
    else:
        expected = _hmac_shape(text, prefix="sha256=")
    assert (credential is not None) == expected
    if credential is not None:
        digest = hmac.new(HOOK_TOKEN, b"{}", hashlib.sha256).hexdigest()
        right = {"X-Gitea-Signature": digest, "X-Gitlab-Token": HOOK_TOKEN.decode()}.get(
            header, f"sha256={digest}"
        )
        assert credential.verify(HOOK_TOKEN, b"{}") is (text == right)
