"""age X25519 master keys for SOPS, through pyrage.

Why: age is the key type the cluster's KeyRing holds, so it is the one master key the engine wraps
and unwraps natively, in process. The stanza layout is sops' (``recipient`` then ``enc``, the
data key as an ASCII-armored age file). Unwrapping first matches the stanza's recipient against
the identities held, so a file for someone else costs no X25519 work.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyrage

from sealed_gitops.crypto.sops.masterkey import KeyStanza
from sealed_gitops.errors import ConfigError, CryptoError, KeyProviderError

__all__ = ["AgeIdentities", "AgeRecipient", "parse_identities"]


class AgeRecipient:
    """One age public key (``age1…``) that a data key can be wrapped for."""

    kind = "age"

    def __init__(self, recipient: str) -> None:
        text = recipient.strip()
        try:
            self._recipient = pyrage.x25519.Recipient.from_str(text)
        except Exception as exc:  # pyrage raises a bare ValueError/RecipientError
            raise ConfigError(f"invalid age recipient {text!r}") from exc
        self._text = text

    @property
    def key_id(self) -> str:
        return self._text

    def wrap(self, data_key: bytes) -> KeyStanza:
        try:
            armored = pyrage.encrypt(data_key, [self._recipient], armored=True)
        except Exception as exc:
            raise KeyProviderError(f"age encryption failed: {exc}", key_id=self._text) from exc
        enc = armored.decode("ascii")
        if not enc.endswith("\n"):
            enc += "\n"
        return KeyStanza("age", {"recipient": self._text, "enc": enc})

    def __repr__(self) -> str:
        return f"AgeRecipient({self._text!r})"


def parse_identities(text: str) -> list[pyrage.x25519.Identity]:
    """The private-key lines of an age identity file; ``#`` comments and blank lines skipped."""
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.append(pyrage.x25519.Identity.from_str(line))
        except Exception as exc:
            # never echo the line: it is a private key
            raise ConfigError(f"line {number} of the age identity file is not an age key") from exc
    return found


class AgeIdentities:
    """Private age keys; implements the engine's ``Unwrapper`` for ``age`` stanzas."""

    def __init__(self, identities: Iterable[pyrage.x25519.Identity]) -> None:
        self._identities = list(identities)
        self._by_recipient = {str(i.to_public()): i for i in self._identities}

    @classmethod
    def from_text(cls, text: str) -> AgeIdentities:
        return cls(parse_identities(text))

    @property
    def recipients(self) -> list[str]:
        return list(self._by_recipient)

    def unwrap(self, stanza: KeyStanza) -> bytes | None:
        if stanza.kind != "age":
            return None
        recipient = str(stanza.data.get("recipient", "")).strip()
        if recipient:
            match = self._by_recipient.get(recipient)
            if match is None:
                return None
            candidates = [match]
        else:
            candidates = self._identities
        enc = stanza.enc.encode("ascii", "replace")
        try:
            return bytes(pyrage.decrypt(enc, candidates))
        except Exception as exc:
            if recipient:
                raise CryptoError(
                    "the age stanza does not decrypt with its recipient's key", key_id=recipient
                ) from exc
            return None
