"""Cross-check against a second, minimal implementation of the format written in this test.

The reference below is written from the format's description alone (issue 3): a fresh 32-byte
AES-256-GCM key, 12-byte zero nonce, no AAD; the key wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256)
whose label is the scope; uint16 big-endian RSA ciphertext length, RSA ciphertext, GCM ciphertext
with its tag; standard padded base64. It calls ``cryptography`` primitives directly and shares no
code with ``sealed_gitops``, so a mistake in our encoder cannot hide in both.
"""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealed_gitops.crypto import sealed
from sealed_gitops.crypto.sealed import Scope
from sealed_gitops.crypto.sealed_document import SealedSecretDoc
from sealed_gitops.crypto.sealing_keys import SealingKey
from sealed_gitops.keys.sealing import SealingKeyring


def _ref_oaep(label: bytes) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=label)


def ref_seal(public_key: rsa.RSAPublicKey, plaintext: bytes, label: bytes) -> str:
    session_key = os.urandom(32)
    wrapped = public_key.encrypt(session_key, _ref_oaep(label))
    body = AESGCM(session_key).encrypt(b"\x00" * 12, plaintext, None)
    return base64.b64encode(len(wrapped).to_bytes(2, "big") + wrapped + body).decode()


def ref_open(private_key: rsa.RSAPrivateKey, text: str, label: bytes) -> bytes:
    raw = base64.b64decode(text)
    n = int.from_bytes(raw[:2], "big")
    session_key = private_key.decrypt(raw[2 : 2 + n], _ref_oaep(label))
    return AESGCM(session_key).decrypt(b"\x00" * 12, raw[2 + n :], None)


CASES = [
    (Scope.STRICT, b"team-a/db", b"hunter2"),
    (Scope.NAMESPACE_WIDE, b"team-a", b"\x00\xff binary \n value"),
    (Scope.CLUSTER_WIDE, b"", b""),
    (Scope.STRICT, b"team-a/db", "päss wörd ✓".encode()),
]


@pytest.mark.parametrize(("scope", "label", "plaintext"), CASES)
@pytest.mark.parametrize("fixture", ["key_a", "key_4096"])
def test_reference_sealed_value_opens_with_ours(
    request: pytest.FixtureRequest, fixture: str, scope: Scope, label: bytes, plaintext: bytes
) -> None:
    key: SealingKey = request.getfixturevalue(fixture)
    vector = ref_seal(key.public_key, plaintext, label)
    # Through the whole document path, as a Bitnami-made file (no hints) would go.
    doc = SealedSecretDoc(
        name="db", namespace="team-a", scope=scope, encrypted_data={"v": vector}
    )
    opened = SealingKeyring([key.private_key]).unseal(doc)
    assert opened.values == {"v": plaintext}


@pytest.mark.parametrize(("scope", "label", "plaintext"), CASES)
@pytest.mark.parametrize("fixture", ["key_a", "key_4096"])
def test_our_sealed_value_opens_with_the_reference(
    request: pytest.FixtureRequest, fixture: str, scope: Scope, label: bytes, plaintext: bytes
) -> None:
    key: SealingKey = request.getfixturevalue(fixture)
    ours = sealed.seal_value(plaintext, public_key=key.public_key, label=label)
    assert ref_open(key.private_key, ours, label) == plaintext
    assert ours == base64.b64encode(base64.b64decode(ours)).decode()  # standard, padded


def test_our_deterministic_oaep_matches_the_reference_decoder(key_a: SealingKey) -> None:
    # Our OAEP encoding is written out (for injectable seeds); the library must accept it for
    # every seed, including ones with leading zero bytes.
    for seed in (b"\x00" * 32, b"\xff" * 32, bytes(range(32))):
        draws = [b"k" * 32, seed]

        def rand(_n: int, draws: list[bytes] = draws) -> bytes:
            return draws.pop(0)

        raw = sealed.seal(b"value", public_key=key_a.public_key, label=b"ns/n", rand=rand)
        assert ref_open(key_a.private_key, base64.b64encode(raw).decode(), b"ns/n") == b"value"
