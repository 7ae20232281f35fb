"""The one-file commands import only what they use (issue 16, Must 1: start-up).

A timing assertion would be flaky on a shared machine, and what makes ``decrypt`` of one file slow
is import time: so each command runs for real (exit code 0, on a real SOPS file) in a fresh
interpreter through the console script's entry point, and the test lists ``sys.modules`` after it.
The libraries of the cluster and Git faces (GitPython, the kubernetes client, kopf, aiohttp, rich,
hvac) must be absent, and so must the pieces that were moved to where they are used: python-gnupg
(only a PGP key starts gpg), ``cryptography.x509`` (only sealing-key certificates) and RE2 for a
file whose metadata names no pattern. The figures themselves: ``benchmarks/startup.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import SECRET_YAML, AgeKey

#: Top-level packages no command of this file may import (the issue's list).
FORBIDDEN = ("git", "kopf", "kubernetes", "aiohttp", "rich", "hvac")

#: Modules the SOPS commands stopped importing at start-up; each is imported where it is used.
#: (age_pq and age_format: only for a post-quantum key; these files have X25519 keys.)
MOVED = (
    "gnupg",
    "cryptography.x509",
    "sealed_gitops.crypto.age_pq",
    "sealed_gitops.crypto.age_format",
)

#: Runs the real entry point (what ``.venv/bin/sealed-gitops`` calls) and writes the exit code and
#: the loaded modules to the file named first. ``--preload M`` imports M first: the control that
#: shows the check sees a module when one is there.
PROBE = """
import json, sys
out, args = sys.argv[1], sys.argv[2:]
if args[:1] == ["--preload"]:
    __import__(args[1])
    args = args[2:]
sys.argv = ["sealed-gitops", *args]
from sealed_gitops.cli.main import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code or 0
with open(out, "w") as handle:
    json.dump({"code": code, "modules": sorted(sys.modules)}, handle)
"""


def _modules_after(*args: str, cwd: Path, key: AgeKey) -> set[str]:
    """The modules loaded by one run of the CLI; the run itself must succeed."""
    report = cwd / "modules.json"
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(key.file)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    result = json.loads(report.read_text())
    assert result["code"] == 0, done.stderr.decode(errors="replace")
    return set(result["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (a package counts with its submodules) is in ``modules``."""
    return sorted(
        name for name in names if any(m == name or m.startswith(name + ".") for m in modules)
    )


@pytest.fixture
def files(work: Path, age_keys: list[AgeKey]) -> dict[str, Path]:
    """A plaintext Secret, its SOPS file (made by our encrypt, age), a copy and a one-file dir."""
    plain = work / "plain.yaml"
    plain.write_text(SECRET_YAML)
    encrypted = work / "secret.enc.yaml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sealed_gitops",
            "encrypt",
            "--age",
            age_keys[0].public,
            "--encrypted-regex",
            "^(data|stringData)$",
            str(plain),
        ],
        cwd=work,
        capture_output=True,
        timeout=120,
        check=True,
    )
    encrypted.write_bytes(done.stdout)
    copy = work / "copy.enc.yaml"
    shutil.copy(encrypted, copy)
    one = work / "one"
    one.mkdir()
    shutil.copy(encrypted, one / "secret.yaml")
    plain_noregex = work / "plain-all.yaml"
    plain_noregex.write_text("password: hunter2\n")
    no_regex = work / "all.enc.yaml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sealed_gitops",
            "encrypt",
            "--age",
            age_keys[0].public,
            str(plain_noregex),
        ],
        cwd=work,
        capture_output=True,
        timeout=120,
        check=True,
    )
    no_regex.write_bytes(done.stdout)
    return {"plain": plain, "encrypted": encrypted, "copy": copy, "one": one, "no_regex": no_regex}


COMMANDS: dict[str, list[str]] = {
    "decrypt": ["decrypt", "{encrypted}"],
    "encrypt": ["encrypt", "--age", "{recipient}", "{plain}"],
    "set": ["set", "{copy}", '["stringData"]["password"]', '"changed"'],
    "verify": ["verify", "{encrypted}"],
    "build": ["build", "{one}", "--show-secrets"],
    "--help": ["--help"],
    "--version": ["--version"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_one_file_command_imports_no_cluster_git_or_ui_library(
    command: str, files: dict[str, Path], age_keys: list[AgeKey], work: Path
) -> None:
    values = {name: str(path) for name, path in files.items()}
    args = [a.format(recipient=age_keys[0].public, **values) for a in COMMANDS[command]]
    modules = _modules_after(*args, cwd=work, key=age_keys[0])
    assert _loaded(modules, FORBIDDEN) == []
    if command in ("decrypt", "encrypt", "set", "verify"):
        assert _loaded(modules, MOVED) == []
    if command in ("decrypt", "encrypt", "set", "verify"):
        # the control that the command did its work: the SOPS engine was loaded
        assert "sealed_gitops.crypto.sops.document" in modules
    if command == "decrypt":
        # to stdout: no file is written, so no tempfile (and its shutil, bz2, lzma)
        assert "tempfile" not in modules
    if command == "verify":
        # verify reads files with render.loader only; render.build (kustomize) stays unloaded
        assert "sealed_gitops.render.build" not in modules


def test_decrypt_of_a_file_without_patterns_needs_no_re2(
    files: dict[str, Path], age_keys: list[AgeKey], work: Path
) -> None:
    modules = _modules_after("decrypt", str(files["no_regex"]), cwd=work, key=age_keys[0])
    assert "sealed_gitops.crypto.sops.document" in modules
    assert _loaded(modules, ("re2",)) == []


def test_the_post_quantum_prefixes_crypto_age_repeats_are_age_pqs() -> None:
    """crypto/age tells a post-quantum key by prefix without importing age_pq: same prefixes."""
    from sealed_gitops.crypto import age, age_pq

    assert age._PQ_PREFIX == age_pq.IDENTITY_PREFIX
    assert age._PQ_RECIPIENT_PREFIX == age_pq.RECIPIENT_PREFIX


def test_the_check_sees_a_module_that_is_loaded(
    files: dict[str, Path], age_keys: list[AgeKey], work: Path
) -> None:
    """Control: with ``rich`` imported before the command, the same check reports it."""
    modules = _modules_after(
        "--preload", "rich", "decrypt", str(files["encrypted"]), cwd=work, key=age_keys[0]
    )
    assert _loaded(modules, FORBIDDEN) == ["rich"]
