"""Rewriting a published binary-store file keeps it a binary-store file, as sops does.

Why: sops picks the binary store for any name it does not know (``example.txt``,
``file.properties``, Flux's ``token.encrypted``) and keeps the JSON envelope on every rewrite;
Flux reads such files by the same rule. The library's rewrite operations (``set``, ``unset``,
``rotate``, ``updatekeys``, the edit re-encryption), called with the file's name and no explicit
store, read the envelope as YAML and wrote it back as YAML: a file neither sops nor Flux opens
any more. And a rewrite kept or dropped ``unencrypted_suffix`` unlike sops (sops writes no rule
when it first encrypts a binary file, then the default ``_unencrypted`` on every rewrite).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyrage
import pytest

from sealed_gitops.audit.merge import merge_sops
from sealed_gitops.crypto.age import AgeIdentities, AgeRecipient
from sealed_gitops.crypto.sops import (
    Unwrapper,
    decrypt_bytes,
    encrypt_bytes,
    extract,
    reencrypt_plain,
    rotate,
    set_value,
    stored_format,
    update_keys,
)
from sealed_gitops.keys.reencrypt import file_groups, replace_key_groups
from sealed_gitops.testing.sops_tool import find_sops, run_sops
from tests.compat.vectors import BY_ID, Vector, opened_with

BINARY = [
    BY_ID["sops:example.txt"],
    BY_ID["helm-secrets:tests/assets/values/sops/files/file.properties"],
    BY_ID["helm-secrets:tests/assets/values/sops/secrets.trailing-newline.raw"],
    BY_ID["sops-nix:pkgs/sops-install-secrets/test-assets/secrets.bin"],
    BY_ID["terraform-provider-sops:sops/test-fixtures/raw.txt"],
]

_NEW = pyrage.x25519.Identity.generate()
_GROUPS = [[AgeRecipient(str(_NEW.to_public()))]]

Rewrite = Callable[[bytes, Unwrapper, str], bytes]

REWRITES: dict[str, Rewrite] = {
    "set": lambda data, ring, name: set_value(
        data, '["data"]', '"replaced\\n"', unwrapper=ring, file=name
    ),
    "rotate": lambda data, ring, name: rotate(data, unwrapper=ring, key_groups=_GROUPS, file=name),
    "updatekeys": lambda data, ring, name: update_keys(
        data, unwrapper=ring, key_groups=_GROUPS, file=name
    ),
    "edit": lambda data, ring, name: (
        reencrypt_plain(data, b"edited\n", unwrapper=ring, file=name) or b""
    ),
}


def envelope(data: bytes) -> dict[str, Any]:
    """The JSON envelope sops expects; fails the test if the file is anything else."""
    value = json.loads(data)
    assert isinstance(value, dict)
    assert sorted(value) == ["data", "sops"]
    return value


@pytest.mark.parametrize("operation", sorted(REWRITES))
@pytest.mark.parametrize("vector", BINARY, ids=[v.id for v in BINARY])
def test_rewrite_keeps_the_binary_envelope(vector: Vector, operation: str, tmp_path: Path) -> None:
    name = Path(vector.path).name
    rewrapped = operation in ("rotate", "updatekeys")  # now wrapped for _NEW alone
    with opened_with(vector.key) as keys:
        ring = keys.keyring()
        try:
            before = decrypt_bytes(vector.encrypted_bytes(), unwrapper=ring, file=name)
            out = REWRITES[operation](vector.encrypted_bytes(), ring, name)
            opener: Unwrapper = AgeIdentities.from_text(str(_NEW)) if rewrapped else ring
            want = {"set": b"replaced\n", "edit": b"edited\n"}.get(operation, before)
            assert decrypt_bytes(out, unwrapper=opener, file=name) == want
        finally:
            ring.close()
        # sops keeps (or, on a file without one, writes) the default rule on every rewrite.
        assert envelope(out)["sops"].get("unencrypted_suffix") == "_unencrypted"
        if find_sops() is None:
            return
        env = keys.sops_env()
        if rewrapped:
            (tmp_path / "new.txt").write_text(f"{_NEW}\n")
            env["SOPS_AGE_KEY_FILE"] = str(tmp_path / "new.txt")
        target = tmp_path / name
        target.write_bytes(out)
        assert run_sops(["-d", str(target)], env=env, cwd=str(tmp_path)).stdout == want


@pytest.mark.parametrize("vector", BINARY, ids=[v.id for v in BINARY])
def test_extract_reads_the_binary_envelope(vector: Vector) -> None:
    name = Path(vector.path).name
    with opened_with(vector.key) as keys:
        ring = keys.keyring()
        try:
            whole = decrypt_bytes(vector.encrypted_bytes(), unwrapper=ring, file=name)
            # sops decrypt --extract '["data"]' on a binary file prints the raw bytes.
            assert extract(vector.encrypted_bytes(), '["data"]', unwrapper=ring, file=name) == whole
        finally:
            ring.close()


def test_first_encryption_of_a_binary_file_writes_no_rule() -> None:
    """sops 3.11 ignores rules for the binary store when it first encrypts a file."""
    out = encrypt_bytes(b"\x00raw bytes\n", key_groups=_GROUPS, file="blob.bin")
    assert "unencrypted_suffix" not in envelope(out)["sops"]
    ring = AgeIdentities.from_text(str(_NEW))
    assert decrypt_bytes(out, unwrapper=ring, file="blob.bin") == b"\x00raw bytes\n"


@pytest.mark.parametrize(
    ("name", "data", "fmt", "want"),
    [
        ("example.txt", b'{"data": "ENC[...]", "sops": {}}', None, "binary"),
        ("token.encrypted", b'{\n\t"data": "x",\n\t"sops": {"mac": ""}\n}', None, "binary"),
        # a manifest kustomize named oddly stays YAML (the manifest rule), as before
        ("secret", b"apiVersion: v1\nkind: Secret\nsops: {}\n", None, "yaml"),
        ("app.yaml", b'{"data": "x", "sops": {}}', None, "yaml"),
        ("app.json", b'{"data": "x", "sops": {}}', None, "json"),
        ("x.env", b"a=b\n", None, "dotenv"),
        ("example.txt", b'{"data": "x", "sops": {}}', "json", "json"),
        (None, b'{"data": "x", "sops": {}}', None, "yaml"),
    ],
)
def test_stored_format(name: str | None, data: bytes, fmt: str | None, want: str) -> None:
    assert stored_format(data, file=name, fmt=fmt) == want


@pytest.mark.parametrize("vector", BINARY, ids=[v.id for v in BINARY])
def test_reencrypt_and_merge_keep_the_binary_envelope(vector: Vector, tmp_path: Path) -> None:
    """keys/reencrypt (the CLI's half of a re-encryption: the key stanzas replaced, values and
    MAC as they were) and audit/merge (the git merge driver) wrote a binary-store file back as
    YAML, found by the published-fixture sweep."""
    name = Path(vector.path).name
    data = vector.encrypted_bytes()
    with opened_with(vector.key) as keys:
        ring = keys.keyring()
        try:
            before = decrypt_bytes(data, unwrapper=ring, file=name)
            restanza = replace_key_groups(data, file_groups(data, file=name), file=name)
            merged = merge_sops(data, data, data, unwrapper=ring, file=name)
            for out in (restanza, merged):
                envelope(out)
                assert decrypt_bytes(out, unwrapper=ring, file=name) == before
        finally:
            ring.close()
        if find_sops() is None:
            return
        for label, out in (("restanza", restanza), ("merged", merged)):
            target = tmp_path / label / name
            target.parent.mkdir()
            target.write_bytes(out)
            done = run_sops(["-d", str(target)], env=keys.sops_env(), cwd=str(target.parent))
            assert done.stdout == before, label
