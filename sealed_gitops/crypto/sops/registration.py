"""Registering decrypted SOPS values with the redaction layer: exactly the encrypted ones.

Why only those: the redaction registry is process-wide and never forgets, so registering a file's
unencrypted fields as well (a namespace, ``Opaque``, ``kind: Secret``) would mask them in every
later message. The encrypted document says which values were secret (``ENC[...]`` leaves); this
walks it beside the decrypted one and registers the plaintext of those leaves, and the decoded
form of base64 ones, since Secret ``data`` may show up either way.
"""

from __future__ import annotations

import base64
import contextlib
from typing import Any

from sealed_gitops.redact import register

__all__ = ["register_encrypted"]


def _is_enc(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("ENC[")


def register_encrypted(raw: Any, plain: Any) -> None:
    """Register the plaintext (in ``plain``) of every value that is encrypted in ``raw``."""
    if isinstance(raw, dict) and isinstance(plain, dict):
        for key, value in plain.items():
            register_encrypted(raw.get(key), value)
    elif isinstance(raw, list) and isinstance(plain, list):
        for raw_item, item in zip(raw, plain, strict=False):
            register_encrypted(raw_item, item)
    elif _is_enc(raw) and isinstance(plain, str | bytes):
        register(plain)
        if isinstance(plain, str):
            # Not base64 is fine: the plain form is registered either way.
            with contextlib.suppress(ValueError):
                register(base64.b64decode(plain, validate=True))
    elif _is_enc(raw) and plain is not None:
        register(str(plain))
