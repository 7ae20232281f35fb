"""updatekeys (same data key, new recipients) and rotate (new data key, all values new)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import SECRET_YAML, AgeKey, encrypt_file, run


def _meta(path: Path) -> dict[str, Any]:
    meta: dict[str, Any] = yaml.safe_load(path.read_text())["sops"]
    return meta


def _values(path: Path) -> dict[str, str]:
    values: dict[str, str] = yaml.safe_load(path.read_text())["stringData"]
    return values


def _recipients(path: Path) -> list[str]:
    return [s["recipient"] for s in _meta(path)["age"]]


def _opens_with(path: Path, key: AgeKey) -> bool:
    result = run("decrypt", str(path), "--age-identity", str(key.file))
    return result.exit_code == 0 and yaml.safe_load(result.stdout) == yaml.safe_load(SECRET_YAML)


@pytest.fixture
def encrypted(secret_file: Path, use_key: AgeKey) -> Path:
    return encrypt_file(secret_file, use_key.public)


def _rule(work: Path, *keys: AgeKey) -> None:
    (work / ".sops.yaml").write_text(
        "creation_rules:\n  - path_regex: .*\n    age: " + ",".join(k.public for k in keys) + "\n"
    )


def test_updatekeys_rewraps_the_same_data_key(
    encrypted: Path, work: Path, age_keys: list[AgeKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    _rule(work, age_keys[0], age_keys[1])
    values_before = _values(encrypted)
    result = run("updatekeys", str(encrypted), "-y")
    assert result.exit_code == 0, result.stderr
    assert f"+ {age_keys[1].public}" in result.stderr
    assert _recipients(encrypted) == [age_keys[0].public, age_keys[1].public]
    # Same data key: every value keeps its exact ciphertext.
    assert _values(encrypted) == values_before
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    assert _opens_with(encrypted, age_keys[1])


def test_updatekeys_removes_a_recipient_without_prompt_when_not_a_tty(
    encrypted: Path, work: Path, age_keys: list[AgeKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    _rule(work, age_keys[0], age_keys[1])
    assert run("updatekeys", str(encrypted), "-y").exit_code == 0
    _rule(work, age_keys[1])
    result = run("updatekeys", str(encrypted))  # CliRunner's stdin is not a TTY
    assert result.exit_code == 0, result.stderr
    assert f"- {age_keys[0].public}" in result.stderr
    assert _recipients(encrypted) == [age_keys[1].public]
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    assert not _opens_with(encrypted, age_keys[0])
    assert _opens_with(encrypted, age_keys[1])


def test_updatekeys_up_to_date_writes_nothing(encrypted: Path, work: Path, use_key: AgeKey) -> None:
    _rule(work, use_key)
    before = encrypted.read_bytes()
    result = run("updatekeys", str(encrypted), "-y")
    assert result.exit_code == 0
    assert "already up to date" in result.stderr
    assert encrypted.read_bytes() == before


def test_updatekeys_without_rule(encrypted: Path) -> None:
    result = run("updatekeys", str(encrypted), "-y")
    assert result.exit_code == 1
    assert result.stderr == f"error: {encrypted}: no .sops.yaml found\n"


def test_rotate_changes_every_value_and_keeps_recipients(encrypted: Path, use_key: AgeKey) -> None:
    before_values = _values(encrypted)
    before_enc = _meta(encrypted)["age"][0]["enc"]
    result = run("rotate", str(encrypted), "-i")
    assert result.exit_code == 0, result.stderr
    after = _values(encrypted)
    assert all(after[k] != before_values[k] for k in before_values)
    assert _meta(encrypted)["age"][0]["enc"] != before_enc
    assert _recipients(encrypted) == [use_key.public]
    assert _opens_with(encrypted, use_key)


def test_rotate_to_stdout_leaves_file(encrypted: Path) -> None:
    before = encrypted.read_bytes()
    result = run("rotate", str(encrypted))
    assert result.exit_code == 0
    assert result.stdout.encode() != before
    assert encrypted.read_bytes() == before


def test_rotate_add_and_remove_age(
    encrypted: Path, age_keys: list[AgeKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run("rotate", str(encrypted), "-i", "--add-age", age_keys[2].public)
    assert result.exit_code == 0, result.stderr
    assert _recipients(encrypted) == [age_keys[0].public, age_keys[2].public]
    result = run("rotate", str(encrypted), "-i", "--rm-age", age_keys[0].public)
    assert result.exit_code == 0, result.stderr
    assert _recipients(encrypted) == [age_keys[2].public]
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    assert _opens_with(encrypted, age_keys[2])
    assert not _opens_with(encrypted, age_keys[0])


@pytest.mark.parametrize(
    ("flag", "message"),
    [("--rm-age", "not a recipient"), ("--rm-age-self", "without recipients")],
)
def test_rotate_refuses_bad_recipient_changes(
    encrypted: Path, age_keys: list[AgeKey], use_key: AgeKey, flag: str, message: str
) -> None:
    before = encrypted.read_bytes()
    target = age_keys[1].public if flag == "--rm-age" else use_key.public
    result = run("rotate", str(encrypted), "-i", "--rm-age", target)
    assert result.exit_code == 1
    assert message in result.stderr
    assert encrypted.read_bytes() == before
