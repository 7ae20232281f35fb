"""Files made by the real sops decrypt with ours, and files made by ours decrypt with sops."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealed_gitops.crypto.age import AgeIdentities
from sealed_gitops.crypto.sops import (
    Rules,
    decrypt_bytes,
    decrypt_document,
    encrypt_bytes,
    set_value,
)

from .conftest import AgeKey, SopsRun

YAML_DOC = """\
# top comment
apiVersion: v1
kind: Secret
metadata:
    name: demo
data:
    # inner comment
    password: aGVsbG8=
    num: 12
    fl: 0.1
    big: 1e21
    small: 1e-7
    neg: -0.0
    negative: -12.5
    b: true
    f: false
    e: ""
    "n": null
    unicode: "ünïcødé ✓ 日本"
    multi: |
        line1
        line2
    list:
        - a
        - 2
        # in list
        - x: "y"
    nested:
        deep: ok
        deeper:
            deepest: 3
    quoted: "true"
    colon: "a: b"
# trailing
"""

MULTI_DOC = "first: 1\nsecret: one\n---\nsecond: 2\nsecret: two\n"

JSON_DOC = """{
    "a": "x", "n": 1.5, "l": [1, "two", {"k": true}], "u": "ünï <&>", "e": "", "z": null,
    "i": 123456789012, "f": 1.0, "g": 1e21, "h": -0.0, "ex": 1e-7, "emptyo": {}, "emptyl": [],
    "multi": "line1\\nline2\\n"
}
"""

DOCS = [("doc.yaml", YAML_DOC), ("multi.yaml", MULTI_DOC), ("doc.json", JSON_DOC)]


@pytest.mark.parametrize(("name", "text"), DOCS)
def test_sops_made_files_decrypt_with_ours_to_the_same_bytes(
    *, sops: SopsRun, tmp_path: Path, age_keys: list[AgeKey], identities: AgeIdentities, name: str,
    text: str,
) -> None:
    (tmp_path / name).write_text(text)
    enc = sops("-e", "--age", age_keys[0].public, name).stdout
    (tmp_path / f"enc.{name}").write_bytes(enc)
    theirs = sops("-d", f"enc.{name}").stdout
    ours = decrypt_bytes(enc, unwrapper=identities, file=name)
    assert ours == theirs


@pytest.mark.parametrize(("name", "text"), DOCS)
def test_our_files_decrypt_with_sops(
    *, sops: SopsRun, tmp_path: Path, age_keys: list[AgeKey], identities: AgeIdentities, name: str,
    text: str,
) -> None:
    enc = encrypt_bytes(text.encode(), key_groups=[[age_keys[0].recipient]], file=name)
    (tmp_path / f"enc.{name}").write_bytes(enc)
    theirs = sops("-d", f"enc.{name}").stdout
    assert theirs == decrypt_bytes(enc, unwrapper=identities, file=name)


RULES = [
    ("--encrypted-regex", "^(password|deep)$", Rules(encrypted_regex="^(password|deep)$")),
    ("--unencrypted-regex", "^num$", Rules(unencrypted_regex="^num$")),
    ("--encrypted-suffix", "_secret", Rules(encrypted_suffix="_secret")),
    ("--unencrypted-suffix", "_plain", Rules(unencrypted_suffix="_plain")),
    ("--encrypted-comment-regex", "sops:enc", Rules(encrypted_comment_regex="sops:enc")),
    ("--unencrypted-comment-regex", "sops:plain", Rules(unencrypted_comment_regex="sops:plain")),
    ("--mac-only-encrypted", "", Rules(unencrypted_suffix="_plain", mac_only_encrypted=True)),
]

RULES_DOC = """\
password: p4ss
num: 7
token_secret: abc
name_plain: visible
# sops:enc
enc_by_comment: hidden
# sops:plain
plain_by_comment: shown
nested:
    deep: value
    other_secret: s
"""


@pytest.mark.parametrize(("flag", "arg", "rules"), RULES, ids=[r[0] for r in RULES])
def test_every_rule_agrees_with_sops_both_ways(
    *, sops: SopsRun, tmp_path: Path, age_keys: list[AgeKey], identities: AgeIdentities, flag: str,
    arg: str, rules: Rules,
) -> None:
    (tmp_path / "r.yaml").write_text(RULES_DOC)
    extra = [flag, arg] if arg else [flag, "--unencrypted-suffix", "_plain"]
    theirs_enc = sops("-e", "--age", age_keys[0].public, *extra, "r.yaml").stdout
    ours_enc = encrypt_bytes(
        RULES_DOC.encode(), key_groups=[[age_keys[0].recipient]], rules=rules, file="r.yaml"
    )
    # Same values end up encrypted: compare which lines carry ENC[ in the data part.
    def shape(enc: bytes) -> list[bool]:
        body = enc.decode().split("\nsops:")[0]
        return ["ENC[" in line for line in body.splitlines()]

    assert shape(ours_enc) == shape(theirs_enc)
    plain = decrypt_bytes(theirs_enc, unwrapper=identities, file="r.yaml")
    (tmp_path / "ours.yaml").write_bytes(ours_enc)
    assert sops("-d", "ours.yaml").stdout == plain


def test_key_groups_with_threshold_both_ways(
    sops: SopsRun, tmp_path: Path, age_keys: list[AgeKey]
) -> None:
    groups = "\n".join(f"      - age: [{k.public}]" for k in age_keys)
    config = tmp_path / "groups.sops.yaml"
    config.write_text(f"creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n{groups}\n")
    (tmp_path / "g.yaml").write_text("secret: shared\nn: 1\n")
    theirs = sops("--config", str(config), "-e", "g.yaml").stdout
    two = AgeIdentities.from_text(age_keys[1].file.read_text() + age_keys[2].file.read_text())
    assert decrypt_document(theirs, unwrapper=two, file="g.yaml").branches[0].get("secret") == (
        "shared"
    )
    ours = encrypt_bytes(
        b"secret: shared\nn: 1\n",
        key_groups=[[k.recipient] for k in age_keys],
        threshold=2,
        file="g.yaml",
    )
    (tmp_path / "ours.yaml").write_bytes(ours)
    out = sops("-d", "ours.yaml", key_files=[age_keys[0].file, age_keys[2].file]).stdout
    assert out == b'secret: shared\n"n": 1\n'


def test_stable_ciphertext_after_set_and_sops_still_decrypts(
    sops: SopsRun, tmp_path: Path, age_keys: list[AgeKey], identities: AgeIdentities
) -> None:
    (tmp_path / "s.yaml").write_text(YAML_DOC)
    before = sops("-e", "--age", age_keys[0].public, "s.yaml").stdout
    after = set_value(
        before, '["data"]["password"]', '"changed"', unwrapper=identities, file="s.yaml"
    )
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    keys = {a.split(b":")[0].strip() for a, _ in changed}
    # lastmodified only differs when the second ticked over between the two writes
    assert {b"mac", b"password"} <= keys <= {b"lastmodified", b"mac", b"password"}
    (tmp_path / "after.yaml").write_bytes(after)
    assert b"password: changed" in sops("-d", "after.yaml").stdout
