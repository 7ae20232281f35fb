"""age master keys for SOPS: X25519 and SSH (ed25519, RSA) through pyrage, post-quantum natively.

Why: age is the key type the cluster's KeyRing holds, so it is the one master key the engine wraps
and unwraps natively, in process. The stanza layout is sops' (``recipient`` then ``enc``, the
data key as an ASCII-armored age file). Unwrapping first matches the stanza's recipient against
the identities held, so a file for someone else costs no X25519, RSA or ML-KEM work.

sops also accepts SSH public keys as age recipients (``ssh-ed25519 ...``, ``ssh-rsa ...``, the
``agessh`` recipient types) and reads SSH private keys as identities; pyrage implements both.

age's post-quantum hybrid type (``age1pq1...`` / ``AGE-SECRET-KEY-PQ-1...``, ML-KEM-768 + X25519,
written by sops 3.12 and ``age-keygen -pq``) has no implementation in pyrage, so it is done here
with ``cryptography``: :mod:`sealed_gitops.crypto.age_pq` is the recipient type and
:mod:`sealed_gitops.crypto.age_format` the age file around it. What we still cannot do, and say
so instead of failing everything: age plugins (``age1<name>1...``, ``AGE-PLUGIN-...``) need their
plugin binaries. Such an identity is *skipped* with a note (:class:`SkippedIdentity`), as sops
goes on to the keys it can use; a file that only such a key opens fails with "unsupported
recipient type", naming the type.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyrage

from sealed_gitops.crypto.sops.masterkey import KeyStanza
from sealed_gitops.errors import ConfigError, CryptoError, KeyProviderError, SealedGitopsError

if TYPE_CHECKING:
    from sealed_gitops.crypto import age_format
    from sealed_gitops.crypto.age_pq import PQIdentity

#: age_pq's RECIPIENT_PREFIX and IDENTITY_PREFIX, repeated so that telling a post-quantum key
#: from a classic one imports nothing: age_pq and age_format (ML-KEM, HKDF, the age file format)
#: are imported only when a post-quantum key is there, instead of costing ~3 ms of every sops
#: command's start-up (issue 16). tests/cli/test_startup_imports.py checks they match.
_PQ_RECIPIENT_PREFIX = "age1pq1"
_PQ_PREFIX = "AGE-SECRET-" + "KEY-PQ-1"

__all__ = [
    "AgeIdentities",
    "AgeRecipient",
    "ParsedIdentities",
    "SkippedIdentity",
    "parse_identities",
    "parse_identity_text",
    "recipient_type",
    "unsupported_recipient",
]

_X25519_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{20,}$")
_SSH_TYPES = ("ssh-ed25519", "ssh-rsa")
_PEM_BEGIN = re.compile(r"^-----BEGIN ([A-Z0-9 ]+)-----$")
_SSH_PEM_LABELS = {"OPENSSH PRIVATE KEY", "RSA PRIVATE KEY"}
# Spelled in two parts so that the repository's own scan for committed private keys (which looks
# for this prefix) does not flag the parser that reads them.
_X25519_PREFIX = "AGE-SECRET-" + "KEY-1"

#: age's name of the post-quantum type (its stanza type), as :func:`recipient_type` says it.
PQ_TYPE = "mlkem768x25519"
_USABLE = ("x25519", PQ_TYPE, *_SSH_TYPES)

#: Recipient types we recognise but cannot use, by shape (checked in this order).
_UNSUPPORTED = (
    (re.compile(r"^age1[a-z0-9+\-.]+1[02-9ac-hj-np-z]+$"), "age plugin (age1<plugin>1...)"),
)


def recipient_type(recipient: str) -> str:
    """``x25519``, ``mlkem768x25519`` (``age1pq1``), ``ssh-ed25519``, ``ssh-rsa``, or a
    description of an unsupported type."""
    text = recipient.strip()
    if _X25519_RECIPIENT.match(text):
        return "x25519"
    if text.startswith(_PQ_RECIPIENT_PREFIX):
        from sealed_gitops.crypto.age_pq import is_pq_recipient

        if is_pq_recipient(text):
            return PQ_TYPE
    first = text.split(maxsplit=1)[0] if text else ""
    if first in _SSH_TYPES:
        return first
    for shape, description in _UNSUPPORTED:
        if shape.match(text):
            return description
    return "unknown"


def unsupported_recipient(recipient: str) -> str | None:
    """Why ``recipient`` cannot be used here, or None when it can."""
    kind = recipient_type(recipient)
    if kind in _USABLE:
        return None
    return f"unsupported recipient type: {kind}"


def _short(recipient: str) -> str:
    """A recipient for messages: a post-quantum one is ~1960 characters."""
    text = recipient.strip()
    return text if len(text) <= 64 else text[:24] + "..." + text[-8:]


def _is_pq_identity(identity: object) -> bool:
    """True for a post-quantum identity (one exists only once age_pq has been imported)."""
    module = sys.modules.get("sealed_gitops.crypto.age_pq")
    return module is not None and isinstance(identity, module.PQIdentity)


def _ssh_key_id(public_line: str) -> str:
    """``type base64`` of an SSH public key line: the comment is not part of the key."""
    return " ".join(public_line.split()[:2])


class AgeRecipient:
    """One age recipient (``age1…``, ``age1pq1…`` or an SSH public key) a data key can be
    wrapped for."""

    kind = "age"

    def __init__(self, recipient: str) -> None:
        text = recipient.strip()
        problem = unsupported_recipient(text)
        if problem is not None:
            raise ConfigError(f"{problem}: {_short(text)!r}")
        self._recipient: Any
        self._pq = recipient_type(text) == PQ_TYPE
        try:
            if self._pq:
                from sealed_gitops.crypto.age_pq import PQRecipient

                self._recipient = PQRecipient.parse(text)
            elif text.startswith("ssh-"):
                self._recipient = pyrage.ssh.Recipient.from_str(text)
            else:
                self._recipient = pyrage.x25519.Recipient.from_str(text)
        except ConfigError as exc:  # age_pq says what is wrong, never quoting a key
            raise ConfigError(f"invalid age recipient {_short(text)!r}: {exc.reason}") from exc
        except Exception as exc:  # pyrage raises a bare ValueError/RecipientError
            raise ConfigError(f"invalid age recipient {_short(text)!r}") from exc
        self._text = text

    @property
    def key_id(self) -> str:
        return self._text

    def wrap(self, data_key: bytes) -> KeyStanza:
        if self._pq:
            from sealed_gitops.crypto import age_format

            data = age_format.encrypt(data_key, [self._recipient.wrap])
            return KeyStanza("age", {"recipient": self._text, "enc": age_format.armor(data)})
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


@dataclass(frozen=True)
class SkippedIdentity:
    """An identity that was left out: where (line number, never content) and why."""

    line: int
    reason: str

    def describe(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ParsedIdentities:
    """What an identity text held: usable ``(public key, identity)`` pairs and skipped ones."""

    keys: list[tuple[str, Any]]
    skipped: list[SkippedIdentity]

    @property
    def identities(self) -> list[Any]:
        return [identity for _, identity in self.keys]


def _ssh_identity(pem: str, line: int) -> tuple[str, Any] | SkippedIdentity:
    """An SSH private key block as ``(public key id, pyrage identity)``, or why it was skipped."""
    # Imported here: cryptography's serialization (SSH, PEM, RSA, EC) costs ~4 ms at start-up
    # and only SSH identities need it; an X25519 key file never does (issue 16, start-up).
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    data = pem.encode("ascii", "replace")
    try:
        if "OPENSSH" in pem.splitlines()[0]:
            private: object = serialization.load_ssh_private_key(data, password=None)
        else:
            private = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        return SkippedIdentity(line, "passphrase-protected SSH key: unsupported, skipped")
    except Exception:  # cryptography raises ValueError/UnsupportedAlgorithm; never quote it
        return SkippedIdentity(line, "SSH private key that cannot be read, skipped")
    if not isinstance(private, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        return SkippedIdentity(line, "SSH key of a type age cannot use (ed25519, RSA), skipped")
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    key_id = _ssh_key_id(public.decode("ascii"))
    try:
        identity = pyrage.ssh.Identity.from_buffer(data)
    except Exception:
        return SkippedIdentity(line, "SSH private key that age cannot use")
    return key_id, identity


def _line_identity(line: str, number: int) -> tuple[str, Any] | SkippedIdentity:
    if line.startswith(_PQ_PREFIX):
        from sealed_gitops.crypto.age_pq import PQIdentity

        try:
            pq = PQIdentity.parse(line)
        except ConfigError as exc:
            # As for X25519 below: a damaged key of a supported type is a mistake to fix.
            raise ConfigError(
                f"line {number} of the age identity file is a malformed age post-quantum key"
            ) from exc
        return pq.to_public(), pq
    if line.startswith("AGE-PLUGIN-"):
        return SkippedIdentity(number, "age plugin identity: plugins are not supported, skipped")
    if line.startswith(_X25519_PREFIX):
        try:
            identity = pyrage.x25519.Identity.from_str(line)
        except Exception as exc:
            # A damaged key of a type we do support is a mistake to fix, not a key to skip.
            # Never echo the line: it is a private key.
            raise ConfigError(
                f"line {number} of the age identity file is a malformed age X25519 key"
            ) from exc
        return str(identity.to_public()), identity
    return SkippedIdentity(number, "not an age identity (unknown type), skipped")


def parse_identity_text(text: str) -> ParsedIdentities:
    """Every identity in an identities text: age lines, and SSH private key blocks.

    ``#`` comments and blank lines are ignored as age does. Anything else that is not a key we
    can use is skipped with its line number (never its content: it may be a private key), except
    a damaged X25519 identity line: that raises :class:`ConfigError` naming the line.
    """
    keys: list[tuple[str, Any]] = []
    skipped: list[SkippedIdentity] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number = index + 1
        line = lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        begin = _PEM_BEGIN.match(line)
        if begin is not None:
            label = begin.group(1)
            block = [line]
            while index < len(lines):
                block.append(lines[index].strip())
                index += 1
                if block[-1] == f"-----END {label}-----":
                    break
            if label in _SSH_PEM_LABELS:
                result = _ssh_identity("\n".join(block) + "\n", number)
            elif label == "AGE ENCRYPTED FILE":
                result = SkippedIdentity(number, "passphrase-encrypted identity file: unsupported")
            else:
                result = SkippedIdentity(number, f"{label.lower()}: not an age identity, skipped")
        else:
            result = _line_identity(line, number)
        if isinstance(result, SkippedIdentity):
            skipped.append(result)
        else:
            keys.append(result)
    return ParsedIdentities(keys=keys, skipped=skipped)


def parse_identities(text: str) -> list[Any]:
    """The identities of an identities text that ``pyrage.decrypt`` can use (X25519 and SSH;
    post-quantum ones are only usable through :class:`AgeIdentities`); others are skipped."""
    return [i for i in parse_identity_text(text).identities if not _is_pq_identity(i)]


class AgeIdentities:
    """Private age keys; implements the engine's ``Unwrapper`` for ``age`` stanzas."""

    def __init__(self, identities: Iterable[Any] | ParsedIdentities) -> None:
        if isinstance(identities, ParsedIdentities):
            pairs = list(identities.keys)
        else:
            pairs = [(str(i.to_public()), i) for i in identities]
        self._identities = [identity for _, identity in pairs]
        self._by_recipient = dict(pairs)

    @classmethod
    def from_text(cls, text: str) -> AgeIdentities:
        return cls(parse_identity_text(text))

    @property
    def recipients(self) -> list[str]:
        return list(self._by_recipient)

    def _match(self, recipient: str) -> Any | None:
        if recipient.startswith("ssh-"):
            return self._by_recipient.get(_ssh_key_id(recipient))
        return self._by_recipient.get(recipient)

    def unwrap(self, stanza: KeyStanza) -> bytes | None:
        if stanza.kind != "age":
            return None
        recipient = str(stanza.data.get("recipient", "")).strip()
        if recipient:
            problem = unsupported_recipient(recipient)
            if problem is not None:
                # Not "no key": the user may hold the key, we cannot use it. The engine goes on
                # to the file's other stanzas and names the file if none opens.
                raise KeyProviderError(
                    f"{problem} ({_short(recipient)}); decrypt with sops, or add a recipient "
                    "of another type to the file",
                    key_id=_short(recipient),
                )
            match = self._match(recipient)
            if match is None:
                return None
            candidates = [match]
        else:
            candidates = self._identities
        data_key = _open(stanza.enc, candidates, key_id=_short(recipient) if recipient else None)
        if data_key is None and recipient:
            # The stanza names a key we hold, and that key does not open it: tampering.
            raise CryptoError(
                "the age stanza does not decrypt with its recipient's key",
                key_id=_short(recipient),
            )
        return data_key


def _open(enc: str, candidates: list[Any], *, key_id: str | None) -> bytes | None:
    """The payload of the armored age file ``enc`` for one of ``candidates``, or None.

    Post-quantum identities go through :mod:`age_format`, the others through pyrage. ``key_id``
    is the stanza's recipient when it names one: then damage is an error, else "not ours".
    Errors never quote the stanza or a key: only what kind of damage was found.
    """
    pq = [i for i in candidates if _is_pq_identity(i)]
    classic = [i for i in candidates if not _is_pq_identity(i)]
    if pq:
        from sealed_gitops.crypto import age_format

        try:
            data = age_format.dearmor(enc)
            opened = age_format.decrypt(data, lambda s: next(_unwrapped(pq, s), None))
        except SealedGitopsError as exc:
            if key_id is not None:
                raise CryptoError(
                    f"the age stanza does not decrypt with its recipient's key: {exc.reason}",
                    key_id=key_id,
                ) from exc
            opened = None
        if opened is not None or not classic:
            return opened
    try:
        return bytes(pyrage.decrypt(enc.encode("ascii", "replace"), classic))
    except Exception:  # pyrage raises bare DecryptError/ValueError for any failure
        return None


def _unwrapped(identities: list[PQIdentity], stanza: age_format.Stanza) -> Iterator[bytes]:
    for identity in identities:
        file_key = identity.unwrap(stanza)
        if file_key is not None:
            yield file_key
