"""Status as Flux writes it, and the economy of a reconcile that has nothing to do.

Issue 6 items 2 and 4: a reconcile of the same revision without drift sends no write and
decrypts nothing; the status carries ``main@sha1:<full sha>`` revisions, observedGeneration,
Ready/Reconciling/Stalled with their reasons, counts, and the requested-at value it handled.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from typing import Any

import pytest

from sealed_gitops.testing import KubeEmulator

from .conftest import Setup, condition, decoded, is_ready, ready, wait_failed, wait_for
from .manifests import config_doc, decryptions, reconciles, sample, secret_doc, writes

pytestmark = pytest.mark.e2e

REVISION = re.compile(r"^main@sha1:[0-9a-f]{40}$")


def _first_apply(setup: Setup, operator_factory: Any, **objects: Any) -> tuple[Any, str]:
    ns = setup.namespace
    sha = setup.push(
        {
            "deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="status-pass-0001")),
            "deploy/cm.yaml": config_doc("settings", ns, level="info"),
        }
    )
    setup.objects(**objects)
    thread = operator_factory(ns)
    wait_for(
        lambda: setup.kube.status().get("lastAppliedRevision") == f"main@sha1:{sha}",
        what="first apply",
    )
    return thread, sha


def test_a_noop_reconcile_sends_no_write_and_decrypts_nothing(
    setup: Setup, operator_factory: Any
) -> None:
    thread, _ = _first_apply(setup, operator_factory)
    # Let the reconcile that applied finish its Events, then take the baseline.
    done = reconciles(thread)
    wait_for(lambda: reconciles(thread) >= done + 1, what="a settled reconcile")
    before_writes, before_decryptions = writes(thread), decryptions(thread)
    assert before_decryptions >= 1  # the first apply did unwrap a data key
    base = reconciles(thread)

    for _ in range(3):  # triggered reconciles, on top of the 1s interval ones
        thread.trigger("Sync", setup.namespace, "app", reason="test")
        time.sleep(0.3)
    wait_for(lambda: reconciles(thread) >= base + 3, what="three more reconciles")

    assert writes(thread) == before_writes
    assert decryptions(thread) == before_decryptions
    assert reconciles(thread, "failure") == 0 or is_ready(setup.kube.sync())


def test_requested_at_is_handled_with_one_status_write(
    setup: Setup, operator_factory: Any
) -> None:
    thread, _ = _first_apply(setup, operator_factory, interval="1h")
    wait_for(lambda: condition(setup.kube.sync(), "Reconciling") is None, what="settled")
    time.sleep(0.5)
    before = writes(thread)
    value = "2026-01-02T03:04:05.123456Z"
    setup.kube.patch(
        setup.kube.sync_path(),
        {"metadata": {"annotations": {"sealed-gitops.io/requested-at": value}}},
    )
    wait_for(
        lambda: setup.kube.status().get("lastHandledReconcileAt") == value,
        what="lastHandledReconcileAt",
    )
    time.sleep(0.5)
    assert writes(thread) - before == 1  # the status, nothing applied


    # the same for a Repository: handled at once (its interval is 1h), echoed in its status
    repo_path = setup.kube.sync_path().replace("/syncs/", "/repositories/")
    setup.kube.patch(
        repo_path, {"metadata": {"annotations": {"sealed-gitops.io/requested-at": value}}}
    )
    wait_for(
        lambda: setup.kube.repository()["status"].get("lastHandledReconcileAt") == value,
        what="Repository lastHandledReconcileAt",
    )


def test_status_fields_follow_flux(setup: Setup, operator_factory: Any) -> None:
    ns = setup.namespace
    _, sha = _first_apply(setup, operator_factory)
    sync = setup.kube.sync()
    status = sync["status"]
    assert status["lastAppliedRevision"] == status["lastAttemptedRevision"] == f"main@sha1:{sha}"
    assert REVISION.match(status["lastAppliedRevision"])
    assert status["observedGeneration"] == sync["metadata"]["generation"]
    cond = ready(sync) or {}
    assert (cond["status"], cond["reason"]) == ("True", "Succeeded")
    assert cond["observedGeneration"] == sync["metadata"]["generation"]
    assert cond["lastTransitionTime"].endswith("Z")
    assert condition(sync, "Reconciling") is None and condition(sync, "Stalled") is None
    assert status["counts"] == {"objects": 2, "applied": 2, "pruned": 0, "failed": 0}

    # a prune shows in the counts
    sha2 = setup.remove("deploy/cm.yaml")
    wait_for(
        lambda: setup.kube.status().get("lastAppliedRevision") == f"main@sha1:{sha2}",
        what="second revision",
    )
    counts = setup.kube.status()["counts"]
    assert counts == {"objects": 1, "applied": 0, "pruned": 1, "failed": 0}

    # a spec change is a new generation, observed once handled
    setup.kube.patch(setup.kube.sync_path(), {"spec": {"retryInterval": "2s"}})
    wait_for(
        lambda: (s := setup.kube.sync())["status"]["observedGeneration"]
        == s["metadata"]["generation"],
        what="new generation observed",
    )

    # a failure: attempted moves on, applied stays, Ready=False with the reason
    setup.push({"deploy/db.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"
                "stringData: {password: plain-in-git}\n"})
    sync = (wait_failed(setup.kube), setup.kube.sync())[1]
    assert sync["status"]["lastAppliedRevision"] == f"main@sha1:{sha2}"
    assert sync["status"]["lastAttemptedRevision"] == f"main@sha1:{setup.repo.head()}"
    assert (ready(sync) or {})["reason"] == "DecryptionFailed"
    assert ns and "plain-in-git" not in str(sync)


def test_reconciling_is_true_while_a_new_revision_is_applied(
    setup: Setup, operator_factory: Any, emulator: KubeEmulator
) -> None:
    ns = setup.namespace
    _first_apply(setup, operator_factory)
    seen: list[dict[str, Any]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            cond = condition(setup.kube.sync(), "Reconciling")
            if cond:
                seen.append(cond)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        # a slow write keeps the reconcile in progress long enough to be seen
        emulator.faults.add(verb="patch", resource="secrets", namespace=ns, delay=1.0)
        sha = setup.push(
            {"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="status-pass-0002"))}
        )
        wait_for(
            lambda: setup.kube.status().get("lastAppliedRevision") == f"main@sha1:{sha}",
            what="new revision applied",
        )
    finally:
        stop.set()
        watcher.join()
    assert seen, "Reconciling=True was never visible"
    assert {(c["status"], c["reason"]) for c in seen} == {("True", "Progressing")}
    assert f"main@sha1:{sha}" in seen[0]["message"]
    assert condition(setup.kube.sync(), "Reconciling") is None


def test_drift_is_corrected_on_the_next_reconcile_of_the_same_revision(
    setup: Setup, operator_factory: Any
) -> None:
    """The no-op path keeps the prepared objects between reconciles; an edit made in the
    cluster (a new resourceVersion) must still be seen and undone, then nothing more written."""
    thread, _ = _first_apply(setup, operator_factory, interval="2s")
    wait_for(lambda: condition(setup.kube.sync(), "Reconciling") is None, what="settled")
    ns = setup.namespace
    base = reconciles(thread)
    thread.trigger("Sync", ns, "app", reason="test")  # a no-op first: the memo is in use
    wait_for(lambda: reconciles(thread) >= base + 1, what="a no-op reconcile")

    cm_path = f"/api/v1/namespaces/{ns}/configmaps/settings"
    setup.kube.patch(cm_path, {"data": {"level": "debug"}})
    setup.kube.patch(
        f"/api/v1/namespaces/{ns}/secrets/db", {"data": {"password": "ZWRpdGVkLWJ5LWhhbmQ="}}
    )
    before = writes(thread)
    # no trigger: the Sync's own interval (2s) is the drift correction
    wait_for(
        lambda: (setup.kube.get(cm_path) or {}).get("data", {}).get("level") == "info",
        what="the ConfigMap restored",
    )
    wait_for(
        lambda: decoded(setup.kube.secret("db") or {}).get("password") == "status-pass-0001",
        what="the Secret restored",
    )
    assert writes(thread) - before >= 2
    settled = reconciles(thread)
    after = writes(thread)
    thread.trigger("Sync", ns, "app", reason="test")
    wait_for(lambda: reconciles(thread) >= settled + 1, what="a reconcile after the repair")
    assert writes(thread) - after <= 1  # at most the counts in the status, no object
    thread.trigger("Sync", ns, "app", reason="test")
    wait_for(lambda: reconciles(thread) >= settled + 2, what="a second one")
    final = writes(thread)
    for n in (3, 4):
        thread.trigger("Sync", ns, "app", reason="test")
        target = settled + n
        wait_for(lambda: reconciles(thread) >= target, what="more no-op reconciles")  # noqa: B023
    assert writes(thread) == final


def test_repository_reconciles_are_counted_by_kind(setup: Setup, operator_factory: Any) -> None:
    thread, _ = _first_apply(setup, operator_factory)

    def repo(result: str) -> float:
        return sample(thread, "sealed_gitops_reconcile_total", kind="Repository", result=result)

    wait_for(lambda: repo("success") >= 2, what="Repository reconciles counted")
    assert sample(
        thread, "sealed_gitops_reconcile_duration_seconds_count", kind="Repository",
        result="success",
    ) == pytest.approx(repo("success"), abs=1)
    # the Sync's own, under kind=Sync: counted once its reconcile returns, which on a real API
    # server can be a moment after the status it wrote is visible to us
    wait_for(lambda: reconciles(thread) >= 1, what="the Sync's reconcile counted")
    # a remote that is gone: a failed Repository reconcile
    setup.remote.rename(setup.remote.with_name("moved.git"))
    wait_for(lambda: repo("failure") >= 1, what="a failed Repository reconcile counted")


def test_a_suspended_sync_keeps_its_status_and_counts_nothing(
    setup: Setup, operator_factory: Any
) -> None:
    """No Suspended reason: the last status stays (as in Flux), nothing is applied or counted."""
    thread, sha = _first_apply(setup, operator_factory)
    setup.kube.patch(setup.kube.sync_path(), {"spec": {"suspend": True}})
    time.sleep(1.5)  # the loop may finish a reconcile that started before the patch
    status_before = setup.kube.status()
    counted = reconciles(thread) + reconciles(thread, "failure")
    setup.push({"deploy/cm.yaml": config_doc("settings", setup.namespace, level="debug")})
    for _ in range(3):
        thread.trigger("Sync", setup.namespace, "app", reason="test")
        time.sleep(0.5)
    assert reconciles(thread) + reconciles(thread, "failure") == counted
    assert setup.kube.status() == status_before
    assert status_before["lastAppliedRevision"] == f"main@sha1:{sha}"
    assert is_ready(setup.kube.sync())
    assert {cm["metadata"]["name"]: cm["data"] for cm in setup.kube.configmaps()} == {
        "settings": {"level": "info"}
    }
    setup.kube.patch(setup.kube.sync_path(), {"spec": {"suspend": False}})
    wait_for(
        lambda: setup.kube.configmaps()[0]["data"] == {"level": "debug"}, what="resumed, applied"
    )


def test_kubectl_get_shows_the_columns_the_docs_promise(
    setup: Setup, operator_factory: Any, kubeconfig: Any, kubectl_path: Any
) -> None:
    """docs/objects.md: `kubectl get sgsync` shows Ready, the last applied revision and the age,
    `-o wide` adds the message; `kubectl get sgrepo` Ready, revision, age (wide: the URL). On
    each tier: the emulator once printed NAME AGE only (issue 13)."""
    _, sha = _first_apply(setup, operator_factory)

    def get(*args: str) -> list[list[str]]:
        done = subprocess.run(
            [str(kubectl_path), "--kubeconfig", str(kubeconfig), "-n", setup.namespace, "get",
             *args], capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        return [line.split() for line in done.stdout.strip().splitlines()]

    header, row = get("sgsync")
    assert header == ["NAME", "READY", "REVISION", "AGE"]
    assert row[:3] == ["app", "True", f"main@sha1:{sha}"]
    header, row = get("sgsync", "-o", "wide")
    assert header == ["NAME", "READY", "REVISION", "STATUS", "AGE"]
    assert "Applied" in " ".join(row)
    header, row = get("sgrepo")
    assert header[:3] == ["NAME", "READY", "REVISION"] and header[-1] == "AGE"
    assert row[:3] == ["app", "True", f"main@sha1:{sha}"]
    assert "URL" in get("sgrepo", "-o", "wide")[0]
