"""Fixtures for the SOPS engine tests: age keys and the real sops binary (shared, from
``tests/conftest_tools.py``), and sops run in a clean folder with key 0 as the identity."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sealed_gitops.crypto.age import AgeIdentities
from sealed_gitops.testing.sops_tool import run_sops
from tests.conftest_tools import AgeKey, age_keys, sops_binary

__all__ = ["AgeKey", "age_keys", "sops_binary"]


@pytest.fixture(scope="session")
def identities(age_keys: list[AgeKey]) -> AgeIdentities:
    return AgeIdentities.from_text(age_keys[0].file.read_text())


SopsRun = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def sops(sops_binary: str, tmp_path: Path, age_keys: list[AgeKey]) -> SopsRun:
    """Run sops in an empty temporary folder (no stray .sops.yaml) with key 0 as identity."""

    def run(*args: str, key_files: list[Path] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
        files = key_files or [age_keys[0].file]
        combined = tmp_path / "identities.txt"
        combined.write_text("".join(f.read_text() for f in files))
        env = {"SOPS_AGE_KEY_FILE": str(combined), "HOME": str(tmp_path)}
        return run_sops(list(args), env=env, cwd=str(tmp_path), **kwargs)  # type: ignore[arg-type]

    return run
