"""The age v1 file format in Python: header and stanzas, header MAC, STREAM payload, ASCII armor.

Why this exists: pyrage reads and writes age files only for the recipient types rage implements.
A file whose only stanza is age's post-quantum ``mlkem768x25519`` (what sops 3.12 writes for an
``age1pq1...`` recipient) is opaque to it, so the engine needs the container itself to get from
the stanza's file key to the payload (the SOPS data key). The recipient-specific part, turning a
stanza into a file key and back, is a callable supplied by :mod:`sealed_gitops.crypto.age_pq`.

Wire format (age-encryption.org/v1), as the reference Go implementation writes and checks it::

    age-encryption.org/v1\\n
    -> TYPE ARG ARG...\\n            one line per stanza, then its body: raw (unpadded) standard
    BODY (base64, 64 columns)\\n     base64 in lines of 64 columns, ending with a line shorter
    ...                             than 64 columns (an empty line if the body fills the last one)
    --- MAC\\n                       MAC = HMAC-SHA256(HKDF-SHA256(ikm=file key, salt="",
                                     info="header"), every header byte up to and including "---")
    NONCE (16 random bytes)         payload key = HKDF-SHA256(ikm=file key, salt=NONCE,
    CHUNK...                        info="payload"); 64 KiB plaintext chunks sealed with
                                     ChaCha20-Poly1305, nonce = 11-byte big-endian chunk counter +
                                     one byte, 0x01 on the last chunk (the only one that may be
                                     short, and empty only when it is the first)

The armor is ``-----BEGIN AGE ENCRYPTED FILE-----``, padded standard base64 in 64-column lines,
``-----END AGE ENCRYPTED FILE-----``. Parsing is as strict as the Go implementation (canonical
base64, no trailing data, bounded header), so a file we accept is one age accepts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealed_gitops.errors import FormatError, IntegrityError, LimitExceeded

__all__ = [
    "FILE_KEY_SIZE",
    "Stanza",
    "armor",
    "b64decode_raw",
    "b64encode_raw",
    "dearmor",
    "decrypt",
    "encrypt",
]

INTRO = b"age-encryption.org/v1\n"
ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = "-----END AGE ENCRYPTED FILE-----"
#: age's file keys are 16 bytes; each recipient stanza wraps one.
FILE_KEY_SIZE = 16
_COLUMNS = 64
_BYTES_PER_LINE = _COLUMNS // 4 * 3
_NONCE_SIZE = 16
_CHUNK = 64 * 1024
_TAG = 16
#: age refuses headers over 2 MiB; the armored text is bounded by the same order of magnitude
#: (a SOPS stanza is ~3 KiB for a post-quantum recipient), so hostile input costs little.
_MAX_HEADER = 2 << 20
_MAX_ARMORED = 4 << 20
_MAX_STANZAS = 1024

#: Unwraps one stanza into the file key, or None when it is not for the identities at hand.
StanzaUnwrap = Callable[["Stanza"], bytes | None]
#: Wraps a file key into the stanzas of one recipient.
StanzaWrap = Callable[[bytes], Sequence["Stanza"]]


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: its type, its arguments and its (binary) body."""

    type: str
    args: tuple[str, ...]
    body: bytes

    def encode(self) -> bytes:
        for word in (self.type, *self.args):
            if not _valid_word(word):
                raise FormatError(f"invalid age stanza word {word[:16]!r}")
        lines = [f"-> {' '.join((self.type, *self.args))}"]
        text = b64encode_raw(self.body)
        lines += [text[i : i + _COLUMNS] for i in range(0, len(text), _COLUMNS)]
        if len(text) % _COLUMNS == 0:
            lines.append("")  # the body must end with a short line, so a full one gets an empty one
        return ("\n".join(lines) + "\n").encode("ascii")


def _valid_word(word: str) -> bool:
    return bool(word) and all(33 <= ord(c) <= 126 for c in word)


def b64encode_raw(data: bytes) -> str:
    """Standard base64 without padding, as age writes stanza arguments and bodies."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode_raw(text: str) -> bytes:
    """The strict inverse of :func:`b64encode_raw`: unpadded, canonical, nothing else."""
    if "=" in text or len(text) % 4 == 1:
        raise FormatError("malformed base64 in an age header")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError("malformed base64 in an age header") from exc
    if b64encode_raw(data) != text:  # non-zero trailing bits: age's strict decoder refuses them
        raise FormatError("non-canonical base64 in an age header")
    return data


def armor(data: bytes) -> str:
    """``data`` as age's ASCII armor (what sops stores in a stanza's ``enc``)."""
    text = base64.b64encode(data).decode("ascii")
    lines = [text[i : i + _COLUMNS] for i in range(0, len(text), _COLUMNS)]
    return "\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n"


def dearmor(text: str) -> bytes:
    """The bytes inside age's ASCII armor; surrounding whitespace is allowed, nothing else."""
    if len(text) > _MAX_ARMORED:
        raise LimitExceeded("the armored age file is larger than 4 MiB")
    lines = text.strip().split("\n")
    lines = [line.rstrip("\r") for line in lines]
    if len(lines) < 2 or lines[0] != ARMOR_BEGIN or lines[-1] != ARMOR_END:
        raise FormatError("not an ASCII-armored age file")
    body = lines[1:-1]
    if any(len(line) > _COLUMNS for line in body) or any(
        len(line) != _COLUMNS for line in body[:-1]
    ):
        raise FormatError("malformed age armor: lines must be 64 columns")
    joined = "".join(body)
    try:
        data = base64.b64decode(joined, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError("malformed base64 in the age armor") from exc
    if base64.b64encode(data).decode("ascii") != joined:
        raise FormatError("non-canonical base64 in the age armor")
    return data


@dataclass(frozen=True)
class _Header:
    stanzas: list[Stanza]
    signed: bytes  # the bytes the MAC covers: intro .. "---"
    mac: bytes
    payload: bytes


def _parse(data: bytes) -> _Header:
    if not data.startswith(INTRO):
        raise FormatError("not an age file (no age-encryption.org/v1 intro)")
    pos = len(INTRO)
    stanzas: list[Stanza] = []

    def next_line() -> str:
        nonlocal pos
        end = data.find(b"\n", pos, _MAX_HEADER)
        if end < 0:
            raise FormatError("truncated or oversized age header")
        raw = data[pos:end]
        pos = end + 1
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise FormatError("non-ASCII byte in an age header") from exc

    while True:
        start = pos
        line = next_line()
        if line.startswith("---"):
            words = line.split(" ")
            if words[0] != "---" or len(words) != 2:
                raise FormatError("malformed age header closing line")
            mac = b64decode_raw(words[1])
            if len(mac) != 32:
                raise FormatError("malformed age header MAC")
            signed = data[: start + 3]
            break
        words = line.split(" ")
        if words[0] != "->" or len(words) < 2 or not all(_valid_word(w) for w in words[1:]):
            raise FormatError("malformed age stanza line")
        if len(stanzas) == _MAX_STANZAS:
            raise LimitExceeded(f"age header has more than {_MAX_STANZAS} stanzas")
        body: list[bytes] = []  # joined once: += would copy a 2 MiB body once per line
        while True:
            text = next_line()
            if len(text) > _COLUMNS:  # checked before decoding, as age does
                raise FormatError("malformed age stanza body: line too long")
            chunk = b64decode_raw(text)
            body.append(chunk)
            if len(chunk) < _BYTES_PER_LINE:
                break
        stanzas.append(Stanza(words[1], tuple(words[2:]), b"".join(body)))
    if not stanzas:
        raise FormatError("age header has no recipient stanza")
    return _Header(stanzas=stanzas, signed=signed, mac=mac, payload=data[pos:])


def _hkdf(file_key: bytes, *, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(file_key)


def _header_mac(file_key: bytes, signed: bytes) -> bytes:
    return hmac.new(_hkdf(file_key, salt=None, info=b"header"), signed, hashlib.sha256).digest()


def _chunk_nonce(index: int, *, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _seal_payload(file_key: bytes, plaintext: bytes, nonce: bytes) -> bytes:
    aead = ChaCha20Poly1305(_hkdf(file_key, salt=nonce, info=b"payload"))
    chunks = [plaintext[i : i + _CHUNK] for i in range(0, len(plaintext), _CHUNK)] or [b""]
    out = [nonce]
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        out.append(aead.encrypt(_chunk_nonce(index, last=last), chunk, None))
    return b"".join(out)


def _open_payload(file_key: bytes, payload: bytes) -> bytes:
    if len(payload) < _NONCE_SIZE + _TAG:
        raise IntegrityError("the age payload is truncated")
    aead = ChaCha20Poly1305(_hkdf(file_key, salt=payload[:_NONCE_SIZE], info=b"payload"))
    body = payload[_NONCE_SIZE:]
    size = _CHUNK + _TAG
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    out = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        if last and index > 0 and len(piece) == _TAG:
            raise IntegrityError("the age payload ends with an empty chunk")
        try:
            out.append(aead.decrypt(_chunk_nonce(index, last=last), piece, None))
        except InvalidTag as exc:
            raise IntegrityError("the age payload does not authenticate (tampered?)") from exc
    return b"".join(out)


def encrypt(
    plaintext: bytes, wraps: Sequence[StanzaWrap], *, random: Callable[[int], bytes] = os.urandom
) -> bytes:
    """An age file of ``plaintext`` for the recipients whose stanza makers are ``wraps``."""
    if not wraps:
        raise FormatError("an age file needs at least one recipient")
    file_key = random(FILE_KEY_SIZE)
    stanzas = [stanza for wrap in wraps for stanza in wrap(file_key)]
    signed = INTRO + b"".join(stanza.encode() for stanza in stanzas) + b"---"
    mac = _header_mac(file_key, signed)
    header = signed + b" " + b64encode_raw(mac).encode("ascii") + b"\n"
    return header + _seal_payload(file_key, plaintext, random(_NONCE_SIZE))


def decrypt(data: bytes, unwrap: StanzaUnwrap) -> bytes | None:
    """The payload of an age file, or None when ``unwrap`` opens none of its stanzas.

    A stanza that opens but whose header MAC or payload does not authenticate is tampering
    (:class:`IntegrityError`), never "not ours".
    """
    header = _parse(data)
    for stanza in header.stanzas:
        file_key = unwrap(stanza)
        if file_key is None:
            continue
        if not hmac.compare_digest(_header_mac(file_key, header.signed), header.mac):
            raise IntegrityError("the age header MAC does not match (tampered header?)")
        return _open_payload(file_key, header.payload)
    return None
