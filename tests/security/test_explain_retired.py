"""explain_retired reads a KeyRing's status, which others can write: what reaches a Sync's."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sealed_gitops.errors import ClusterError, NoMatchingKey
from sealed_gitops.operator import keyring_access
from sealed_gitops.operator.specs import KeyRingRef

RECIPIENT = "age1" + "q" * 58
REF = KeyRingRef("team", "ring", cross_namespace=False)
CTX: Any = SimpleNamespace(client=None)


def _explain(monkeypatch: pytest.MonkeyPatch, keys: Any) -> NoMatchingKey:
    keyring = {"status": {"keys": keys}}
    monkeypatch.setattr(keyring_access, "get_object", lambda *_: keyring)
    exc = NoMatchingKey(f"no available key: encrypted for {RECIPIENT}", file="a.sops.yaml")
    return keyring_access.explain_retired(CTX, REF, exc)


def test_a_forged_retired_time_does_not_reach_the_status(monkeypatch: pytest.MonkeyPatch) -> None:
    forged = "2026-01-01T00:00:00Z\nReady: True " + "x" * 100_000
    key = {"state": "retired", "ageRecipient": RECIPIENT, "fingerprint": "ab" * 20}
    key["retired"] = forged
    found = _explain(monkeypatch, [key, "not a mapping"])
    assert "was retired at an unknown time" in found.reason
    assert "\n" not in found.reason and len(found.reason) < 1000


def test_a_well_formed_time_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    key = {"state": "retired", "ageRecipient": RECIPIENT, "retired": "2026-01-01T00:00:00Z"}
    assert "was retired at 2026-01-01T00:00:00Z" in _explain(monkeypatch, [key]).reason


def test_an_api_error_keeps_the_original_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: Any) -> None:
        raise ClusterError("API down")

    monkeypatch.setattr(keyring_access, "get_object", fail)
    exc = NoMatchingKey("no available key")
    assert keyring_access.explain_retired(CTX, REF, exc) is exc
