"""Issue 11, finding 8: plaintext in status, Events, logs and CLI errors.

The attack: a value the operator decrypted comes back in a text it did not write itself, and
reaches a sink in a form the redaction layer did not know.

- An API server refuses an object and quotes it: a real server's 422 for a patch quotes the
  patched object as Go-quoted JSON (``field.Invalid`` prints strings with ``%q``), an admission
  webhook may echo it. The operator cut that text to 512 characters *before* redacting it, so a
  value that crossed the cut was no longer recognised, and the value appeared JSON-escaped and
  then Go-quoted, a form that was never registered.
- A refused name quotes the decrypted value with ``repr()`` (a fully encrypted document whose name
  holds a quote or a backslash): the escaped form reached ``status.failures``, the Ready
  condition, a Warning Event and ``sealed-gitops build``'s stderr.

Each value here is made of random tokens joined by characters that every encoder escapes
differently (quotes, backslash, newline, tab, control characters, non-ASCII, ``<&>``); every
encoder keeps the tokens intact, so a token seen anywhere is a leak, whatever the escaping.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click
import pyrage
import pytest
import yaml
from click.testing import CliRunner

from sealed_gitops import redact
from sealed_gitops.cli import main
from sealed_gitops.cluster.apierrors import error_for_status, unavailable
from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.crypto.sops import Rules, encrypt_bytes
from sealed_gitops.operator.conditions import MAX_MESSAGE, set_condition
from sealed_gitops.redact.forms import go_json, go_quote
from sealed_gitops.testing import KubeEmulator
from tests.operator.conftest import Setup, wait_failed, wait_for

#: characters that JSON, Go's %q, Go's JSON and Python's repr() each escape their own way
HOSTILE = ['"', "'", "\\", "\n", "\t", "\x01", "\x1b", "\x7f", "ü", "日本", "<&>", "\u2028", " "]


def _tokens(count: int) -> list[str]:
    return [uuid.uuid4().hex[:12] for _ in range(count)]


def hostile_value(tokens: list[str]) -> str:
    """The tokens joined by every hostile character in turn."""
    return "".join(t + HOSTILE[i % len(HOSTILE)] for i, t in enumerate(tokens))


def leaks(tokens: list[str], texts: dict[str, str]) -> list[str]:
    """The sinks in which any token of the value shows (escaped or not, whole or in part)."""
    return [where for where, text in texts.items() if any(t in text for t in tokens)]


def _operator_texts(setup: Setup, caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    lines = "\n".join(
        logging.Formatter("%(name)s %(message)s").format(r)
        for r in caplog.records
        if not r.name.startswith("sealed_gitops.testing")  # the emulator is the API server
    )
    sync = setup.kube.sync()
    return {
        "logs": lines,
        "events": json.dumps(setup.kube.events(), ensure_ascii=False),
        "status": json.dumps(sync.get("status"), ensure_ascii=False),
        "status.failures": json.dumps((sync.get("status") or {}).get("failures")),
    }


def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    for name in (None, "sealed_gitops", "kopf"):
        caplog.set_level(logging.DEBUG, logger=name)


def _secret_and_copy(setup: Setup, value: str) -> dict[str, str]:
    """A SOPS Secret holding ``value``, and a plain ConfigMap holding the same value (a copy a
    committer made): the ConfigMap is no Secret, so the operator keeps the API server's prose in
    its error, and the value is masked only because the Secret's decryption registered it.
    (A SOPS-encrypted ConfigMap is refused before any request: plaintext goes only into
    Secrets, render/decrypt.py.)"""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "token", "namespace": setup.namespace},
        "stringData": {"token": value},
    }
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": setup.namespace},
        "data": {"token": value},
    }
    return {
        "deploy/secret.yaml": setup.encrypt(secret),
        "deploy/settings.yaml": yaml.safe_dump(config, sort_keys=False),
    }


@pytest.mark.e2e
@pytest.mark.parametrize(
    "shape",
    [
        # 60 tokens, 779 characters: the echoed value runs across the 512-character cut
        pytest.param("long", id="value-across-the-512-cut"),
        # the value Go-quoted inside Go-quoted JSON, within the cut
        pytest.param("escaped", id="value-go-quoted-json"),
    ],
)
def test_an_api_error_that_echoes_the_object_leaks_no_value(
    setup: Setup,
    operator_factory: Any,
    emulator: KubeEmulator,
    caplog: pytest.LogCaptureFixture,
    shape: str,
) -> None:
    _debug_logs(caplog)
    tokens = _tokens(60 if shape == "long" else 8)
    value = "-".join(tokens) if shape == "long" else hostile_value(tokens)
    emulator.faults.add(
        verb="patch",
        resource="configmaps",
        namespace=setup.namespace,
        count=3,
        status=422,
        echo=True,
    )
    setup.push(_secret_and_copy(setup, value))
    setup.objects()
    operator_factory(setup.namespace)
    cond = wait_failed(setup.kube)
    assert cond["reason"] == "ApplyFailed" and "422" in cond["message"], cond
    assert "patch: Invalid value" in cond["message"], "the server's echo was not kept at all"
    wait_for(setup.kube.configmaps, what="applied once the faults end")
    texts = {**_operator_texts(setup, caplog), "condition while failing": json.dumps(cond)}
    assert "422" in texts["events"] and "422" in texts["logs"]
    assert leaks(tokens, texts) == []


def _fully_encrypted(setup_recipient: str, doc: dict[str, Any]) -> str:
    """sops' own default for a file that is not a manifest: every value encrypted, the name too."""
    plain = yaml.safe_dump(doc, sort_keys=False).encode()
    return encrypt_bytes(
        plain, key_groups=[[AgeRecipient(setup_recipient)]], rules=Rules(), file="x.yaml"
    ).decode()


def _refused_name_doc(namespace: str, tokens: list[str]) -> dict[str, Any]:
    # "_" is refused in a name by the object ids; the error quotes the decrypted name with repr()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "db_" + hostile_value(tokens), "namespace": namespace},
        "data": {"mode": "on"},
    }


@pytest.mark.e2e
def test_a_refused_name_quoted_with_repr_leaks_nothing_into_status_failures(
    setup: Setup, operator_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _debug_logs(caplog)
    tokens = _tokens(6)
    setup.push(
        {
            "deploy/db.yaml": _fully_encrypted(
                setup.recipient, _refused_name_doc(setup.namespace, tokens)
            )
        }
    )
    setup.objects(policy="Isolate")
    operator_factory(setup.namespace)

    def failures() -> list[dict[str, Any]]:
        return list(setup.kube.status().get("failures") or [])

    found = wait_for(failures, what="status.failures")
    assert found[0]["file"] == "deploy/db.yaml" and found[0]["reason"], found
    time.sleep(1.5)  # a few retries write their Events and log lines too
    assert leaks(tokens, _operator_texts(setup, caplog)) == []


@pytest.mark.e2e
def test_a_refused_name_quoted_with_repr_leaks_nothing_on_build_stderr(tmp_path: Path) -> None:
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "age.key"
    key_file.write_text(f"{identity}\n")
    tokens = _tokens(6)
    deploy = tmp_path / "repo" / "deploy"
    deploy.mkdir(parents=True)
    (deploy / "db.yaml").write_text(
        _fully_encrypted(str(identity.to_public()), _refused_name_doc("team-a", tokens))
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "SOPS_DISABLE_VERSION_CHECK": "true",
    }
    runs = {
        label: subprocess.run(
            [sys.executable, "-m", "sealed_gitops", "-vv", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        for label, args in {
            "build": ["build", str(deploy), "--age-identity", str(key_file)],
            "build-isolate": [
                "build",
                str(deploy),
                "--age-identity",
                str(key_file),
                "--failure-policy",
                "isolate",
                "-o",
                "json",
            ],
        }.items()
    }
    for label, run in runs.items():
        assert run.returncode != 0 and "db.yaml" in run.stderr, (label, run.stderr)
    texts = {
        f"{label} {stream}": getattr(run, stream)
        for label, run in runs.items()
        for stream in ("stdout", "stderr")
    }
    assert leaks(tokens, texts) == []


# -- the one rule under every sink: redact, then cut -------------------------------------------


def _crossing(tokens: list[str], *, at: int) -> tuple[str, str]:
    """(a server message whose value runs across position ``at``, the value)."""
    value = "-".join(tokens)
    prefix = "x" * (at - len(value) // 2)
    return f"{prefix}{value} tail", value


@pytest.mark.parametrize(
    "sink",
    ["api-error", "api-unreachable", "condition", "event-bytes", "cut"],
)
def test_every_sink_redacts_before_it_cuts(sink: str) -> None:
    tokens = _tokens(40)
    if sink == "api-error":
        message, value = _crossing(tokens, at=512)
        redact.register(value)
        body = json.dumps({"kind": "Status", "message": message, "reason": "Invalid"})
        text = str(error_for_status(422, body, action="apply", what="ConfigMap a/b"))
    elif sink == "api-unreachable":
        message, value = _crossing(tokens, at=512)
        redact.register(value)
        text = str(unavailable(OSError(message), action="apply", what="ConfigMap a/b"))
    elif sink == "condition":
        message, value = _crossing(tokens, at=MAX_MESSAGE)
        redact.register(value)
        cond = set_condition(
            [], type_="Ready", status=False, reason="X", message=message, generation=1
        )
        text = cond[0]["message"]
    elif sink == "event-bytes":
        message, value = _crossing(tokens, at=1024)
        redact.register(value)
        text = redact.cut(message, limit=1024, unit="bytes")
    else:
        message, value = _crossing(tokens, at=100)
        redact.register(value)
        text = redact.cut(message, limit=100)
    assert leaks(tokens, {sink: text}) == [], text


# -- the forms: exact re-implementations of the encoders that quote values ----------------------

# Produced by Go 1.26: strconv.Quote(v) and json.Marshal(v), quotes removed.
GO_VECTORS = [
    ("plain-value", "plain-value", "plain-value"),
    ("quo\"te's", "quo\\\"te's", "quo\\\"te's"),
    ("back\\slash", "back\\\\slash", "back\\\\slash"),
    ("new\nline\ttab\r", "new\\nline\\ttab\\r", "new\\nline\\ttab\\r"),
    ("ünïcödé ✓ 日本", "ünïcödé ✓ 日本", "ünïcödé ✓ 日本"),
    ("ctl\x00\x01\x1b\x7f", "ctl\\x00\\x01\\x1b\\x7f", "ctl\\u0000\\u0001\\u001b\x7f"),
    ("html <a>&amp;", "html <a>&amp;", "html \\u003ca\\u003e\\u0026amp;"),
    ("line\u2028sep\u2029", "line\\u2028sep\\u2029", "line\\u2028sep\\u2029"),
    ("emoji 😀", "emoji 😀", "emoji 😀"),
    ("bf\b\f\v\a", "bf\\b\\f\\v\\a", "bf\\b\\f\\u000b\\u0007"),
    ("sp\u00a0nb\u200bzw\u00adsh", "sp\\u00a0nb\\u200bzw\\u00adsh", "sp\u00a0nb\u200bzw\u00adsh"),
    (
        "astral \U0001f600 \U000e0001",
        "astral \U0001f600 \\U000e0001",
        "astral \U0001f600 \U000e0001",
    ),
]


@pytest.mark.parametrize(("value", "quoted", "as_json"), GO_VECTORS)
def test_go_forms_match_go(value: str, quoted: str, as_json: str) -> None:
    assert go_quote(value) == quoted
    assert go_json(value) == as_json


@pytest.mark.parametrize(
    ("encode", "where"),
    [
        (lambda v: json.dumps({"v": v}), "json"),
        (lambda v: json.dumps({"v": v}, ensure_ascii=False), "json-utf8"),
        (lambda v: f"bad value {v!r}", "repr"),
        (lambda v: repr(f'it\'s "{v}"'), "repr-inside-repr"),
        (lambda v: f'Invalid value: "{go_quote(v)}"', "go-%q"),
        (lambda v: f'patch: Invalid value: "{go_quote(json.dumps({"v": v}))}"', "go-%q-of-json"),
        (lambda v: f'"{go_quote(go_json(v))}"', "go-%q-of-go-json"),
    ],
)
def test_a_registered_value_is_masked_in_every_escaped_form(encode: Any, where: str) -> None:
    tokens = _tokens(8)
    value = hostile_value(tokens)
    redact.register(value)
    text = redact.redact(encode(value))
    assert leaks(tokens, {where: text}) == [], text
    assert redact.MASK in text


# -- the CLI's last line of defence: an exception that is not one of ours -----------------------


@click.command()
def _crashing_command() -> None:
    """Stands for a parser that raises a plain ValueError quoting what it could not read."""
    raise ValueError(f"cannot parse {CRASH_VALUE!r}")


CRASH_TOKEN = uuid.uuid4().hex
CRASH_VALUE = f"crash-{CRASH_TOKEN}\\quoted'\"-value"


def test_an_unexpected_exception_prints_one_redacted_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(main.COMMANDS, "crash", f"{__name__}:_crashing_command")
    redact.register(CRASH_VALUE)
    result = CliRunner().invoke(main.cli, ["-vv", "crash"])
    assert result.exit_code == main.EXIT_FAILURE
    assert "error: internal error: ValueError" in result.output
    assert CRASH_TOKEN not in result.output, result.output
