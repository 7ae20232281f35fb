"""Shamir secret sharing over GF(2^8), laid out exactly as sops' ``shamir`` package does it.

Why: a SOPS file with several key groups stores one *share* of the data key per group, and the file
is only readable by us and by sops alike if both split and combine the same way. The layout is the
one of HashiCorp Vault's ``shamir`` as vendored by sops: per byte of the secret a random polynomial
of degree ``threshold - 1`` whose intercept is that byte, evaluated at x = 1, 2, … (one x per
share); a share is the y bytes followed by its x as the last byte. Arithmetic is in GF(2^8) with the
AES polynomial x^8 + x^4 + x^3 + x + 1.
"""

from __future__ import annotations

import os

from sealed_gitops.errors import CryptoError

__all__ = ["combine", "split"]


def _mult(a: int, b: int) -> int:
    out = 0
    while b:
        if b & 1:
            out ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11B
        b >>= 1
    return out


def _build_tables() -> tuple[list[int], list[int]]:
    exp = [0] * 512
    log = [0] * 256
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x = _mult(x, 3)
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    return exp, log


_EXP, _LOG = _build_tables()


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    if a == 0:
        return 0
    return _EXP[(_LOG[a] - _LOG[b]) % 255]


def split(secret: bytes, *, parts: int, threshold: int) -> list[bytes]:
    """Split ``secret`` into ``parts`` shares, any ``threshold`` of which recover it."""
    if not 2 <= threshold <= parts <= 255:
        raise CryptoError(f"invalid Shamir parameters: {threshold} of {parts}")
    if not secret:
        raise CryptoError("cannot split an empty secret")
    shares = [bytearray(len(secret) + 1) for _ in range(parts)]
    for i, share in enumerate(shares):
        share[-1] = i + 1
    for index, byte in enumerate(secret):
        coefficients = [byte, *os.urandom(threshold - 1)]
        for i in range(parts):
            x = i + 1
            y = 0
            for coefficient in reversed(coefficients):  # Horner's rule
                y = _mul(y, x) ^ coefficient
            shares[i][index] = y
    return [bytes(s) for s in shares]


def combine(shares: list[bytes]) -> bytes:
    """Recover the secret from shares (Lagrange interpolation at x = 0)."""
    if len(shares) < 2:
        raise CryptoError("at least two Shamir shares are needed")
    length = len(shares[0])
    if length < 2 or any(len(s) != length for s in shares):
        raise CryptoError("Shamir shares have inconsistent lengths")
    xs = [s[-1] for s in shares]
    if len(set(xs)) != len(xs) or 0 in xs:
        raise CryptoError("duplicate or invalid Shamir share")
    # The Lagrange basis at 0 depends only on the x coordinates: compute it once.
    basis = []
    for i, xi in enumerate(xs):
        b = 1
        for j, xj in enumerate(xs):
            if i != j:
                b = _mul(b, _div(xj, xi ^ xj))
        basis.append(b)
    secret = bytearray(length - 1)
    for index in range(length - 1):
        acc = 0
        for share, b in zip(shares, basis, strict=True):
            acc ^= _mul(share[index], b)
        secret[index] = acc
    return bytes(secret)
