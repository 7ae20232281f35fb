"""The canary (issue 6 item 11, invariant 1): a distinctive secret value goes through success and
every failure path, and never appears in the operator's log output (sealed_gitops, kopf and root
loggers at DEBUG, tracebacks included), in Events, in the Sync's status or in an error."""

from __future__ import annotations

import base64
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pyrage
import pytest

from sealed_gitops.testing import KubeEmulator

from .conftest import Setup, decoded, is_ready, wait_failed, wait_for
from .manifests import secret_doc

pytestmark = pytest.mark.e2e

_MAC = re.compile(r"(mac: ENC\[AES256_GCM,data:)(.)")


def _tamper_mac(text: str) -> str:
    return _MAC.sub(lambda m: m.group(1) + ("A" if m.group(2) != "A" else "B"), text, count=1)


def _good(setup: Setup, canary: str) -> str:
    return setup.encrypt(secret_doc("db", setup.namespace, password=canary))


def _bad_mac(setup: Setup, canary: str) -> str:
    return _tamper_mac(_good(setup, canary))


def _wrong_key(setup: Setup, canary: str) -> str:
    other = Setup(**{**setup.__dict__,
                     "recipient": str(pyrage.x25519.Identity.generate().to_public())})
    return other.encrypt(secret_doc("db", setup.namespace, password=canary))


def _not_base64(setup: Setup, canary: str) -> str:
    doc = secret_doc("db", setup.namespace)
    del doc["stringData"]
    doc["data"] = {"password": f"{canary} is not base64!"}
    return setup.encrypt(doc)


Case = Callable[[Setup, str], str]


def _leaks(canary: str, texts: dict[str, str]) -> list[str]:
    forms = {canary, base64.b64encode(canary.encode()).decode()}
    return [where for where, text in texts.items() if any(f in text for f in forms)]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(_good, None, id="success"),
        pytest.param(_bad_mac, "DecryptionFailed", id="bad-mac"),
        pytest.param(_wrong_key, "DecryptionFailed", id="wrong-key"),
        pytest.param(_not_base64, "ApplyFailed", id="invalid-after-decryption"),
    ],
)
def test_the_canary_never_leaks(
    setup: Setup, operator_factory: Any, caplog: pytest.LogCaptureFixture, make: Case,
    reason: str | None,
) -> None:
    for name in (None, "sealed_gitops", "kopf"):
        caplog.set_level(logging.DEBUG, logger=name)
    canary = f"canary-{uuid.uuid4().hex}-value"
    setup.push({"deploy/db.yaml": make(setup, canary)})
    setup.objects()
    thread = operator_factory(setup.namespace)
    if reason is None:
        wait_for(lambda: decoded(setup.kube.secret("db") or {}).get("password") == canary,
                 what="canary applied")
        wait_for(lambda: is_ready(setup.kube.sync()), what="Ready=True")
    else:
        cond = wait_failed(setup.kube)
        assert cond["reason"] == reason, cond
        assert "deploy/db.yaml" in cond["message"] or "/db" in cond["message"], cond
        time.sleep(1.5)  # a few retries log their lines too
    _assert_no_leak(setup, thread, caplog, canary)


def test_the_canary_survives_an_api_error(
    setup: Setup, operator_factory: Any, caplog: pytest.LogCaptureFixture,
    emulator: KubeEmulator,
) -> None:
    for name in (None, "sealed_gitops", "kopf"):
        caplog.set_level(logging.DEBUG, logger=name)
    canary = f"canary-{uuid.uuid4().hex}-value"
    emulator.faults.add(verb="patch", resource="secrets", namespace=setup.namespace, count=2,
                        status=422)
    setup.push({"deploy/db.yaml": _good(setup, canary)})
    setup.objects()
    thread = operator_factory(setup.namespace)
    cond = wait_failed(setup.kube)
    assert cond["reason"] == "ApplyFailed" and "422" in cond["message"], cond
    wait_for(lambda: decoded(setup.kube.secret("db") or {}).get("password") == canary,
             what="applied once the faults end")
    _assert_no_leak(setup, thread, caplog, canary)


def _assert_no_leak(
    setup: Setup, thread: Any, caplog: pytest.LogCaptureFixture, canary: str
) -> None:
    # The emulator (the API server) runs in this process too; its lines are not the operator's.
    operator_lines = "\n".join(
        logging.Formatter("%(name)s %(message)s").format(r)
        for r in caplog.records
        if not r.name.startswith("sealed_gitops.testing")
    )
    assert caplog.records, "no log output was captured"
    texts = {
        "logs": operator_lines,
        "events": str(setup.kube.events()),
        "status": str(setup.kube.sync()),
        "repository": str(setup.kube.repository()),
        "error": repr(thread.error),
    }
    assert _leaks(canary, texts) == []
