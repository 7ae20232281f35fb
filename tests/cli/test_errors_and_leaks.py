"""Failing commands as a user sees them: exit code 1, one ``error: FILE: reason`` line, no
traceback, and the canary plaintext nowhere but in the files the user asked for."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .conftest import CANARY, SECRET_YAML, AgeKey, encrypt_file, run_cli

Setup = Callable[[Path, AgeKey, AgeKey], tuple[list[str], dict[str, str]]]


def _encrypted(work: Path, key: AgeKey) -> Path:
    path = work / "enc.yaml"
    if not path.exists():
        path.write_text(SECRET_YAML)
        encrypt_file(path, key.public)
    return path


def _tampered(work: Path, key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    path = _encrypted(work, key)
    path.write_text(path.read_text().replace("namespace: team-a", "namespace: team-b"))
    return ["decrypt", "enc.yaml"], {}


def _wrong_key(work: Path, key: AgeKey, other: AgeKey) -> tuple[list[str], dict[str, str]]:
    _encrypted(work, key)
    return ["decrypt", "enc.yaml"], {"SOPS_AGE_KEY_FILE": str(other.file)}


def _cut_value(work: Path, key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    path = _encrypted(work, key)
    doc = yaml.safe_load(path.read_text())
    value = doc["stringData"]["password"]
    doc["stringData"]["password"] = value.replace("data:", "data:AAAA", 1)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return ["decrypt", "enc.yaml"], {}


def _malformed(work: Path, key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    path = _encrypted(work, key)
    doc = yaml.safe_load(path.read_text())
    doc["stringData"]["password"] = "ENC[AES256_GCM,data:zz"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return ["decrypt", "enc.yaml"], {}


def _plain(work: Path, _key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    return ["decrypt", "secret.yaml"], {}


def _missing(_work: Path, _key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    return ["decrypt", "nope.yaml"], {}


def _not_utf8(work: Path, _key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    (work / "bin.yaml").write_bytes(b"a: \xff\xfe" + CANARY.encode())
    return ["encrypt", "bin.yaml", "--age", _key.public], {}


def _too_big(work: Path, key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    (work / "big.yaml").write_text("a: " + "x" * (5 * 1024 * 1024 + 10) + "\n")
    return ["encrypt", "big.yaml", "--age", key.public], {}


def _again(work: Path, key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    _encrypted(work, key)
    return ["encrypt", "enc.yaml", "--age", key.public, "-i"], {}


def _bad_json_value(work: Path, key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    _encrypted(work, key)
    return ["set", "enc.yaml", '["stringData"]["password"]', CANARY + "-not-json"], {}


def _broken_edit(work: Path, key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    _encrypted(work, key)
    script = work.parent / "breaker.py"
    script.write_text(
        "import sys\np = sys.argv[1]\nt = open(p).read()\n"
        "open(p, 'w').write(t + '\\n  bad: [\\n')\n"
    )
    return ["edit", "enc.yaml"], {"EDITOR": f"{sys.executable} {script}"}


def _dup_keys(work: Path, key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    (work / "dup.yaml").write_text(f"a: {CANARY}\na: {CANARY}2\n")
    return ["encrypt", "dup.yaml", "--age", key.public], {}


def _output_dir_missing(
    work: Path, key: AgeKey, _other: AgeKey
) -> tuple[list[str], dict[str, str]]:
    _encrypted(work, key)
    return ["decrypt", "enc.yaml", "-w", "missing/dir/out.yaml"], {}


def _alias_bomb(work: Path, key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    # nine lists of nine aliases each: 9**9 nodes once expanded, refused long before that
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(8):
        name, previous = chr(98 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    (work / "bomb.yaml").write_text("\n".join(lines) + "\n")
    return ["encrypt", "bomb.yaml", "--age", key.public], {}


def _unknown_type(work: Path, key: AgeKey, _other: AgeKey) -> tuple[list[str], dict[str, str]]:
    path = _encrypted(work, key)
    path.write_text(path.read_text().replace(",type:str]", ",type:blob]", 1))
    return ["decrypt", "enc.yaml"], {}


CASES: dict[str, tuple[Setup, str, str]] = {
    "alias-bomb": (_alias_bomb, "bomb.yaml", "aliases expand"),
    "unknown-type": (_unknown_type, "enc.yaml", "unknown ENC value type"),
    "tampered-metadata": (_tampered, "enc.yaml", "MAC"),
    "wrong-key": (_wrong_key, "enc.yaml", "no available key"),
    "cut-ciphertext": (_cut_value, "enc.yaml", ""),
    "malformed-enc": (_malformed, "enc.yaml", ""),
    "not-encrypted": (_plain, "secret.yaml", "not a SOPS document"),
    "missing-file": (_missing, "nope.yaml", "No such file"),
    "not-utf8": (_not_utf8, "bin.yaml", "not UTF-8"),
    "too-big": (_too_big, "big.yaml", "larger than"),
    "already-encrypted": (_again, "enc.yaml", "already encrypted"),
    "bad-json-value": (_bad_json_value, "enc.yaml", "not valid JSON"),
    "broken-edit": (_broken_edit, "enc.yaml", "invalid YAML"),
    "duplicate-keys": (_dup_keys, "dup.yaml", "duplicate key"),
    "output-dir-missing": (_output_dir_missing, "missing/dir/", "No such file"),
}


#: sops' exit status for the cases where it is not the generic 1 (cmd/sops/codes of sops 3.11).
SOPS_CODES = {
    "already-encrypted": 203,
    "bad-json-value": 7,
    "cut-ciphertext": 25,
    "duplicate-keys": 2,
    "missing-file": 100,
    "not-utf8": 2,
    "tampered-metadata": 51,
    "wrong-key": 128,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_failure_is_one_line_without_plaintext(
    case: str, secret_file: Path, work: Path, age_keys: list[AgeKey], use_key: AgeKey
) -> None:
    setup, file, reason = CASES[case]
    args, env = setup(work, use_key, age_keys[1])
    proc = run_cli(*args, cwd=work, env=env)
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == SOPS_CODES.get(case, 1), stderr
    assert proc.stdout == b""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: {file}"), stderr
    assert reason in lines[0]
    assert CANARY not in stderr
    _assert_no_canary_outside(work.parent, allowed={secret_file})


def _assert_no_canary_outside(root: Path, *, allowed: set[Path]) -> None:
    """The canary is nowhere on disk except the user's own plaintext (and our fake-input files)."""
    needle = CANARY.encode()
    for path in root.rglob("*"):
        if path.is_file() and path not in allowed and path.suffix != ".py":
            data = path.read_bytes()
            if path.name in ("dup.yaml", "bin.yaml"):
                continue  # the test's own malformed plaintext inputs
            assert needle not in data, f"plaintext found in {path}"
    # edit's memory-backed copy is checked by the edit tests, which know its path: scanning
    # /dev/shm here would race with other workers' editors holding the same canary.


def test_success_paths_leave_no_plaintext_behind(
    secret_file: Path, work: Path, use_key: AgeKey
) -> None:
    enc = work / "enc.yaml"
    assert run_cli("encrypt", "secret.yaml", "--age", use_key.public, "-w", "enc.yaml",
                   cwd=work).returncode == 0
    editor = work.parent / "noop.py"
    editor.write_text("import sys\nopen(sys.argv[1]).read()\n")
    steps = [
        ["set", "enc.yaml", '["stringData"]["user"]', '"user-b2"'],
        ["unset", "enc.yaml", '["stringData"]["port"]'],
        ["rotate", "enc.yaml", "-i"],
        ["edit", "enc.yaml"],
        ["verify", "enc.yaml"],
    ]
    for args in steps:
        proc = run_cli(*args, cwd=work, env={"EDITOR": f"{sys.executable} {editor}"})
        # an edit that changes nothing exits 200, as sops does
        assert proc.returncode == (200 if args[0] == "edit" else 0), proc.stderr
        assert CANARY.encode() not in proc.stdout + proc.stderr
    out = work / "asked.yaml"
    assert run_cli("decrypt", "enc.yaml", "-w", str(out), cwd=work).returncode == 0
    assert CANARY in out.read_text()
    assert enc.exists()
    _assert_no_canary_outside(work.parent, allowed={secret_file, out})
