"""The operations around ``-d``/``-e``: extract, unset, updatekeys, rotate and edit's re-encrypt.

Each file that one of them writes is opened by the real sops too, and the ciphertext of every value
is compared before and after, because "which values changed" is the promise of stable ciphertext.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.crypto.age import AgeIdentities
from sealed_gitops.crypto.sops import (
    decrypt_bytes,
    encrypt_bytes,
    extract,
    reencrypt_plain,
    rotate,
    unset_value,
    update_keys,
)
from sealed_gitops.errors import NoMatchingKey, SealedGitopsError

from .conftest import AgeKey, SopsRun

PLAIN = b"""\
db:
    user: admin
    password: s3cr3t-pw
    port: 5432
    ratio: 0.25
    enabled: true
hosts:
    - alpha
    - beta
note: |
    two
    lines
"""


def _values(encrypted: bytes) -> dict[str, Any]:
    """Every value of an encrypted file by its path, the ``sops`` metadata left out."""
    out: dict[str, Any] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if path or key != "sops":
                    walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
        else:
            out[path] = node

    walk(yaml.safe_load(encrypted), "")
    return out


def _meta(encrypted: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = yaml.safe_load(encrypted)["sops"]
    return meta


@pytest.fixture
def encrypted(age_keys: list[AgeKey]) -> bytes:
    return encrypt_bytes(PLAIN, key_groups=[[age_keys[0].recipient]], file="app.yaml")


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ('["db"]["password"]', b"s3cr3t-pw"),
        # sops prints a string raw and any other value as its store writes it: YAML adds \n
        ('["db"]["port"]', b"5432\n"),
        ('["db"]["ratio"]', b"0.25\n"),
        ('["db"]["enabled"]', b"true\n"),
        ('["hosts"]', b"- alpha\n- beta\n"),
        ('["hosts"][1]', b"beta"),
        ('["note"]', b"two\nlines\n"),
        ('["db"]', None),
    ],
)
def test_extract_prints_what_sops_prints(
    *, path: str, want: bytes | None, encrypted: bytes, identities: AgeIdentities,
    sops: SopsRun, tmp_path: Path,
) -> None:
    (tmp_path / "app.yaml").write_bytes(encrypted)
    ours = extract(encrypted, path, unwrapper=identities, file="app.yaml")
    theirs = sops("-d", "--extract", path, "app.yaml").stdout
    assert ours == theirs
    if want is not None:
        assert ours == want
    else:
        assert yaml.safe_load(ours)["password"] == "s3cr3t-pw"


def test_extract_of_a_missing_key_fails_without_values(
    encrypted: bytes, identities: AgeIdentities
) -> None:
    with pytest.raises(SealedGitopsError) as info:
        extract(encrypted, '["db"]["nope"]', unwrapper=identities, file="app.yaml")
    assert "s3cr3t-pw" not in str(info.value)


def test_unset_removes_one_key_and_keeps_every_other_ciphertext(
    *, encrypted: bytes, identities: AgeIdentities, sops: SopsRun, tmp_path: Path
) -> None:
    out = unset_value(encrypted, '["db"]["password"]', unwrapper=identities, file="app.yaml")
    before, after = _values(encrypted), _values(out)
    assert "/db/password" not in after
    del before["/db/password"]
    assert after == before
    (tmp_path / "app.yaml").write_bytes(out)
    plain = yaml.safe_load(sops("-d", "app.yaml").stdout)
    assert "password" not in plain["db"] and plain["db"]["user"] == "admin"


def test_update_keys_rewraps_the_same_data_key_for_the_new_recipients_only(
    *, encrypted: bytes, identities: AgeIdentities, age_keys: list[AgeKey], sops: SopsRun,
    tmp_path: Path,
) -> None:
    out = update_keys(
        encrypted, unwrapper=identities, key_groups=[[age_keys[1].recipient]], file="app.yaml"
    )
    # Same data key: every value keeps its exact ciphertext, and so do mac and lastmodified.
    assert _values(out) == _values(encrypted)
    assert _meta(out)["mac"] == _meta(encrypted)["mac"]
    assert [s["recipient"] for s in _meta(out)["age"]] == [age_keys[1].public]
    # The removed recipient can no longer open the new file's stanza list, with ours or sops.
    with pytest.raises(NoMatchingKey):
        decrypt_bytes(out, unwrapper=identities, file="app.yaml")
    (tmp_path / "app.yaml").write_bytes(out)
    assert sops("-d", "app.yaml", check=False).returncode != 0
    new_owner = AgeIdentities.from_text(age_keys[1].file.read_text())
    assert decrypt_bytes(out, unwrapper=new_owner, file="app.yaml") == decrypt_bytes(
        encrypted, unwrapper=identities, file="app.yaml"
    )
    assert sops("-d", "app.yaml", key_files=[age_keys[1].file]).stdout == PLAIN


def test_rotate_changes_every_ciphertext_and_sops_still_decrypts(
    *, encrypted: bytes, identities: AgeIdentities, age_keys: list[AgeKey], sops: SopsRun,
    tmp_path: Path,
) -> None:
    out = rotate(encrypted, unwrapper=identities, key_groups=[[age_keys[0].recipient]],
                 file="app.yaml")
    before, after = _values(encrypted), _values(out)
    assert before.keys() == after.keys()
    assert all(before[k] != after[k] for k in before)
    assert _meta(out)["age"][0]["enc"] != _meta(encrypted)["age"][0]["enc"]
    (tmp_path / "app.yaml").write_bytes(out)
    assert sops("-d", "app.yaml").stdout == PLAIN
    assert decrypt_bytes(out, unwrapper=identities, file="app.yaml") == PLAIN


def test_rotate_without_recipients_is_refused(
    encrypted: bytes, identities: AgeIdentities
) -> None:
    with pytest.raises(SealedGitopsError):
        rotate(encrypted, unwrapper=identities, file="app.yaml")


def test_reencrypt_plain_returns_none_when_nothing_changed(
    encrypted: bytes, identities: AgeIdentities
) -> None:
    plain = decrypt_bytes(encrypted, unwrapper=identities, file="app.yaml")
    assert reencrypt_plain(encrypted, plain, unwrapper=identities, file="app.yaml") is None


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        (b"password: s3cr3t-pw", b"password: n3w-pw", {"/db/password"}),
        (b"port: 5432", b"port: 5433", {"/db/port"}),
        (b"    - beta", b"    - gamma", {"/hosts[1]"}),
    ],
)
def test_reencrypt_plain_changes_only_the_edited_values(
    *, old: bytes, new: bytes, changed: set[str], encrypted: bytes, identities: AgeIdentities,
    sops: SopsRun, tmp_path: Path,
) -> None:
    edited = PLAIN.replace(old, new)
    out = reencrypt_plain(encrypted, edited, unwrapper=identities, file="app.yaml")
    assert out is not None
    before, after = _values(encrypted), _values(out)
    assert {k for k in before if before[k] != after.get(k)} == changed
    assert _meta(out)["mac"] != _meta(encrypted)["mac"]
    (tmp_path / "app.yaml").write_bytes(out)
    assert sops("-d", "app.yaml").stdout == edited


def test_json_files_keep_their_format_through_every_operation(
    *, age_keys: list[AgeKey], identities: AgeIdentities, sops: SopsRun, tmp_path: Path
) -> None:
    plain = json.dumps({"a": {"b": "secret-value", "c": 1, "d": 2.5}}).encode()
    enc = encrypt_bytes(plain, key_groups=[[age_keys[0].recipient]], file="x.json")
    out = unset_value(enc, '["a"]["c"]', unwrapper=identities, file="x.json")
    out = rotate(out, unwrapper=identities, key_groups=[[age_keys[0].recipient]], file="x.json")
    (tmp_path / "x.json").write_bytes(out)
    assert json.loads(sops("-d", "x.json").stdout) == {"a": {"b": "secret-value", "d": 2.5}}
    for path in ('["a"]["b"]', '["a"]', '["a"]["d"]'):
        theirs = sops("-d", "--extract", path, "x.json").stdout
        assert extract(out, path, unwrapper=identities, file="x.json") == theirs


DUPLICATES = b"""\
hosts:
    - same
    - same
    - other
    - same
port: 1
"""


@pytest.mark.parametrize("maker", ["ours", "sops"])
def test_equal_values_under_one_path_each_keep_their_own_ciphertext(
    *, maker: str, age_keys: list[AgeKey], identities: AgeIdentities, sops: SopsRun,
    tmp_path: Path,
) -> None:
    # List items add nothing to the additional data, so three "same" items share one (path,
    # plaintext) pair; each must still come back with its own ciphertext after an unrelated edit.
    if maker == "ours":
        encrypted = encrypt_bytes(DUPLICATES, key_groups=[[age_keys[0].recipient]], file="d.yaml")
    else:
        (tmp_path / "d.yaml").write_bytes(DUPLICATES)
        encrypted = sops("-e", "--age", age_keys[0].public, "d.yaml").stdout
    edited = DUPLICATES.replace(b"port: 1", b"port: 2") + b"more:\n    - same\n"
    out = reencrypt_plain(encrypted, edited, unwrapper=identities, file="d.yaml")
    assert out is not None
    before, after = _values(encrypted), _values(out)
    assert {k for k in before if before[k] != after.get(k)} == {"/port"}
    hosts = [after[f"/hosts[{i}]"] for i in range(4)]
    assert len(set(hosts)) == 4, "two equal values were given one ciphertext"
    (tmp_path / "out.yaml").write_bytes(out)
    assert sops("-d", "out.yaml").stdout == edited
