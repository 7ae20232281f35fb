"""One sealed value, byte-compatible with Bitnami Sealed Secrets.

Why this module exists: existing Sealed Secrets users must be able to bring their files and their
controller keys, and a SealedSecret we write must still open in Bitnami's controller. So the value
format below is theirs, bit for bit; everything we add (several clusters, key-id hints) lives
around it, in ``sealed_document.py``, never inside it.

The module is pure: bytes in, bytes out. Randomness is a parameter (``rand``), so tests can pin the
session key and the OAEP seed, and the scope is just the OAEP label bytes.

Wire format of one value (before base64)::

    offset 0        uint16, big-endian: n = length of the RSA ciphertext in bytes
                    (the RSA modulus size: 256 for RSA-2048, 512 for RSA-4096)
    offset 2        n bytes: RSA-OAEP(SHA-256, MGF1-SHA-256, label = scope) of a fresh
                    32-byte AES-256 session key
    offset 2 + n    the AES-256-GCM ciphertext of the plaintext under that session key, with a
                    12-byte all-zero nonce and no associated data, followed by its 16-byte tag

    scope label:    strict          "<namespace>/<name>"
                    namespace-wide  "<namespace>"
                    cluster-wide    ""   (empty label)

    stored as:      standard base64 with padding (RFC 4648 section 4)

The zero nonce is safe only because every session key encrypts exactly one message; that is why
:func:`seal` draws a new key per call and there is no API to reuse one.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Callable
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealed_gitops.errors import FormatError, IntegrityError

__all__ = [
    "GCM_NONCE",
    "GCM_TAG_BYTES",
    "SESSION_KEY_BYTES",
    "RandomSource",
    "Scope",
    "SealedValue",
    "decode_value",
    "encode_value",
    "open_value",
    "parse",
    "scope_label",
    "seal",
    "seal_value",
    "unwrap_session_key",
]

#: AES-256 session key, one per sealed value.
SESSION_KEY_BYTES = 32
#: The GCM nonce: all zeros, safe because each session key is used once.
GCM_NONCE = bytes(12)
#: GCM appends a 16-byte tag to the ciphertext.
GCM_TAG_BYTES = 16
_LENGTH_PREFIX = struct.Struct(">H")
#: SHA-256 output size: the OAEP hash and seed length.
_HASH_BYTES = 32

#: ``rand(n)`` returns n random bytes; ``os.urandom`` unless a test injects a deterministic one.
RandomSource = Callable[[int], bytes]


class Scope(StrEnum):
    """Where a sealed value may be opened: the three scopes of Sealed Secrets."""

    STRICT = "strict"
    NAMESPACE_WIDE = "namespace-wide"
    CLUSTER_WIDE = "cluster-wide"


def scope_label(scope: Scope, *, namespace: str, name: str) -> bytes:
    """The OAEP label that binds a value to its scope."""
    if scope is Scope.CLUSTER_WIDE:
        return b""
    if scope is Scope.NAMESPACE_WIDE:
        return namespace.encode("utf-8")
    return f"{namespace}/{name}".encode()


def _oaep(label: bytes) -> padding.OAEP:
    # cryptography treats label=None and b"" alike (empty label), which is what Go does for nil.
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()),
        algorithm=hashes.SHA256(),
        label=label or None,
    )


class SealedValue:
    """The three parts of one sealed value, split but not yet decrypted."""

    __slots__ = ("gcm", "rsa")

    def __init__(self, *, rsa: bytes, gcm: bytes) -> None:
        self.rsa = rsa
        self.gcm = gcm

    def to_bytes(self) -> bytes:
        return _LENGTH_PREFIX.pack(len(self.rsa)) + self.rsa + self.gcm


def parse(data: bytes) -> SealedValue:
    """Split raw sealed bytes into the RSA part and the GCM part; check only the lengths."""
    if len(data) < _LENGTH_PREFIX.size:
        raise IntegrityError("sealed value is truncated: shorter than its length prefix")
    (rsa_len,) = _LENGTH_PREFIX.unpack_from(data)
    end = _LENGTH_PREFIX.size + rsa_len
    if rsa_len == 0 or len(data) < end:
        raise IntegrityError(
            "sealed value is truncated or its length prefix is wrong: "
            f"prefix says {rsa_len} RSA bytes, {len(data) - _LENGTH_PREFIX.size} present"
        )
    if len(data) - end < GCM_TAG_BYTES:
        raise IntegrityError("sealed value is truncated: the GCM part is shorter than its tag")
    return SealedValue(rsa=data[_LENGTH_PREFIX.size : end], gcm=data[end:])


def _mgf1_sha256(seed: bytes, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        digest = hashes.Hash(hashes.SHA256())
        digest.update(seed + counter.to_bytes(4, "big"))
        out += digest.finalize()
        counter += 1
    return bytes(out[:length])


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _oaep_encrypt(
    message: bytes, *, public_key: rsa.RSAPublicKey, label: bytes, seed: bytes
) -> bytes:
    """RSAES-OAEP encryption (RFC 8017 section 7.1.1) with a caller-supplied seed.

    Written out because ``cryptography`` draws the OAEP seed itself, and the brief of this module
    is that *all* randomness is injectable (as in Go's ``rsa.EncryptOAEP(hash, rand, ...)``,
    which reads the session key and then the seed from one reader). Only the public operation is
    done here; decryption, where side channels matter, stays in the library.
    """
    numbers = public_key.public_numbers()
    k = (public_key.key_size + 7) // 8
    h_len = _HASH_BYTES
    if len(message) > k - 2 * h_len - 2:
        raise ValueError("message too long for this RSA key")
    digest = hashes.Hash(hashes.SHA256())
    digest.update(label)
    l_hash = digest.finalize()
    db = l_hash + bytes(k - len(message) - 2 * h_len - 2) + b"\x01" + message
    masked_db = _xor(db, _mgf1_sha256(seed, k - h_len - 1))
    masked_seed = _xor(seed, _mgf1_sha256(masked_db, h_len))
    encoded = int.from_bytes(b"\x00" + masked_seed + masked_db, "big")
    return pow(encoded, numbers.e, numbers.n).to_bytes(k, "big")


def seal(
    plaintext: bytes,
    *,
    public_key: rsa.RSAPublicKey,
    label: bytes,
    rand: RandomSource = os.urandom,
) -> bytes:
    """Seal ``plaintext`` for ``public_key`` under the scope ``label``; return the raw bytes.

    ``rand`` is read twice, in Go's order: 32 bytes of session key, then the 32-byte OAEP seed.
    """
    session_key = rand(SESSION_KEY_BYTES)
    seed = rand(_HASH_BYTES)
    if len(session_key) != SESSION_KEY_BYTES or len(seed) != _HASH_BYTES:
        raise ValueError("the random source returned the wrong number of bytes")
    wrapped = _oaep_encrypt(session_key, public_key=public_key, label=label, seed=seed)
    body = AESGCM(session_key).encrypt(GCM_NONCE, plaintext, None)
    return SealedValue(rsa=wrapped, gcm=body).to_bytes()


def unwrap_session_key(
    value: SealedValue, *, private_key: rsa.RSAPrivateKey, label: bytes
) -> bytes | None:
    """The session key, or ``None`` when this key and label do not open the RSA part.

    OAEP cannot tell "another key" from "another label" from "altered RSA bytes" (and must not:
    that distinction would be a padding oracle), so callers try candidates and decide from which
    one, if any, succeeds.
    """
    if len(value.rsa) != (private_key.key_size + 7) // 8:
        return None
    try:
        session_key = private_key.decrypt(value.rsa, _oaep(label))
    except ValueError:
        return None
    if len(session_key) != SESSION_KEY_BYTES:
        # A well-formed OAEP message that does not carry an AES-256 key was not made by a sealer.
        return None
    return session_key


def open_value(value: SealedValue, *, session_key: bytes) -> bytes:
    """Decrypt the GCM part with an unwrapped session key; a bad tag is an integrity failure."""
    try:
        return AESGCM(session_key).decrypt(GCM_NONCE, value.gcm, None)
    except InvalidTag as exc:
        raise IntegrityError(
            "sealed value failed its GCM check: the ciphertext or tag was altered"
        ) from exc


def encode_value(data: bytes) -> str:
    """Standard padded base64, as kubeseal writes it."""
    return base64.b64encode(data).decode("ascii")


def decode_value(text: str) -> bytes:
    """Strict base64 decoding of one stored value."""
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError("sealed value is not valid base64") from exc


def seal_value(
    plaintext: bytes,
    *,
    public_key: rsa.RSAPublicKey,
    label: bytes,
    rand: RandomSource = os.urandom,
) -> str:
    """:func:`seal`, then base64: the string that goes into ``spec.encryptedData``."""
    return encode_value(seal(plaintext, public_key=public_key, label=label, rand=rand))
