"""Sealing keys for the sealed-secret tests.

RSA key generation is the slow part of this area (a 4096-bit key takes a second or more), so keys
are made once per session and shared; every test that writes files gets its own tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sealed_gitops.crypto.sealing_keys import (
    SealingKey,
    certificate_pem,
    generate_sealing_key,
    private_key_pem,
)


@pytest.fixture(scope="session")
def key_a() -> SealingKey:
    return generate_sealing_key(bits=2048)


@pytest.fixture(scope="session")
def key_b() -> SealingKey:
    return generate_sealing_key(bits=2048)


@pytest.fixture(scope="session")
def key_4096() -> SealingKey:
    return generate_sealing_key()


@pytest.fixture(scope="session")
def key_files(
    tmp_path_factory: pytest.TempPathFactory, key_a: SealingKey, key_b: SealingKey
) -> dict[str, Path]:
    """PEM files: cert and key of ``key_a`` (PKCS#1) and ``key_b`` (PKCS#8)."""
    root = tmp_path_factory.mktemp("sealing-keys")
    files = {
        "cert_a": (root / "a.crt", certificate_pem(key_a.certificate)),
        "key_a": (root / "a.key", private_key_pem(key_a.private_key)),
        "cert_b": (root / "b.crt", certificate_pem(key_b.certificate)),
        "key_b": (root / "b.key", private_key_pem(key_b.private_key, pkcs8=True)),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {name: path for name, (path, _) in files.items()}
