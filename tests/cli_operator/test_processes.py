"""``sealed-gitops operator`` and ``sealed-gitops demo`` as real processes, as people run them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.cli.demo import VALUE_PREFIX
from tests.operator.conftest import Setup, decoded, ready, wait_for
from tests.operator.manifests import secret_doc

from .conftest import CANARY

pytestmark = pytest.mark.e2e

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _start(args: list[str], *, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "sealed_gitops", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=ENV,
        )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:  # a failed test must not leave an operator running
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _lease(setup: Setup, name: str) -> dict[str, Any] | None:
    return setup.kube.get(
        f"/apis/coordination.k8s.io/v1/namespaces/{setup.namespace}/leases/{name}"
    )


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_operator_reconciles_and_stops_cleanly_on_sigterm(
    setup: Setup,
    kubeconfig: Path,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    log_format: str,
) -> None:
    ns = setup.namespace
    value = CANARY + "operator-process"
    setup.push({"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password=value))})
    setup.objects()
    log = tmp_path / "operator.log"
    proc = _start(
        [
            "operator", "--kubeconfig", str(kubeconfig), "--namespace", ns,
            "--metrics-port", "0", "--webhook-port", "0", "--lease-namespace", ns,
            "--cache-dir", str(tmp_path / "cache"), "--allow-file-urls",
            "--log-format", log_format,
        ],
        log=log,
    )  # fmt: skip
    processes.append(proc)
    secret = wait_for(lambda: setup.kube.secret("db"), what="Secret db", timeout=30)
    assert decoded(secret) == {"password": value}
    wait_for(lambda: (ready(setup.kube.sync()) or {}).get("status") == "True", what="Ready")
    holder = (_lease(setup, "sealed-gitops-operator") or {}).get("spec", {}).get("holderIdentity")
    assert holder

    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert proc.wait(30) == 0, log.read_text()
    assert time.monotonic() - started < 3  # no grace period sat out: the stop flag path
    lease = _lease(setup, "sealed-gitops-operator") or {}
    assert not lease.get("spec", {}).get("holderIdentity"), "the Lease was not released"

    text = log.read_text()
    assert CANARY not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the operator logged nothing"
    if log_format == "json":
        records = [json.loads(line) for line in lines]
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
        assert any("starting operator" in r["message"] for r in records)
        assert records[-1]["message"] == "operator stopped"
    else:
        assert lines[-1].endswith("operator stopped")


def test_operator_refuses_conflicting_flags(kubeconfig: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sealed_gitops", "operator", "--kubeconfig", str(kubeconfig),
         "--namespace", "a", "--all-namespaces"],
        capture_output=True, text=True, env=ENV, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == "error: give either --namespace or --all-namespaces"


def test_demo_tells_the_story_and_prints_no_plaintext(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sealed_gitops", "demo"],
        capture_output=True, text=True, env=ENV, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert VALUE_PREFIX not in output
    assert "AGE-SECRET-KEY" not in output
    for expected in (
        "Secret team-a/db exists with keys: password, username",
        "lines changed: password, ",
        "ConfigMap team-a/settings pruned",
        "Sync Ready=False, reason DecryptionFailed",
        "deploy/db.sops.yaml",
        "Alice added it, Bob changed it",
        "demo finished",
    ):
        assert expected in output
    assert elapsed < 30
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def test_a_standby_waiting_for_the_lease_stops_on_sigterm(
    setup: Setup,
    kubeconfig: Path,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    ns = setup.namespace
    common = [
        "operator", "--kubeconfig", str(kubeconfig), "--namespace", ns, "--metrics-port", "0",
        "--webhook-port", "0", "--lease-namespace", ns, "--log-format", "text",
    ]  # fmt: skip
    leader = _start(common, log=tmp_path / "leader.log")
    processes.append(leader)
    wait_for(
        lambda: (
            (_lease(setup, "sealed-gitops-operator") or {}).get("spec", {}).get("holderIdentity")
        ),
        what="a leader",
    )
    standby = _start(common, log=tmp_path / "standby.log")
    processes.append(standby)
    # Started and waiting for the Lease (its signal handlers are in place by then); a fixed
    # sleep raced with the interpreter's start-up on a loaded machine (killed by SIGTERM, -15).
    wait_for(
        lambda: "standing by" in (tmp_path / "standby.log").read_text(),
        timeout=30,
        what="the standby waiting for the Lease",
    )
    assert standby.poll() is None
    holder = (_lease(setup, "sealed-gitops-operator") or {})["spec"]["holderIdentity"]
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(10) == 0, (tmp_path / "standby.log").read_text()
    # the standby never led, so it leaves the leader's Lease alone
    assert (_lease(setup, "sealed-gitops-operator") or {})["spec"]["holderIdentity"] == holder
    leader.send_signal(signal.SIGINT)
    assert leader.wait(10) == 0, (tmp_path / "leader.log").read_text()


def test_demo_tells_the_same_story_on_the_test_cluster(
    kubeconfig: Path, crds: None, tmp_path: Path
) -> None:
    """`demo --kubeconfig`: the story on each tier's cluster (the emulator of this session, the
    real control plane) instead of an emulator of its own; it makes and deletes its namespace."""
    done = subprocess.run(
        [sys.executable, "-m", "sealed_gitops", "demo", "--kubeconfig", str(kubeconfig)],
        capture_output=True, text=True, env=ENV, timeout=180, check=False, cwd=tmp_path,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert VALUE_PREFIX not in output
    for expected in (
        f"Use the cluster of {kubeconfig}",
        "Secret team-a/db exists with keys: password, username",
        "Sync Ready=False, reason DecryptionFailed",
        "Alice added it, Bob changed it",
        "delete namespace team-a",
        "demo finished",
    ):
        assert expected in output
