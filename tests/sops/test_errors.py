"""Bad input gets a clear error that names the file and never contains plaintext."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from sealed_gitops.crypto.age import AgeIdentities
from sealed_gitops.crypto.sops import decrypt_bytes, encrypt_bytes
from sealed_gitops.errors import (
    FormatError,
    IntegrityError,
    LimitExceeded,
    MacMismatch,
    NoMatchingKey,
    NotEncryptedError,
    SealedGitopsError,
)

from .conftest import AgeKey

CANARY = "canary-Zq8vX3-plaintext"
PLAIN = f"password: {CANARY}\nuser: admin\ncount: 3\n"


@pytest.fixture(scope="module")
def encrypted(age_keys: list[AgeKey]) -> bytes:
    return encrypt_bytes(
        PLAIN.encode(), key_groups=[[age_keys[0].recipient]], file="secret.yaml"
    )


def _swap_ciphertext_part(enc: bytes, key: str, part: str) -> bytes:
    text = enc.decode()
    line = next(ln for ln in text.splitlines() if ln.startswith(f"{key}: ENC["))
    value = re.search(rf"{part}:([^,\]]+)", line)
    assert value is not None
    raw = value.group(1)
    flipped = ("B" if raw[0] == "A" else "A") + raw[1:]
    return text.replace(line, line.replace(f"{part}:{raw}", f"{part}:{flipped}")).encode()


TAMPERS = [
    ("ciphertext", lambda e: _swap_ciphertext_part(e, "password", "data"), IntegrityError),
    ("tag", lambda e: _swap_ciphertext_part(e, "password", "tag"), IntegrityError),
    ("iv", lambda e: _swap_ciphertext_part(e, "password", "iv"), IntegrityError),
    (
        "truncated value",
        lambda e: re.sub(rb"(password: ENC\[AES256_GCM,data:[^,]+),.*", rb"\1]", e),
        FormatError,
    ),
    (
        "unknown type",
        lambda e: re.sub(rb"(password: ENC\[.*?)type:str\]", rb"\1type:blob]", e),
        FormatError,
    ),
    ("metadata field", lambda e: e.replace(b"lastmodified: \"", b"lastmodified: \"1"), MacMismatch),
    (
        "value swapped between keys",
        lambda e: re.sub(rb"user: (ENC\[[^\]]+\])", lambda m: b"user: " + re.search(
            rb"password: (ENC\[[^\]]+\])", e).group(1), e),  # type: ignore[union-attr]
        IntegrityError,
    ),
    ("mac removed", lambda e: re.sub(rb"    mac: .*\n", b"", e), MacMismatch),
    ("not encrypted", lambda e: PLAIN.encode(), NotEncryptedError),
]


@pytest.mark.parametrize(("what", "tamper", "error"), TAMPERS, ids=[t[0] for t in TAMPERS])
def test_tampering_is_refused_without_leaking(
    encrypted: bytes, identities: AgeIdentities, what: str,
    tamper: Callable[[bytes], bytes], error: type[BaseException],
) -> None:
    bad = tamper(encrypted)
    assert bad != encrypted or what == "not encrypted"
    with pytest.raises(error) as info:
        decrypt_bytes(bad, unwrapper=identities, file="secret.yaml")
    assert "secret.yaml" in str(info.value)
    assert CANARY not in str(info.value)


def test_unencrypted_value_with_mac_only_encrypted_off_is_covered(
    age_keys: list[AgeKey], identities: AgeIdentities
) -> None:
    enc = encrypt_bytes(
        b"user_unencrypted: admin\npassword: x1\n",
        key_groups=[[age_keys[0].recipient]],
        file="u.yaml",
    )
    bad = enc.replace(b"user_unencrypted: admin", b"user_unencrypted: root")
    with pytest.raises(MacMismatch):
        decrypt_bytes(bad, unwrapper=identities, file="u.yaml")
    assert decrypt_bytes(bad, unwrapper=identities, file="u.yaml", ignore_mac=True).startswith(
        b"user_unencrypted: root"
    )


def test_wrong_key_names_the_file_and_the_key(encrypted: bytes, age_keys: list[AgeKey]) -> None:
    other = AgeIdentities.from_text(age_keys[1].file.read_text())
    with pytest.raises(NoMatchingKey) as info:
        decrypt_bytes(encrypted, unwrapper=other, file="secret.yaml")
    assert "secret.yaml" in str(info.value)
    assert age_keys[0].public in str(info.value)


def test_no_key_for_enough_groups(age_keys: list[AgeKey]) -> None:
    enc = encrypt_bytes(
        b"a: b\n", key_groups=[[k.recipient] for k in age_keys], threshold=2, file="g.yaml"
    )
    one = AgeIdentities.from_text(age_keys[0].file.read_text())
    with pytest.raises(NoMatchingKey, match="need 2 of 3"):
        decrypt_bytes(enc, unwrapper=one, file="g.yaml")


BAD_INPUTS = [
    ("non-utf8", b"a: \xff\xfe\n", FormatError),
    ("duplicate keys", b"a: 1\nb: 2\na: 3\n", FormatError),
    ("duplicate json keys", b'{"a": 1, "a": 2}', FormatError),
    (
        "alias bomb",
        b"a: &a [x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n".encode()
            for i in range(8)
        ),
        LimitExceeded,
    ),
    ("six MiB", b"a: " + b"x" * (6 * 1024 * 1024) + b"\n", LimitExceeded),
    ("broken yaml", b"a: [1, 2\n", FormatError),
    ("sequence document", b"- 1\n- 2\n", FormatError),
]


@pytest.mark.parametrize(("what", "data", "error"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_refused(
    identities: AgeIdentities, age_keys: list[AgeKey], what: str, data: bytes,
    error: type[BaseException],
) -> None:
    name = "bad.json" if "json" in what else "bad.yaml"
    calls: list[Callable[[], bytes]] = [
        lambda: decrypt_bytes(data, unwrapper=identities, file=name),
        lambda: encrypt_bytes(data, key_groups=[[age_keys[0].recipient]], file=name),
    ]
    for call in calls:
        with pytest.raises(error) as info:
            call()
        assert name in str(info.value)


def test_malformed_enc_value(identities: AgeIdentities, encrypted: bytes) -> None:
    bad = re.sub(rb"count: ENC\[[^\]]+\]", b"count: ENC[AES256_GCM,data:!!!,iv:x]", encrypted)
    with pytest.raises(FormatError, match="malformed ENC"):
        decrypt_bytes(bad, unwrapper=identities, file="secret.yaml")


def test_canary_never_in_any_error(identities: AgeIdentities, encrypted: bytes) -> None:
    seen = 0
    for cut in range(0, len(encrypted), 97):
        broken = encrypted[:cut] + b"#" + encrypted[cut + 1 :]
        try:
            decrypt_bytes(broken, unwrapper=identities, file="secret.yaml")
        except SealedGitopsError as exc:
            seen += 1
            assert CANARY not in str(exc)
            assert CANARY not in repr(exc.reason)
    assert seen > 0
