"""Helpers for the render-side Flux tests (transformers, leftover ciphertext, isolate): a scratch
repository, files encrypted by the REAL sops, and the build run through the pipeline and the CLI.

Plain functions, imported explicitly by the test files (fixtures live in those files).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.render.decrypt import DecryptionKeys
from tests.conftest_tools import AgeKey

#: the layout Flux's documentation tells users to write
FLUX_REGEX = "^(data|stringData)$"


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sops_encrypt(
    sops: str,
    path: Path,
    *,
    age: AgeKey,
    regex: str | None = FLUX_REGEX,
    input_type: str | None = None,
    mac_only_encrypted: bool = False,
) -> None:
    """Encrypt ``path`` in place with the real sops binary for ``age``."""
    args = [sops, "encrypt", "--age", age.public]
    if regex:
        args += ["--encrypted-regex", regex]
    if input_type:
        args += ["--input-type", input_type, "--output-type", input_type]
    if mac_only_encrypted:
        args.append("--mac-only-encrypted")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SOPS_DISABLE_VERSION_CHECK": "true"}
    subprocess.run(
        [*args, "--in-place", str(path)],
        check=True,
        capture_output=True,
        env=env,
        cwd=path.parent,
        timeout=60,
    )


def isolate_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key from the developer's environment (nor an editor); HOME and the cwd inside the test
    folder. Returns the cwd."""
    for name in list(os.environ):
        if name.startswith(("SOPS_", "VAULT_", "SEALED_GITOPS_")) or name in (
            "GNUPGHOME",
            "EDITOR",
            "VISUAL",
            "XDG_CONFIG_HOME",
        ):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SOPS_DISABLE_VERSION_CHECK", "true")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def keys_for(age: AgeKey) -> DecryptionKeys:
    return DecryptionKeys(
        sops=discover_keyring(age_identity_files=[age.file], use_environment=False)
    )


def cli_build(root: Path, path: str, age: AgeKey, *extra: str) -> subprocess.CompletedProcess[str]:
    """``sealed-gitops build`` as a user runs it (no user keys from the environment)."""
    (root / ".git").mkdir(exist_ok=True)  # the repository root, as split_root finds it
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root.parent / "home"),
        "SOPS_DISABLE_VERSION_CHECK": "true",
    }
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "sealed-gitops"),
            "build",
            str(root / path),
            "--age-identity",
            str(age.file),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {name}
type: Opaque
stringData:
  password: {value}
  username: admin
"""
