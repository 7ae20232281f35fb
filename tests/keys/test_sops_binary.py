"""The sops fallback backend: whole documents through the real sops, stdin/stdout only."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pyrage
import pytest
import yaml

from sealed_gitops import redact
from sealed_gitops.errors import (
    ConfigError,
    MacMismatch,
    NoMatchingKey,
    NotEncryptedError,
    SealedGitopsError,
)
from sealed_gitops.keys.sops_binary import SopsBinary, locate_sops, needs_sops_binary

DOCS = {
    "yaml": b"apiVersion: v1\nkind: Secret\nstringData:\n  password: fallback-canary-7781\n"
    b"  port: 5432\nlist:\n  - a\n  - b\n",
    "json": json.dumps({"password": "fallback-canary-7782", "n": 1.5, "ok": True}).encode(),
    "dotenv": b"PASSWORD=fallback-canary-7783\nUSER=admin\n",
}


@pytest.fixture(scope="module")
def age_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    identity = pyrage.x25519.Identity.generate()
    path = tmp_path_factory.mktemp("age") / "keys.txt"
    path.write_text(f"{identity}\n")
    return path, str(identity.to_public())


@pytest.fixture
def sops(
    age_key: tuple[Path, str], sops_env: dict[str, str], tmp_path: Path
) -> tuple[SopsBinary, Path]:
    """sops with the test age key and a private, watched TMPDIR."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**sops_env, "SOPS_AGE_KEY_FILE": str(age_key[0]), "TMPDIR": str(tmpdir),
           "HOME": str(tmp_path)}
    return SopsBinary(env=env), tmpdir


def parse(fmt: str, data: bytes) -> object:
    if fmt == "json":
        return json.loads(data)
    if fmt == "yaml":
        return yaml.safe_load(data)
    return sorted(data.decode().splitlines())


@pytest.mark.parametrize("fmt", sorted(DOCS))
def test_round_trip_through_stdin_and_stdout(
    sops: tuple[SopsBinary, Path], age_key: tuple[Path, str], fmt: str, tmp_path: Path
) -> None:
    binary, tmpdir = sops
    plain = DOCS[fmt]
    encrypted = binary.encrypt(plain, fmt=fmt, key_args=["--age", age_key[1]], cwd=tmp_path)
    assert b"canary" not in encrypted
    assert b"ENC[AES256_GCM" in encrypted
    decrypted = binary.decrypt(encrypted, fmt=fmt)
    assert parse(fmt, decrypted) == parse(fmt, plain)
    # Nothing was written to a temporary file, and no file appeared next to the work dir.
    assert list(tmpdir.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]
    # What came back is registered with the redaction layer.
    canary = plain.decode().split("canary-")[1][:4]
    assert redact.redact(f"x fallback-canary-{canary} y") == f"x {redact.MASK} y"


def test_output_format_can_differ(
    sops: tuple[SopsBinary, Path], age_key: tuple[Path, str]
) -> None:
    binary, _ = sops
    encrypted = binary.encrypt(DOCS["yaml"], fmt="yaml", key_args=["--age", age_key[1]])
    as_json = binary.decrypt(encrypted, fmt="yaml", output_fmt="json")
    assert json.loads(as_json) == yaml.safe_load(DOCS["yaml"])


def test_creation_rules_are_matched_against_the_filename(
    sops: tuple[SopsBinary, Path], age_key: tuple[Path, str], tmp_path: Path
) -> None:
    binary, _ = sops
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: secret\\.yaml$\n    age: {age_key[1]}\n"
        "    encrypted_regex: ^(stringData)$\n"
    )
    out = binary.encrypt(DOCS["yaml"], fmt="yaml", filename="app/secret.yaml", cwd=tmp_path)
    doc = yaml.safe_load(out)
    assert doc["kind"] == "Secret"
    assert doc["stringData"]["password"].startswith("ENC[")
    assert doc["sops"]["encrypted_regex"] == "^(stringData)$"


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda enc: b"plain: file\n", NotEncryptedError),
        (lambda enc: enc.replace(b"mac: ENC[AES256_GCM,data:", b"mac: ENC[AES256_GCM,data:AA"),
         MacMismatch),
    ],
    ids=["not-encrypted", "mac"],
)
def test_errors_map_to_the_error_tree(
    sops: tuple[SopsBinary, Path],
    age_key: tuple[Path, str],
    mutate: Callable[[bytes], bytes],
    error: type[Exception],
) -> None:
    binary, _ = sops
    encrypted = binary.encrypt(DOCS["yaml"], fmt="yaml", key_args=["--age", age_key[1]])
    with pytest.raises(error) as caught:
        binary.decrypt(mutate(encrypted), fmt="yaml", filename="secret.yaml")
    assert isinstance(caught.value, SealedGitopsError)
    assert caught.value.file == "secret.yaml"
    assert "canary" not in str(caught.value)


def test_without_a_key_it_is_no_matching_key(
    age_key: tuple[Path, str], sops_env: dict[str, str], tmp_path: Path
) -> None:
    with_key = SopsBinary(env={**sops_env, "SOPS_AGE_KEY_FILE": str(age_key[0])})
    encrypted = with_key.encrypt(DOCS["json"], fmt="json", key_args=["--age", age_key[1]])
    keyless = SopsBinary(env={**sops_env, "HOME": str(tmp_path)})
    with pytest.raises(NoMatchingKey):
        keyless.decrypt(encrypted, fmt="json")


def test_encrypt_errors_do_not_quote_the_input(
    sops: tuple[SopsBinary, Path], age_key: tuple[Path, str]
) -> None:
    binary, _ = sops
    broken = b"password: [unclosed fallback-canary-9999\n"
    with pytest.raises(SealedGitopsError) as caught:
        binary.encrypt(broken, fmt="yaml", key_args=["--age", age_key[1]])
    assert "canary" not in str(caught.value)


def test_locate_and_version() -> None:
    path = locate_sops()
    assert os.access(path, os.X_OK)
    assert SopsBinary(path=path).version().startswith("sops 3.")


def test_unknown_format_is_a_config_error(sops: tuple[SopsBinary, Path]) -> None:
    with pytest.raises(ConfigError):
        sops[0].decrypt(b"", fmt="toml")


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ([["age"]], False),
        ([["kms"]], True),
        ([["kms", "age"]], False),
        ([["age"], ["gcp_kms", "azure_kv"]], True),
        ([], False),
    ],
)
def test_needs_sops_binary(groups: list[list[str]], expected: bool) -> None:
    assert needs_sops_binary(groups) is expected
