"""Sync reconciles take turns: at most ``concurrent_syncs`` run at once (Flux's ``--concurrent``).

Why (settings.concurrent_syncs): each running reconcile holds its build's passing memory; the
operator's peak RSS at 20,000 objects in 100 Syncs was about 16 MB lower with three at once than
with the six the worker-thread pool allowed. These tests show the limit holds, is reached (the
check can see concurrency), and that every Sync still gets its turn.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any

import pytest

from sealed_gitops.operator import handlers
from sealed_gitops.operator import sync as sync_module
from sealed_gitops.operator.settings import OperatorSettings

from .conftest import Setup, is_ready, wait_for
from .manifests import config_doc

SYNCS = ("one", "two", "three")


def _ready(setup: Setup, name: str) -> bool:
    return is_ready(setup.kube.sync(name))


def test_the_default_is_a_few_at_once() -> None:
    assert 1 <= OperatorSettings().concurrent_syncs <= 4


@pytest.mark.e2e
@pytest.mark.parametrize("limit", [1, 2])
def test_at_most_the_limit_of_sync_reconciles_run_at_once(
    setup: Setup, operator_factory: Any, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    lock = threading.Lock()
    running: list[str] = []
    most = 0
    reconciled: set[str] = set()
    real = sync_module.reconcile_sync

    def counted(ctx: Any, body: dict[str, Any]) -> Any:
        nonlocal most
        name = body["metadata"]["name"]
        with lock:
            running.append(name)
            most = max(most, len(running))
        try:
            time.sleep(0.5)  # long enough for the other loops to overlap if they may
            return real(ctx, body)
        finally:
            with lock:
                running.remove(name)
                reconciled.add(name)

    # the reconcile loops run in this process (the operator's thread), through handlers' name
    monkeypatch.setattr(handlers, "reconcile_sync", counted)
    ns = setup.namespace
    setup.push({f"{n}/cm.yaml": config_doc(f"cm-{n}", ns, level=n) for n in SYNCS})
    setup.objects(interval="30s", extra_spec={"path": "./one"})  # the Sync "app" and its Repository
    for n in SYNCS[1:]:
        setup.kube.create(
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Sync",
                "metadata": {"name": n, "namespace": ns},
                "spec": {"repositoryRef": {"name": "app"}, "path": f"./{n}", "interval": "30s"},
            }
        )
    operator_factory(ns, concurrent_syncs=limit)
    for n in ("app", *SYNCS[1:]):
        wait_for(partial(_ready, setup, n), timeout=120, what=f"Sync {n} Ready")
    assert reconciled == {"app", *SYNCS[1:]}
    assert most == limit  # never more; and reached, so the count would see more
