"""Age identities as a keyring provider, from the texts discovery found.

Why a separate module: discovery collects identity *texts* from several places (variables, files,
a command, a Secret), while the age crypto itself lives in ``sealed_gitops.crypto.age``. This is
the small adapter between the two, and the one place that parses identity text, so a malformed
line is reported by its origin and line number, never by its content.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import pyrage

from sealed_gitops.crypto.sops.masterkey import KeyStanza
from sealed_gitops.errors import ConfigError, IntegrityError, KeyProviderError

__all__ = [
    "AGE_KIND",
    "AgeTextSource",
    "PyrageIdentities",
    "PyrageRecipient",
    "age_unwrapper",
    "parse_identities",
]

AGE_KIND = "age"


class AgeTextSource(Protocol):
    @property
    def origin(self) -> str: ...

    @property
    def text(self) -> str: ...


def parse_identities(sources: Iterable[AgeTextSource]) -> list[Any]:
    """Parse ``AGE-SECRET-KEY-1...`` lines (comments and blanks skipped) into pyrage identities."""
    identities: list[Any] = []
    for source in sources:
        for number, raw in enumerate(source.text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                identities.append(pyrage.x25519.Identity.from_str(line))
            except Exception as exc:  # pyrage raises its own IdentityError or ValueError
                raise ConfigError(
                    f"{source.origin}: line {number} is not an age X25519 identity"
                ) from exc
    return identities


class PyrageIdentities:
    """Unwraps ``age`` stanzas (armoured age files holding the data key) with X25519 identities."""

    kinds = frozenset({AGE_KIND})

    def __init__(self, identities: list[Any]) -> None:
        self._identities = identities
        self.recipients = frozenset(str(i.to_public()) for i in identities)

    def unwrap(self, stanza: KeyStanza) -> bytes | None:
        if stanza.kind != AGE_KIND or not self._identities:
            return None
        recipient = str(stanza.data.get("recipient", ""))
        enc = stanza.enc.encode("utf-8")
        if b"-----BEGIN AGE ENCRYPTED FILE-----" not in enc:
            raise IntegrityError("age stanza holds no armoured age file", key_id=recipient or None)
        try:
            return bytes(pyrage.decrypt(enc, self._identities))
        except pyrage.DecryptError as exc:
            if "no matching keys" in str(exc).lower():
                return None
            if recipient in self.recipients:
                raise IntegrityError(
                    "age stanza could not be decrypted (tampered or truncated)",
                    key_id=recipient,
                ) from exc
            return None

    def __repr__(self) -> str:
        return f"PyrageIdentities({len(self._identities)} identities)"


class PyrageRecipient:
    """An age X25519 recipient as a MasterKey: the data key as an armoured age file, like sops."""

    kind = AGE_KIND

    def __init__(self, recipient: str) -> None:
        try:
            self._recipient = pyrage.x25519.Recipient.from_str(recipient.strip())
        except Exception as exc:  # pyrage raises RecipientError or ValueError
            raise ConfigError(f"not an age X25519 recipient: {recipient!r}") from exc
        self.recipient = recipient.strip()

    @property
    def key_id(self) -> str:
        return self.recipient

    def wrap(self, data_key: bytes) -> KeyStanza:
        try:
            armored = pyrage.encrypt(data_key, [self._recipient], armored=True)
        except Exception as exc:
            raise KeyProviderError("age encryption failed", key_id=self.recipient) from exc
        return KeyStanza(
            kind=AGE_KIND, data={"recipient": self.recipient, "enc": bytes(armored).decode("ascii")}
        )


def age_unwrapper(sources: Iterable[AgeTextSource]) -> PyrageIdentities:
    """The keyring provider for the age identities in ``sources``."""
    return PyrageIdentities(parse_identities(sources))
