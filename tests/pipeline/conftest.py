"""Fixtures for the pipeline tests: an age key, the real sops, a sealing key and a repo builder."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from sealed_gitops.crypto.sealing_keys import SealingKey, certificate_pem, generate_sealing_key
from tests.conftest_tools import AgeKey, age_keys, sops_binary

__all__ = ["AgeKey", "age_keys", "sops_binary"]


@pytest.fixture(scope="session")
def age_key(age_keys: list[AgeKey]) -> AgeKey:
    return age_keys[0]


@pytest.fixture(scope="session")
def other_age_key(age_keys: list[AgeKey]) -> AgeKey:
    return age_keys[1]


@pytest.fixture(scope="session")
def sealing_key() -> SealingKey:
    return generate_sealing_key(bits=2048)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user keys leak into a test: empty HOME, no SOPS_* or VAULT_* variables."""
    for name in list(os.environ):
        if name.startswith(("SOPS_", "VAULT_")) or name == "GNUPGHOME":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("SOPS_DISABLE_VERSION_CHECK", "true")


Writer = Callable[..., Path]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


@pytest.fixture
def write(repo: Path) -> Writer:
    """Write manifests into the repo: ``write("deploy/x.yaml", obj, ...)``."""

    def _write(rel: str, *objects: dict[str, object]) -> Path:
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        return path

    return _write


@pytest.fixture
def sops_encrypt(sops_binary: str, age_key: AgeKey) -> Callable[[Path], None]:
    """Encrypt a file in place with the REAL sops for the test's age key."""

    def _encrypt(path: Path, *, recipient: str | None = None, everything: bool = False) -> None:
        """``everything`` encrypts metadata too, so an object's name is known only after
        decryption; by default only data/stringData are, as users do."""
        env = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "true"}
        only = [] if everything else ["--encrypted-regex", "^(data|stringData)$"]
        age = ["--age", recipient or age_key.public]
        subprocess.run(
            [sops_binary, "encrypt", *age, *only, "--in-place", str(path)],
            check=True,
            env=env,
            capture_output=True,
            cwd=path.parent,
        )

    return _encrypt


def secret(name: str, namespace: str = "team-a", **values: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": dict(values),
    }


def config_map(name: str, namespace: str = "team-a", **values: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": dict(values),
    }


def cert_file(tmp: Path, key: SealingKey) -> Path:
    path = tmp / "cert.pem"
    path.write_bytes(certificate_pem(key.certificate))
    return path
