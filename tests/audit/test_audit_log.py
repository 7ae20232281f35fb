"""Issue 8 item 3: the operator's audit line is one JSON object per line on stdout.

The stream itself (``audit.log``) is checked directly, then with the operator's real producer
(``operator.sync._audit``) writing through it, then, as people run it, in a ``sealed-gitops
operator`` process whose stdout and stderr are read apart.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops import redact
from sealed_gitops.audit.log import AUDIT_LOGGER, install_audit_stream
from sealed_gitops.cluster import ApplyResult, ObjectOutcome
from sealed_gitops.cluster.applier import Result
from sealed_gitops.plan.changes import Change, KeyChange, ObjectChange
from sealed_gitops.plan.ids import ObjectId
from tests.operator.conftest import (  # noqa: F401 - fixtures are found by name
    Setup,
    _cluster,
    client,
    crds,
    emulator,
    kubeconfig,
    kubectl_path,
    setup,
    wait_for,
)

from .conftest import CANARY, leaked

AUTHOR = "Bob Builder <bob@example.invalid>"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def audit_logger() -> Iterator[logging.Logger]:
    """The audit logger, put back as it was after the test."""
    logger = logging.getLogger(AUDIT_LOGGER)
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        yield logger
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def root_records() -> Iterator[list[logging.LogRecord]]:
    """Whatever reaches the root logger (the operator's stderr stream) during the test."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep(level=logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield seen
    finally:
        root.removeHandler(handler)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            json.dumps(
                {
                    "event": "secret-applied",
                    "commit": SHA,
                    "author": AUTHOR,
                    "object": "Secret/app/db",
                    "keys": {"password": "changed"},
                }
            ),
            {
                "message": "secret-applied",
                "commit": SHA,
                "author": AUTHOR,
                "object": "Secret/app/db",
                "keys": {"password": "changed"},
            },
        ),
        # a producer field cannot overwrite the envelope
        (
            json.dumps({"logger": "forged", "level": "debug", "commit": SHA}),
            {"logger": AUDIT_LOGGER, "level": "info", "commit": SHA, "message": "audit"},
        ),
        # not JSON: still one JSON line, the text as the message
        ("plain words", {"message": "plain words"}),
    ],
)
def test_one_json_line_on_stdout_only(
    audit_logger: logging.Logger,
    root_records: list[logging.LogRecord],
    capsys: pytest.CaptureFixture[str],
    message: str,
    expected: dict[str, Any],
) -> None:
    install_audit_stream()  # default stream: stdout (capsys's at this point)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # as with --log-level warning: audit lines still go out
    try:
        audit_logger.info(message)
    finally:
        root.setLevel(level)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert {"time", "level", "logger", "message"} <= set(line)
    assert {k: line[k] for k in expected} == expected
    assert line["logger"] == AUDIT_LOGGER
    assert err == ""
    assert root_records == []  # not repeated on the diagnostics stream


def test_registered_values_are_masked(audit_logger: logging.Logger) -> None:
    value = f"{CANARY}-registered-in-the-audit-line"
    saved = redact.snapshot()
    redact.register(value)
    try:
        stream = io.StringIO()
        install_audit_stream(stream)
        audit_logger.info(json.dumps({"event": "secret-applied", "note": f"x {value} y"}))
    finally:
        redact.restore(saved)
    text = stream.getvalue()
    assert json.loads(text)["note"].startswith("x ")
    assert not leaked(text)


def test_installing_twice_keeps_one_handler(audit_logger: logging.Logger) -> None:
    first, second = io.StringIO(), io.StringIO()
    install_audit_stream(first)
    install_audit_stream(second)
    audit_logger.info(json.dumps({"event": "x"}))
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1


def _outcome(
    name: str, result: Result, keys: dict[str, Change], *, kind: str = "Secret", group: str = ""
) -> ObjectOutcome:
    oid = ObjectId(namespace="app", name=name, group=group, kind=kind)
    change = ObjectChange(
        id=oid, change=Change.UPDATE, keys=tuple(KeyChange(k, c) for k, c in keys.items())
    )
    return ObjectOutcome(id=oid, result=result, version="v1", change=change)


def test_the_operators_line_for_each_changed_secret(
    audit_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    from sealed_gitops.operator.sync import _audit

    applied = ApplyResult(outcomes=(
        _outcome("db", Result.CONFIGURED, {"password": Change.CHANGED, "user": Change.UNCHANGED,
                                           "extra": Change.ADDED}),
        _outcome("api", Result.CREATED, {"token": Change.ADDED}),
        _outcome("same", Result.UNCHANGED, {"k": Change.UNCHANGED}),
        _outcome("cfg", Result.CONFIGURED, {}, kind="ConfigMap"),
    ))  # fmt: skip
    install_audit_stream()
    published = {"commit": SHA, "revision": f"main@sha1:{SHA}", "author": AUTHOR}
    _audit("app/sync", published, applied)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["object"], x["keys"]) for x in lines] == [
        ("Secret/app/db", {"password": "changed", "extra": "added"}),
        ("Secret/app/api", {"token": "added"}),
    ]
    assert {(x["commit"], x["author"], x["sync"], x["logger"]) for x in lines} == {
        (SHA, AUTHOR, "app/sync", AUDIT_LOGGER)
    }


# -- as people run it -----------------------------------------------------------------------------


@pytest.fixture
def operator_process() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.e2e
@pytest.mark.parametrize("log_format", ["json", "text"])
def test_operator_process_writes_audit_lines_to_stdout(
    setup: Setup,  # noqa: F811 - the imported fixture
    kubeconfig: Path,  # noqa: F811
    tmp_path: Path,
    operator_process: list[subprocess.Popen[bytes]],
    log_format: str,
) -> None:
    ns = setup.namespace
    value = f"{CANARY}-operator-process"
    sha = setup.push(
        {"deploy/db.yaml": setup.encrypt({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "db", "namespace": ns}, "stringData": {"password": value},
        })},
        author=("Bob Builder", "bob@example.invalid"),
    )  # fmt: skip
    setup.objects()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as out_sink, err.open("wb") as err_sink:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "sealed_gitops", "operator", "--kubeconfig", str(kubeconfig),
                "--namespace", ns, "--metrics-port", "0", "--webhook-port", "0",
                "--lease-namespace", ns, "--cache-dir", str(tmp_path / "cache"),
                "--allow-file-urls", "--log-format", log_format, "--log-level", "warning",
            ],
            stdout=out_sink, stderr=err_sink, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    operator_process.append(proc)
    wait_for(lambda: setup.kube.secret("db"), what="Secret db", timeout=30)

    def audit_lines() -> list[dict[str, Any]] | None:
        found = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        return found or None

    # the Secret is there, so its audit line was due already; a short wait is enough
    lines = wait_for(audit_lines, what="an audit line on stdout", timeout=5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    [line] = [x for x in lines if x.get("object") == f"Secret/{ns}/db"]
    assert line["commit"] == sha
    assert line["author"] == "Bob Builder <bob@example.invalid>"
    assert line["keys"] == {"password": "added"}
    assert AUDIT_LOGGER not in err.read_text()
    assert not leaked(out.read_text() + err.read_text())
