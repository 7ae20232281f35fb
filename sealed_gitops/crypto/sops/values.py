"""One encrypted SOPS value: ``ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]``.

Why this module exists: the MAC of a SOPS file is a hash over the *textual* form of every value,
and sops decides that text with Go's formatting rules (``strconv.Itoa``,
``FormatFloat(f, 'f', -1, 64)``, ``True``/``False``, ``time.MarshalText``). If one float is
printed differently from the way sops prints it, the MAC disagrees and the file is refused.
Everything that turns a plaintext value into bytes, or bytes back into a value, lives here so
that there is exactly one place to get it right.

Wire format (sops ``aes/cipher.go``)::

    ENC[AES256_GCM,data:<b64 ciphertext>,iv:<b64 32-byte nonce>,tag:<b64 16-byte GCM tag>,type:<t>]

with standard base64 (padding kept), AES-256-GCM, the additional data being the key path joined with
``:`` plus a trailing ``:``. Empty strings are never encrypted: they stay ``""`` in the file.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealed_gitops.errors import FormatError, IntegrityError

__all__ = [
    "NONCE_SIZE",
    "Comment",
    "JsonInt",
    "Timestamp",
    "decrypt_value",
    "encrypt_value",
    "format_float_f",
    "format_float_g",
    "format_float_json",
    "is_encrypted",
    "to_bytes",
]

#: sops uses a 32-byte GCM nonce (not the usual 12) for every value.
NONCE_SIZE = 32

_PREFIX = "ENC[AES256_GCM,"
_B64 = r"[A-Za-z0-9+/]*={0,2}"
_ENC_RE = re.compile(
    rf"^ENC\[AES256_GCM,data:({_B64}),iv:({_B64}),tag:({_B64}),type:([A-Za-z0-9_]+)\]$"
)
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Comment:
    """A YAML comment as a tree item; ``value`` is the text after ``#``."""

    value: str
    inline: bool = False


class JsonInt(int):
    """An integer read from a JSON file. sops 3.11 reads JSON numbers as Go ``float64`` and so
    encrypts them as ``type:float`` (same plaintext bytes, ``1`` not ``1.0``); it stays an
    ``int`` here so an unencrypted ``replicas: 3`` is still an integer to everything else."""

    __slots__ = ()


class Timestamp(str):
    """A YAML timestamp, kept as Go's ``time.MarshalText`` form (RFC 3339 with nanoseconds).

    sops encrypts unquoted YAML timestamps with type ``time``; keeping the canonical text (rather
    than a ``datetime``) is what makes the MAC and a re-encryption agree with sops.
    """

    __slots__ = ()


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(_PREFIX)


def _float_digits(value: float) -> tuple[str, str, int]:
    """(sign, shortest digits, decimal exponent) such that value = 0.digits * 10**exp."""
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    text = "".join(str(d) for d in digits).rstrip("0") or "0"
    if not isinstance(exponent, int):  # only NaN/inf have a letter exponent; handled earlier
        raise ValueError("not a finite float")
    # Decimal gives value = int(digits) * 10**exponent; move the point in front of the digits.
    point = len(digits) + exponent
    if text == "0":
        point = 1
    return ("-" if sign else ""), text, point


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return None


def format_float_f(value: float) -> str:
    """Go's ``strconv.FormatFloat(value, 'f', -1, 64)``: shortest digits, never an exponent."""
    special = _special(value)
    if special is not None:
        return special
    sign, digits, point = _float_digits(value)
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _format_e(sign: str, digits: str, point: int, *, min_exp_digits: int) -> str:
    exp = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp_sign = "-" if exp < 0 else "+"
    return f"{sign}{mantissa}e{exp_sign}{abs(exp):0{min_exp_digits}d}"


def format_float_g(value: float) -> str:
    """Go's ``FormatFloat(value, 'g', -1, 64)``, as go-yaml writes floats (but ``.inf``)."""
    special = _special(value)
    if special is not None:
        return {"NaN": ".nan", "+Inf": ".inf", "-Inf": "-.inf"}[special]
    sign, digits, point = _float_digits(value)
    exp = point - 1
    # Go switches to the exponent form at precision 6 when asked for the shortest form.
    if exp < -4 or exp >= 6:
        return _format_e(sign, digits, point, min_exp_digits=2)
    return format_float_f(value)


def format_float_json(value: float) -> str:
    """Go ``encoding/json`` float output: 'f' in [1e-6, 1e21), else a compact exponent form."""
    special = _special(value)
    if special is not None:
        raise FormatError(f"cannot write {special} as JSON")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        sign, digits, point = _float_digits(value)
        return _format_e(sign, digits, point, min_exp_digits=1)
    return format_float_f(value)


def to_bytes(value: Any) -> bytes:
    """sops' ``ToBytes``: the bytes a value contributes to the MAC and to its ciphertext."""
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, float):
        return format_float_f(value).encode("ascii")
    if isinstance(value, bytes):
        return value
    if isinstance(value, Comment):
        return value.value.encode("utf-8")
    raise FormatError(f"cannot encrypt a value of type {type(value).__name__}")


def _plain_and_type(value: Any) -> tuple[bytes, str]:
    if isinstance(value, bool):
        return to_bytes(value), "bool"
    if isinstance(value, Timestamp):
        return to_bytes(value), "time"
    if isinstance(value, str):
        return to_bytes(value), "str"
    if isinstance(value, JsonInt):
        return to_bytes(value), "float"
    if isinstance(value, int):
        return to_bytes(value), "int"
    if isinstance(value, float):
        return to_bytes(value), "float"
    if isinstance(value, bytes):
        return value, "bytes"
    if isinstance(value, Comment):
        return to_bytes(value), "comment"
    raise FormatError(f"cannot encrypt a value of type {type(value).__name__}")


def encrypt_value(aead: AESGCM, value: Any, aad: str, *, iv: bytes | None = None) -> Any:
    """Encrypt one leaf; empty strings (and empty comments) stay as they are, like sops does."""
    if isinstance(value, str | bytes) and len(value) == 0:
        return value
    if isinstance(value, Comment) and not value.value:
        return ""
    plain, kind = _plain_and_type(value)
    nonce = iv if iv is not None else os.urandom(NONCE_SIZE)
    sealed = aead.encrypt(nonce, plain, aad.encode("utf-8"))
    b64 = base64.b64encode
    return (
        f"ENC[AES256_GCM,data:{b64(sealed[:-16]).decode()},iv:{b64(nonce).decode()},"
        f"tag:{b64(sealed[-16:]).decode()},type:{kind}]"
    )


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"malformed ENC value: bad base64 in {what}") from exc


def _decode(plain: bytes, kind: str) -> Any:
    try:
        if kind == "str":
            # Go strings carry any bytes (a binary-store file is one); surrogateescape keeps
            # them, and every writer encodes back with it
            return plain.decode("utf-8", "surrogateescape")
        if kind == "int":
            number = int(plain.decode("ascii"))
            if not _INT64_MIN <= number <= _INT64_MAX:
                raise ValueError("int out of range")
            return number
        if kind == "float":
            text = plain.decode("ascii")
            special = {"NaN": "nan", "+Inf": "inf", "-Inf": "-inf", "Inf": "inf"}.get(text)
            return float(special or text)
        if kind == "bool":
            return _parse_go_bool(plain.decode("ascii"))
        if kind == "bytes":
            return plain
        if kind == "time":
            return Timestamp(plain.decode("ascii"))
        if kind == "comment":
            return Comment(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"encrypted value of type {kind} does not decode") from exc
    raise FormatError(f"unknown ENC value type {kind!r}")


def _parse_go_bool(text: str) -> bool:
    # Go's strconv.ParseBool
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError("not a bool")


def decrypt_value(aead: AESGCM, text: str, aad: str) -> tuple[Any, bytes]:
    """Decrypt one ``ENC[...]`` string; return (value, iv). Empty text decrypts to ``""``."""
    if text == "":
        return "", b""
    match = _ENC_RE.match(text)
    if match is None:
        raise FormatError("malformed ENC value (expected ENC[AES256_GCM,data:…,iv:…,tag:…,type:…])")
    data, iv, tag = (_b64(match.group(i), w) for i, w in ((1, "data"), (2, "iv"), (3, "tag")))
    kind = match.group(4)
    if kind not in ("str", "int", "float", "bool", "bytes", "time", "comment"):
        raise FormatError(f"unknown ENC value type {kind!r}")
    if len(tag) != 16 or not 8 <= len(iv) <= 128:
        raise IntegrityError("truncated ENC value (bad tag or iv length)")
    try:
        plain = aead.decrypt(iv, data + tag, aad.encode("utf-8"))
    except InvalidTag as exc:
        raise IntegrityError(
            "value does not authenticate (tampered ciphertext, wrong key or moved value)"
        ) from exc
    return _decode(plain, kind), iv
