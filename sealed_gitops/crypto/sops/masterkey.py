"""The seam between the SOPS engine and whoever holds keys.

A SOPS file's data key is wrapped once per *master key* (an age recipient, a PGP key, a Vault
transit key, a cloud KMS key) and the wrapped forms are stored in the ``sops`` metadata as
*stanzas*. The engine in this package never talks to gpg, Vault or a KMS itself: it hands stanzas to
an :class:`Unwrapper` (the keyring, in ``sealed_gitops.keys``) and asks :class:`MasterKey` objects
to wrap a new data key. That keeps ``crypto/`` pure (no subprocess, no network) and lets the
operator and the CLI bring different keyrings to the same engine.

The stanzas are read from a file anyone who can push wrote, so the one field that becomes part of
a URL path is checked here, where the metadata is parsed: an ``hc_vault`` stanza's ``engine_path``
and ``key_name`` must be Vault path segments (:func:`vault_path`). Otherwise ``key_name:
../../auth/token/revoke-self`` turns "decrypt with transit" into "revoke my token", because HTTP
clients resolve dot segments before sending.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sealed_gitops.errors import FormatError

__all__ = ["STANZA_KINDS", "KeyStanza", "MasterKey", "Unwrapper", "check_stanza", "vault_path"]

#: The metadata keys sops uses for each master-key type, in the order sops writes them.
STANZA_KINDS = ("kms", "gcp_kms", "azure_kv", "hc_vault", "age", "pgp")

# One Vault path segment: no separator, no percent-escape (a server or proxy may decode it into a
# separator or a dot segment), no query or fragment, no backslash (some clients turn it into a
# slash), no whitespace or control character. "." and ".." are refused separately.
_SEGMENT = re.compile(r"[^/\\%?#\s\x00-\x1f\x7f]{1,256}")


@dataclass(frozen=True)
class KeyStanza:
    """One wrapped copy of a data key (or of a Shamir share) as stored in the metadata.

    ``data`` is the stanza's mapping exactly as read from (or to be written to) the file, ``enc``
    included, in the file's key order; keeping it raw means unknown fields survive a rewrite.
    """

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def enc(self) -> str:
        return str(self.data.get("enc", ""))

    @property
    def key_id(self) -> str:
        """A human-readable id of the master key: what an error names when it cannot unwrap."""
        d = self.data
        if self.kind == "age":
            return str(d.get("recipient", ""))
        if self.kind == "pgp":
            return str(d.get("fp", ""))
        if self.kind == "hc_vault":
            address = str(d.get("vault_address", "")).rstrip("/")
            return f"{address}/v1/{d.get('engine_path', '')}/keys/{d.get('key_name', '')}"
        if self.kind == "kms":
            return str(d.get("arn", ""))
        if self.kind == "gcp_kms":
            return str(d.get("resource_id", ""))
        if self.kind == "azure_kv":
            return f"{d.get('vault_url', '')}/keys/{d.get('name', '')}/{d.get('version', '')}"
        return self.kind


@runtime_checkable
class MasterKey(Protocol):
    """A recipient: something a data key can be wrapped for."""

    @property
    def kind(self) -> str:
        """The stanza kind this key produces (one of :data:`STANZA_KINDS`)."""

    @property
    def key_id(self) -> str:
        """Same id as :attr:`KeyStanza.key_id` of the stanzas this key produces."""

    def wrap(self, data_key: bytes) -> KeyStanza:
        """Wrap ``data_key`` for this recipient; raise ``KeyProviderError`` on failure."""


@runtime_checkable
class Unwrapper(Protocol):
    """Something holding private keys: turns a stanza back into the data key (or share)."""

    def unwrap(self, stanza: KeyStanza) -> bytes | None:
        """Return the unwrapped bytes, or ``None`` when no key held here matches the stanza.

        Raise ``KeyProviderError`` when a matching key exists but the operation failed (Vault
        unreachable, gpg failed), and ``CryptoError`` when the stanza is corrupt.
        """


def _segment_problem(segment: str) -> str | None:
    if segment in (".", ".."):
        return "is a dot segment"
    if not _SEGMENT.fullmatch(segment):
        return "is empty, too long, or holds '/', '\\', '%', '?', '#' or whitespace"
    return None


def vault_path(engine_path: str, key_name: str) -> tuple[tuple[str, ...], str]:
    """The segments of a transit mount path and a key name, or :class:`FormatError`.

    ``engine_path`` may hold several segments (``team/a/transit``); one leading or trailing
    ``/`` is tolerated, as sops strips it, but no empty segment in between. ``key_name`` is one
    segment. The error quotes the field (with ``!r``: a newline cannot forge a second line).
    """
    segments = tuple(engine_path.strip("/").split("/"))
    for segment in segments:
        problem = _segment_problem(segment)
        if problem is not None:
            raise FormatError(
                f"hc_vault engine_path {engine_path!r} is not a Vault path: a segment {problem}"
            )
    problem = _segment_problem(key_name)
    if problem is not None:
        raise FormatError(
            f"hc_vault key_name {key_name!r} is not one Vault path segment: it {problem}"
        )
    return segments, key_name


def check_stanza(stanza: KeyStanza) -> KeyStanza:
    """``stanza`` if its fields that reach a URL path are safe there (today: ``hc_vault``)."""
    if stanza.kind == "hc_vault":
        vault_path(str(stanza.data.get("engine_path", "")), str(stanza.data.get("key_name", "")))
    return stanza
