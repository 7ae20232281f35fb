"""``sealed-gitops operator --ui-port``: the web view served next to the operator, off by default.

Started as a process, the way a pod runs it: the log line names the URL; the view answers GETs
on loopback only and refuses anything else. Stopped by PID with SIGTERM (killed on failure).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealed_gitops.cluster import connect
from sealed_gitops.testing import KubeEmulator
from tests.ui.cluster_objects import NS, populate

ENV = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}


@pytest.fixture(scope="module")
def kubeconfig() -> Iterator[Path]:
    with KubeEmulator().run_in_thread() as api:
        client = connect(api.kubeconfig_path)
        try:
            populate(client)
        finally:
            client.close()
        yield api.kubeconfig_path


def _operator(
    kubeconfig: Path, tmp_path: Path, *extra: str
) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "operator.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "sealed_gitops", "operator", "--kubeconfig", str(kubeconfig),
                "--namespace", NS, "--lease-namespace", NS, "--metrics-port", "off",
                "--webhook-port", "off", "--cache-dir", str(tmp_path / "cache"),
                "--log-format", "text", *extra,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=ENV,
        )  # fmt: skip
    return proc, log


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_ui_port_serves_the_view_read_only(kubeconfig: Path, tmp_path: Path) -> None:
    proc, log = _operator(kubeconfig, tmp_path, "--ui-port", "0")
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(r"web view on (http://127\.0\.0\.1:\d+/)", log.read_text())
            url = found.group(1) if found else None
            time.sleep(0.1)
        assert url is not None, f"no 'web view on' line; log:\n{log.read_text()[-3000:]}"
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
            page = answer.read().decode()
            assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert f'href="/syncs/{NS}/broken"' in page
        post = urllib.request.Request(url, data=b"x", method="POST")  # noqa: S310 - loopback
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post, timeout=10)  # noqa: S310 - loopback
        assert refused.value.code == 405
    finally:
        _stop(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]


def test_ui_port_is_off_by_default(kubeconfig: Path, tmp_path: Path) -> None:
    proc, log = _operator(kubeconfig, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while "starting operator" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the view would be up before the operator's first log lines
        assert "starting operator" in log.read_text()
        assert "web view" not in log.read_text()
    finally:
        _stop(proc)


def test_a_sigterm_while_the_view_starts_stops_the_operator_cleanly(
    kubeconfig: Path, tmp_path: Path
) -> None:
    """The web view starts before the event loop has its signal handlers; a SIGTERM in between
    (a pod deleted while starting) must still mean a clean stop, not death by the signal."""
    proc, log = _operator(kubeconfig, tmp_path, "--ui-port", "0")
    try:
        deadline = time.monotonic() + 60
        while "web view on" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        _stop(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "operator stopped" in log.read_text()
