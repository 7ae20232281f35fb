"""The operator gives the C allocator's free pages back after a reconcile that wrote objects.

Why (operator/heap.py): at 20,000 objects the memory a first reconcile frees between what its
Sync keeps stayed resident in glibc's per-thread arenas. These tests pin when it is released:
after a reconcile that wrote objects (the first one, one after a commit), never after a
no-op reconcile (an idle interval must stay as cheap as it was), and harmlessly where the C
library has no ``malloc_trim``.
"""

from __future__ import annotations

import platform
from typing import Any

import pytest

from sealed_gitops.operator import heap
from sealed_gitops.operator import sync as sync_module

from .conftest import Setup, decoded, is_ready, wait_for
from .manifests import config_doc, reconciles, secret_doc


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc_trim is a glibc function; not glibc here"
)
def test_free_pages_are_released_on_glibc() -> None:
    assert heap.release_free_heap() is True


def test_without_malloc_trim_nothing_is_released(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_malloc_trim", lambda: None)
    assert heap.release_free_heap() is False


@pytest.mark.e2e
def test_released_after_a_build_and_not_after_a_noop_reconcile(
    setup: Setup, operator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def counted() -> bool:
        calls.append(1)
        return True

    # the operator's reconciles run in this process (a thread), through sync.py's name
    monkeypatch.setattr(sync_module, "release_free_heap", counted)
    ns = setup.namespace
    setup.push(
        {
            "deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="first")),
            "deploy/cm.yaml": config_doc("settings", ns, level="info"),
        }
    )
    setup.objects(interval="1s")
    thread = operator_factory(ns)
    wait_for(lambda: is_ready(setup.kube.sync()), timeout=120, what="first reconcile Ready")
    wait_for(lambda: len(calls) == 1, timeout=60, what="a release after the first build")

    # three more successful reconciles at the same commit: no-ops, nothing released
    done = reconciles(thread)
    wait_for(lambda: reconciles(thread) >= done + 3, timeout=120, what="three no-op reconciles")
    assert len(calls) == 1

    # a new commit is built and prepared again: released once more
    setup.push({"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="second"))})
    wait_for(
        lambda: decoded(setup.kube.secret("db") or {}).get("password") == "second",
        timeout=120,
        what="the changed Secret",
    )
    wait_for(lambda: len(calls) >= 2, timeout=60, what="a release after the new build")
