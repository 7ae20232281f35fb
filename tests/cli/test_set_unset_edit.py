"""set, unset and edit: in place, with stable ciphertext checked against the file's bytes."""

from __future__ import annotations

import difflib
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import CANARY, AgeKey, encrypt_file, run

FAKE_EDITOR = """\
import json, os, sys
path = sys.argv[1]
report = os.environ["EDITOR_REPORT"]
info = {"path": path, "mode": os.stat(path).st_mode & 0o777}
text = open(path).read()
action = os.environ.get("EDITOR_ACTION", "")
if action == "replace":
    old, new = os.environ["EDITOR_OLD"], os.environ["EDITOR_NEW"]
    text = text.replace(old, new)
elif action == "break":
    text = text + "\\n  : : [unclosed\\n"
elif action == "fail":
    sys.exit(3)
open(path, "w").write(text)
json.dump(info, open(report, "w"))
"""


def _changed_lines(before: bytes, after: bytes) -> list[str]:
    diff = difflib.unified_diff(
        before.decode().splitlines(), after.decode().splitlines(), lineterm="", n=0
    )
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def _changed_keys(before: bytes, after: bytes) -> set[str]:
    """Keys whose line changed; lastmodified is left out (it may fall in the same second)."""
    keys = {line[1:].strip().split(":")[0] for line in _changed_lines(before, after)}
    return keys - {"lastmodified"}


@pytest.fixture
def encrypted(secret_file: Path, use_key: AgeKey) -> Path:
    return encrypt_file(secret_file, use_key.public)


@pytest.mark.parametrize(
    ("args", "changed"),
    [
        (("set", '["stringData"]["user"]', '"user-b2"'), {"user"}),
        (("set", '["stringData"]["extra"]', '"new-value"'), {"extra"}),
        (("unset", '["stringData"]["user"]'), {"user"}),
    ],
)
def test_set_and_unset_change_only_that_value(
    encrypted: Path, args: tuple[str, ...], changed: set[str]
) -> None:
    before = encrypted.read_bytes()
    cmd, *rest = args
    result = run(cmd, str(encrypted), *rest)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    after = encrypted.read_bytes()
    assert _changed_keys(before, after) == changed | {"mac"}


def test_set_json_values_and_nested_paths(encrypted: Path) -> None:
    assert run("set", str(encrypted), '["stringData"]["n"]', "42").exit_code == 0
    assert run("set", str(encrypted), '["extra"]["list"]', '[1, "two"]').exit_code == 0
    doc = yaml.safe_load(run("decrypt", str(encrypted)).stdout)
    assert doc["stringData"]["n"] == 42
    assert doc["extra"] == {"list": [1, "two"]}


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_set_value_from_file_or_stdin(encrypted: Path, work: Path, source: str) -> None:
    value = json.dumps("from-" + source + "-" + CANARY)
    if source == "file":
        vf = work / "value.json"
        vf.write_text(value)
        result = run("set", str(encrypted), '["stringData"]["password"]', "--value-file", str(vf))
    else:
        result = run(
            "set", str(encrypted), '["stringData"]["password"]', "--value-stdin", stdin=value
        )
    assert result.exit_code == 0, result.stderr
    out = run("decrypt", str(encrypted), "--extract", '["stringData"]["password"]').stdout
    assert out == json.loads(value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (('["stringData"]["x"]', "not json"), "not valid JSON"),
        (('["stringData"]["x"]',), "give the value once"),
        (("stringData.x", '"v"'), "invalid path"),
    ],
)
def test_set_errors_leave_the_file_alone(
    encrypted: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    before = encrypted.read_bytes()
    result = run("set", str(encrypted), *args)
    # sops' statuses: 7 a value that is not JSON, 91 a path it cannot parse, else 1
    assert result.exit_code == {"not valid JSON": 7, "invalid path": 91}.get(message, 1)
    assert message in result.stderr
    assert encrypted.read_bytes() == before


def test_unset_missing_path(encrypted: Path) -> None:
    result = run("unset", str(encrypted), '["stringData"]["nope"]')
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {encrypted}: ")


# -- edit -------------------------------------------------------------------------------------


@pytest.fixture
def editor(work: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = work.parent / "fake_editor.py"
    script.write_text(FAKE_EDITOR)
    report = work.parent / "editor-report.json"
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    monkeypatch.setenv("EDITOR_REPORT", str(report))
    return report


def test_edit_changes_one_value_with_stable_ciphertext(
    encrypted: Path, editor: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDITOR_ACTION", "replace")
    monkeypatch.setenv("EDITOR_OLD", "user: user-a1x")
    monkeypatch.setenv("EDITOR_NEW", "user: user-b2")
    before = encrypted.read_bytes()
    result = run("edit", str(encrypted))
    assert result.exit_code == 0, result.stderr
    after = encrypted.read_bytes()
    assert _changed_keys(before, after) == {"user", "mac"}
    info = json.loads(editor.read_text())
    # The plaintext copy was private, memory-backed and is gone.
    assert info["mode"] == 0o600
    assert info["path"].startswith(("/dev/shm/", "/proc/self/fd/"))
    assert not os.path.exists(info["path"]) or info["path"].startswith("/proc/")
    assert yaml.safe_load(run("decrypt", str(encrypted)).stdout)["stringData"]["user"] == "user-b2"


def test_edit_without_changes_writes_nothing(encrypted: Path, editor: Path) -> None:
    before = encrypted.read_bytes()
    stat = encrypted.stat()
    result = run("edit", str(encrypted))
    assert result.exit_code == 200, result.stderr  # sops' FileHasNotBeenModified
    assert "no changes" in result.stderr
    assert encrypted.read_bytes() == before
    assert encrypted.stat().st_mtime_ns == stat.st_mtime_ns


@pytest.mark.parametrize(("action", "message"), [("break", "invalid YAML"), ("fail", "exited")])
def test_edit_failure_leaves_original_and_no_plaintext(
    encrypted: Path, editor: Path, monkeypatch: pytest.MonkeyPatch, action: str, message: str
) -> None:
    monkeypatch.setenv("EDITOR_ACTION", action)
    before = encrypted.read_bytes()
    result = run("edit", str(encrypted))
    # an editor that fails is sops' NoEditorFound (201); a buffer that does not parse is 1
    assert result.exit_code == (201 if action == "fail" else 1)
    assert message in result.stderr
    assert CANARY not in result.stderr
    assert encrypted.read_bytes() == before
    if editor.exists():
        path = json.loads(editor.read_text())["path"]
        assert not os.path.exists(path) or path.startswith("/proc/")


def test_editor_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    from sealed_gitops.cli.edit import editor_command

    assert editor_command({}, which=lambda name: name if name == "vi" else None) == ["vi"]
    assert editor_command({}, which=lambda name: None if name == "nano" else name) == ["vim"]
    assert editor_command({"VISUAL": "nano -w"}) == ["nano", "-w"]
    assert editor_command({"EDITOR": "code --wait", "VISUAL": "nano"}) == ["code", "--wait"]


def test_sigterm_during_edit_removes_the_plaintext_copy(encrypted: Path, work: Path) -> None:
    from .conftest import run_cli

    report = work.parent / "sigterm-report.txt"
    script = work.parent / "killer.py"
    script.write_text(
        "import os, signal, sys, time\n"
        f"open({str(report)!r}, 'w').write(sys.argv[1])\n"
        "os.kill(os.getppid(), signal.SIGTERM)\n"
        "time.sleep(10)\n"
    )
    before = encrypted.read_bytes()
    proc = run_cli("edit", encrypted.name, cwd=work, env={"EDITOR": f"{sys.executable} {script}"})
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines() == [
        f"error: {encrypted.name}: interrupted by SIGTERM; nothing saved"
    ]
    path = report.read_text()
    assert path.startswith("/dev/shm/")
    assert not os.path.exists(path)
    assert encrypted.read_bytes() == before
