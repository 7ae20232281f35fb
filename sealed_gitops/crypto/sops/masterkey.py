"""The seam between the SOPS engine and whoever holds keys.

A SOPS file's data key is wrapped once per *master key* (an age recipient, a PGP key, a Vault
transit key, a cloud KMS key) and the wrapped forms are stored in the ``sops`` metadata as
*stanzas*. The engine in this package never talks to gpg, Vault or a KMS itself: it hands stanzas to
an :class:`Unwrapper` (the keyring, in ``sealed_gitops.keys``) and asks :class:`MasterKey` objects
to wrap a new data key. That keeps ``crypto/`` pure (no subprocess, no network) and lets the
operator and the CLI bring different keyrings to the same engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["STANZA_KINDS", "KeyStanza", "MasterKey", "Unwrapper"]

#: The metadata keys sops uses for each master-key type, in the order sops writes them.
STANZA_KINDS = ("kms", "gcp_kms", "azure_kv", "hc_vault", "age", "pgp")


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
