"""One sealed value: round trips, the byte layout, tampering of each part, truncation, wrong key."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealed_gitops.crypto import sealed
from sealed_gitops.crypto.sealed import Scope, scope_label
from sealed_gitops.crypto.sealing_keys import SealingKey
from sealed_gitops.errors import FormatError, IntegrityError

LABEL = b"team-a/db"


def _counter_rand(seed: bytes = b"test") -> sealed.RandomSource:
    """A deterministic random source: SHA-256 in counter mode."""
    state = {"n": 0}

    def rand(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(seed + state["n"].to_bytes(8, "big")).digest()
            state["n"] += 1
        return out[:n]

    return rand


def _open(raw: bytes, key: SealingKey, label: bytes = LABEL) -> bytes:
    value = sealed.parse(raw)
    session_key = sealed.unwrap_session_key(value, private_key=key.private_key, label=label)
    if session_key is None:
        raise LookupError("no session key")
    return sealed.open_value(value, session_key=session_key)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plaintext=st.binary(max_size=4096), label=st.binary(max_size=64))
def test_round_trip_any_value_and_label(key_a: SealingKey, plaintext: bytes, label: bytes) -> None:
    raw = sealed.seal(plaintext, public_key=key_a.public_key, label=label)
    assert _open(raw, key_a, label) == plaintext


@pytest.mark.parametrize("fixture", ["key_a", "key_4096"])
def test_round_trip_2048_and_4096_bit_keys(request: pytest.FixtureRequest, fixture: str) -> None:
    key: SealingKey = request.getfixturevalue(fixture)
    text = sealed.seal_value(b"s3cret-value", public_key=key.public_key, label=LABEL)
    raw = sealed.decode_value(text)
    rsa_len = key.private_key.key_size // 8
    assert struct.unpack(">H", raw[:2])[0] == rsa_len
    assert len(raw) == 2 + rsa_len + len(b"s3cret-value") + sealed.GCM_TAG_BYTES
    assert _open(raw, key) == b"s3cret-value"


def test_layout_with_injected_randomness_is_deterministic(key_a: SealingKey) -> None:
    one = sealed.seal(b"value", public_key=key_a.public_key, label=LABEL, rand=_counter_rand())
    two = sealed.seal(b"value", public_key=key_a.public_key, label=LABEL, rand=_counter_rand())
    assert one == two
    # The first 32 random bytes are the session key: the GCM part must be AES-GCM under it.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    session_key = _counter_rand()(32)
    assert one[2 + 256 :] == AESGCM(session_key).encrypt(bytes(12), b"value", None)
    assert sealed.unwrap_session_key(
        sealed.parse(one), private_key=key_a.private_key, label=LABEL
    ) == session_key


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (Scope.STRICT, b"team-a/db"),
        (Scope.NAMESPACE_WIDE, b"team-a"),
        (Scope.CLUSTER_WIDE, b""),
    ],
)
def test_scope_labels(scope: Scope, expected: bytes) -> None:
    assert scope_label(scope, namespace="team-a", name="db") == expected


def _flip(raw: bytes, index: int) -> bytes:
    return raw[:index] + bytes([raw[index] ^ 0x01]) + raw[index + 1 :]


@pytest.mark.parametrize(
    ("part", "mutate"),
    [
        ("length prefix, larger", lambda raw: struct.pack(">H", 0xFFFF) + raw[2:]),
        ("length prefix, smaller", lambda raw: struct.pack(">H", 255) + raw[2:]),
        ("length prefix, zero", lambda raw: struct.pack(">H", 0) + raw[2:]),
        ("RSA part, first byte", lambda raw: _flip(raw, 2)),
        ("RSA part, last byte", lambda raw: _flip(raw, 2 + 255)),
        ("GCM body", lambda raw: _flip(raw, 2 + 256)),
        ("tag", lambda raw: _flip(raw, len(raw) - 1)),
        ("tag removed", lambda raw: raw[:-16]),
        ("byte appended", lambda raw: raw + b"\x00"),
    ],
)
def test_tampering_with_each_part_fails(
    key_a: SealingKey, part: str, mutate: Callable[[bytes], bytes]
) -> None:
    raw = sealed.seal(b"do-not-leak-me", public_key=key_a.public_key, label=LABEL)
    tampered = mutate(raw)
    with pytest.raises((IntegrityError, LookupError)) as info:
        _open(tampered, key_a)
    assert "do-not-leak-me" not in str(info.value)
    if part in ("GCM body", "tag", "byte appended"):
        # The session key still unwraps; only the GCM check can catch these.
        assert info.type is IntegrityError


@pytest.mark.parametrize("cut", [0, 1, 2, 3, 100, 257, 258, 258 + 15, -1])
def test_truncated_input_fails(key_a: SealingKey, cut: int) -> None:
    raw = sealed.seal(b"some value", public_key=key_a.public_key, label=LABEL)
    with pytest.raises((IntegrityError, LookupError)):
        _open(raw[:cut], key_a)


def test_wrong_key_does_not_unwrap(key_a: SealingKey, key_b: SealingKey) -> None:
    raw = sealed.seal(b"value", public_key=key_a.public_key, label=LABEL)
    value = sealed.parse(raw)
    assert sealed.unwrap_session_key(value, private_key=key_b.private_key, label=LABEL) is None


def test_wrong_label_does_not_unwrap(key_a: SealingKey) -> None:
    raw = sealed.seal(b"value", public_key=key_a.public_key, label=LABEL)
    value = sealed.parse(raw)
    for label in (b"team-b/db", b"team-a", b""):
        assert sealed.unwrap_session_key(value, private_key=key_a.private_key, label=label) is None


@pytest.mark.parametrize("text", ["not base64!", "QUJ", "QU JD\x00"])
def test_bad_base64_is_a_format_error(text: str) -> None:
    with pytest.raises(FormatError):
        sealed.decode_value(text)


def test_random_source_with_wrong_length_is_refused(key_a: SealingKey) -> None:
    with pytest.raises(ValueError, match="wrong number"):
        sealed.seal(b"v", public_key=key_a.public_key, label=b"", rand=lambda n: b"\x00" * (n - 1))
