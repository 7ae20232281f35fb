"""sops' exit statuses: each case runs the real sops 3.11 and our command on the same files and
expects the same status, the one sops documents in ``cmd/sops/codes`` (100 file missing, 128 no
key, 203 already encrypted, 51 MAC mismatch, 25 a value that does not decrypt, 91 a bad path, 7 a
bad ``set`` value, 92 an empty file, 2 input that does not parse, 200 an edit that changed
nothing, 201 no editor / the editor failed). Scripts around sops test these numbers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sealed_gitops.testing.sops_tool import run_sops
from tests.conftest_tools import AgeKey

CANARY = "canary-exit-codes-3Jw8"
PLAIN = f"user: alice\npassword: {CANARY}\n"

#: (sops' arguments, ours, extra environment): the same operation in both spellings
Case = tuple[list[str], list[str], dict[str, str]]


@pytest.fixture
def work(tmp_path: Path, age_keys: list[AgeKey]) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (tmp_path / "home").mkdir()
    path = folder / "enc.yaml"
    path.write_text(PLAIN)
    run_sops(["-e", "-i", "--age", age_keys[0].public, str(path)], env=_env(tmp_path, age_keys))
    return folder


def _env(tmp_path: Path, age_keys: list[AgeKey]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOPS_", "VAULT_", "SEALED_GITOPS_"))
        and k not in ("GNUPGHOME", "EDITOR", "VISUAL")
    }
    env.update(
        HOME=str(tmp_path / "home"),
        SOPS_DISABLE_VERSION_CHECK="true",
        SOPS_AGE_KEY_FILE=str(age_keys[0].file),
    )
    return env


def _missing(work: Path, key: AgeKey) -> Case:
    return ["-d", "nope.yaml"], ["decrypt", "nope.yaml"], {}


def _no_key(work: Path, key: AgeKey) -> Case:
    return ["-d", "enc.yaml"], ["decrypt", "enc.yaml"], {"SOPS_AGE_KEY_FILE": "/dev/null"}


def _already(work: Path, key: AgeKey) -> Case:
    return (
        ["-e", "--age", key.public, "enc.yaml"],
        ["encrypt", "--age", key.public, "enc.yaml"],
        {},
    )


def _mac(work: Path, key: AgeKey) -> Case:
    path = work / "enc.yaml"
    text = re.sub(r"lastmodified: .*", 'lastmodified: "2020-01-01T00:00:00Z"', path.read_text())
    path.write_text(text)
    return ["-d", "enc.yaml"], ["decrypt", "enc.yaml"], {}


def _value(work: Path, key: AgeKey) -> Case:
    path = work / "enc.yaml"
    # a valid-looking ciphertext under another key path: AES-GCM refuses it
    text = path.read_text()
    user = re.search(r"user: (ENC\[[^\]]+\])", text)
    password = re.search(r"password: (ENC\[[^\]]+\])", text)
    assert user and password
    # swap through a placeholder no base64 or age armor can hold ("PW" could: about one file in
    # ten had it inside its wrapped data key, which the swap then corrupted: sops said 128)
    swap = "@@swap@@"
    text = text.replace(password.group(1), swap).replace(user.group(1), password.group(1))
    path.write_text(text.replace(swap, user.group(1)))
    return ["-d", "enc.yaml"], ["decrypt", "enc.yaml"], {}


def _bad_path(work: Path, key: AgeKey) -> Case:
    return (
        ["-d", "--extract", "user", "enc.yaml"],
        ["decrypt", "--extract", "user", "enc.yaml"],
        {},
    )


def _bad_value(work: Path, key: AgeKey) -> Case:
    args = ["enc.yaml", '["user"]', "{not-json"]
    return ["set", *args], ["set", *args], {}


def _empty(work: Path, key: AgeKey) -> Case:
    (work / "empty.yaml").write_text("")
    return (
        ["-e", "--age", key.public, "empty.yaml"],
        ["encrypt", "--age", key.public, "empty.yaml"],
        {},
    )


def _unparsable(work: Path, key: AgeKey) -> Case:
    (work / "bad.yaml").write_text(f"a: [{CANARY}\n")
    return (
        ["-e", "--age", key.public, "bad.yaml"],
        ["encrypt", "--age", key.public, "bad.yaml"],
        {},
    )


def _unchanged(work: Path, key: AgeKey) -> Case:
    return ["edit", "enc.yaml"], ["edit", "enc.yaml"], {"SOPS_EDITOR": "true", "EDITOR": "false"}


def _editor_fails(work: Path, key: AgeKey) -> Case:
    return ["edit", "enc.yaml"], ["edit", "enc.yaml"], {"SOPS_EDITOR": "false"}


def _no_editor(work: Path, key: AgeKey) -> Case:
    return ["edit", "enc.yaml"], ["edit", "enc.yaml"], {"PATH": str(work), "EDITOR": ""}


def _rule_and_flag(work: Path, key: AgeKey) -> Case:
    """A flag of one kind (--unencrypted-suffix) with a matching .sops.yaml rule of another
    (encrypted_regex): sops refuses; ours silently dropped the rule's regex."""
    (work / ".sops.yaml").write_text(
        f"creation_rules:\n- path_regex: plain\\.yaml$\n  encrypted_regex: ^secret$\n"
        f"  age: {key.public}\n"
    )
    (work / "plain.yaml").write_text(PLAIN)
    args = ["--unencrypted-suffix", "_clear", "plain.yaml"]
    return ["-e", *args], ["encrypt", *args], {}


CASES: dict[str, tuple[Callable[[Path, AgeKey], Case], int]] = {
    "rule-and-flag-of-two-kinds": (_rule_and_flag, 8),
    "missing-file": (_missing, 100),
    "no-key": (_no_key, 128),
    "already-encrypted": (_already, 203),
    "mac-mismatch": (_mac, 51),
    "value-moved": (_value, 25),
    "bad-path": (_bad_path, 91),
    "bad-set-value": (_bad_value, 7),
    "empty-file": (_empty, 92),
    "unparsable": (_unparsable, 2),
    "edit-unchanged": (_unchanged, 200),
    "editor-fails": (_editor_fails, 201),
    "no-editor": (_no_editor, 201),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_exit_status_is_sops(
    case: str, work: Path, age_keys: list[AgeKey], sops_binary: str, tmp_path: Path
) -> None:
    setup, expected = CASES[case]
    sops_args, our_args, extra = setup(work, age_keys[0])
    env = {**_env(tmp_path, age_keys), **extra}
    before = (work / "enc.yaml").read_bytes()
    theirs = subprocess.run(
        [sops_binary, *sops_args], cwd=work, env=env, capture_output=True, timeout=60, check=False
    )
    (work / "enc.yaml").write_bytes(before)
    ours = subprocess.run(
        [sys.executable, "-m", "sealed_gitops", *our_args],
        cwd=work,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = ours.stderr.decode("utf-8", "replace")
    assert theirs.returncode == expected, theirs.stderr.decode("utf-8", "replace")
    assert ours.returncode == expected, stderr
    assert "Traceback" not in stderr and CANARY not in stderr
    assert len(stderr.splitlines()) == 1, stderr
