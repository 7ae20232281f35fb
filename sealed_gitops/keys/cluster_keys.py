"""The cluster's own keys: what one KeyRing key is, how it is made, stored and turned into keyrings.

Why this module exists: a KeyRing key is a *pair* that rotates together, an age X25519 identity for
SOPS files and an RSA sealing key (with its self-signed certificate) for SealedSecrets. The
operator stores the private parts (in a Secret per key, or in one Vault KV v2 secret), publishes
the public parts in the KeyRing's status, and the CLI writes the public parts into the repository.
All of them must agree on one shape, so the shape, the states, and the (de)serialisations live
here, apart from the I/O that moves them (``operator/keyring.py``, ``cli/keys_cmds.py``,
``cli/keys_backup.py``).

A key's id is the fingerprint of its sealing key (hex SHA-256 of the DER SubjectPublicKeyInfo):
the same id SealedSecrets' key-id hints carry, so a sealed value names its key directly; a SOPS
file names its key by the age recipient, which :attr:`ClusterKey.age_recipient` maps back.

States: ``active`` (new files are encrypted for it; exactly one), ``previous`` (still decrypts,
waiting for re-encryption), ``retired`` (kept for backups only, never used to decrypt).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import pyrage
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sealed_gitops.crypto.age import AgeIdentities
from sealed_gitops.crypto.sealing_keys import (
    DEFAULT_KEY_BITS,
    certificate_pem,
    fingerprint,
    generate_sealing_key,
    private_key_pem,
)
from sealed_gitops.errors import ConfigError, FormatError
from sealed_gitops.keys.keyring import KeyRing
from sealed_gitops.keys.sealing import SealingKeyring
from sealed_gitops.redact import register

__all__ = [
    "AGE_ENTRY",
    "CERT_ENTRY",
    "CREATED_ANNOTATION",
    "FINGERPRINT_ANNOTATION",
    "KEYRING_LABEL",
    "KEY_ENTRY",
    "RETIRED_ANNOTATION",
    "RETIRE_ANNOTATION",
    "ROTATE_ANNOTATION",
    "STATE_LABEL",
    "ClusterKey",
    "KeyState",
    "decode_secret_data",
    "decrypting_keys",
    "find_key",
    "format_time",
    "generate_cluster_key",
    "ordered",
    "parse_time",
    "public_status",
    "rotate_keys",
    "secret_name",
]

#: Entries of a key's Secret (and fields of its Vault/backup record). ``tls.*`` as in a
#: ``kubernetes.io/tls`` Secret, so the sealing key can be handed to a Bitnami controller as is.
AGE_ENTRY = "age.agekey"
KEY_ENTRY = "tls.key"
CERT_ENTRY = "tls.crt"


class KeyState(StrEnum):
    ACTIVE = "active"
    PREVIOUS = "previous"
    RETIRED = "retired"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise FormatError(f"not an RFC 3339 UTC time: {text!r}") from exc


@dataclass(frozen=True)
class ClusterKey:
    """One key of a KeyRing: the private parts (repr hides them) and its state."""

    age_identity: str = field(repr=False)
    sealing_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate = field(repr=False)
    state: KeyState
    created: str
    retired: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.sealing_key.public_key())

    @property
    def age_recipient(self) -> str:
        return str(pyrage.x25519.Identity.from_str(self.age_identity).to_public())

    @property
    def certificate_pem(self) -> str:
        return certificate_pem(self.certificate).decode("ascii")

    def with_state(self, state: KeyState, *, now: dt.datetime | None = None) -> ClusterKey:
        stamp = format_time(now or _now()) if state is KeyState.RETIRED else ""
        return replace(self, state=state, retired=stamp)

    # -- serialisation: Secret data, Vault KV and backup records --------------------------------

    def secret_data(self) -> dict[str, str]:
        """The base64 ``data`` of the key's Secret (state lives in its labels)."""

        def b64(raw: bytes) -> str:
            return base64.b64encode(raw).decode("ascii")

        return {
            AGE_ENTRY: b64(self.age_identity.encode("ascii") + b"\n"),
            KEY_ENTRY: b64(private_key_pem(self.sealing_key)),
            CERT_ENTRY: b64(certificate_pem(self.certificate)),
        }

    def record(self) -> dict[str, str]:
        """Everything about the key as strings: a Vault KV entry and a backup entry."""
        return {
            "fingerprint": self.fingerprint,
            "state": self.state.value,
            "created": self.created,
            "retired": self.retired,
            AGE_ENTRY: self.age_identity,
            KEY_ENTRY: private_key_pem(self.sealing_key).decode("ascii"),
            CERT_ENTRY: self.certificate_pem,
        }

    @classmethod
    def from_parts(
        cls,
        *,
        age: bytes | str,
        key_pem: bytes | str,
        cert_pem: bytes | str,
        state: str,
        created: str,
        retired: str = "",
        source: str,
    ) -> ClusterKey:
        """Rebuild a key from stored parts; errors name ``source``, never the key material."""
        age_text = age.decode("utf-8", "replace") if isinstance(age, bytes) else age
        key_raw = key_pem.encode() if isinstance(key_pem, str) else key_pem
        cert_raw = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
        lines = [ln.strip() for ln in age_text.splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith("#")]
        if len(lines) != 1:
            raise FormatError(f"{source}: expected one age identity", file=source)
        try:
            pyrage.x25519.Identity.from_str(lines[0])
        except Exception as exc:
            raise FormatError(f"{source}: the age identity is not valid", file=source) from exc
        register(lines[0])
        register(key_raw)
        try:
            private = serialization.load_pem_private_key(key_raw, password=None)
            cert = x509.load_pem_x509_certificate(cert_raw)
        except (ValueError, TypeError) as exc:
            raise FormatError(f"{source}: unreadable sealing key or certificate") from exc
        if not isinstance(private, rsa.RSAPrivateKey):
            raise FormatError(f"{source}: the sealing key is not an RSA key")
        if fingerprint(private.public_key()) != fingerprint(_rsa_public(cert, source)):
            raise FormatError(f"{source}: the certificate does not belong to the sealing key")
        try:
            key_state = KeyState(state or KeyState.PREVIOUS.value)
        except ValueError as exc:
            raise FormatError(f"{source}: unknown key state {state!r}") from exc
        return cls(
            age_identity=lines[0],
            sealing_key=private,
            certificate=cert,
            state=key_state,
            created=created,
            retired=retired,
        )

    @classmethod
    def from_secret(cls, secret: Mapping[str, Any], data: Mapping[str, bytes]) -> ClusterKey:
        """From a key Secret (its labels and annotations) and its decoded data."""
        meta = secret.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        source = f"Secret {meta.get('namespace')}/{meta.get('name')}"
        missing = [e for e in (AGE_ENTRY, KEY_ENTRY, CERT_ENTRY) if e not in data]
        if missing:
            raise FormatError(f"{source}: missing entries {', '.join(missing)}")
        return cls.from_parts(
            age=data[AGE_ENTRY],
            key_pem=data[KEY_ENTRY],
            cert_pem=data[CERT_ENTRY],
            state=str(labels.get(STATE_LABEL, "")),
            created=str(annotations.get(CREATED_ANNOTATION, "")),
            retired=str(annotations.get(RETIRED_ANNOTATION, "")),
            source=source,
        )

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, source: str) -> ClusterKey:
        try:
            return cls.from_parts(
                age=str(record[AGE_ENTRY]),
                key_pem=str(record[KEY_ENTRY]),
                cert_pem=str(record[CERT_ENTRY]),
                state=str(record.get("state") or ""),
                created=str(record.get("created") or ""),
                retired=str(record.get("retired") or ""),
                source=source,
            )
        except KeyError as exc:
            raise FormatError(f"{source}: a key record lacks {exc.args[0]}") from exc


#: Labels and annotations of a key Secret (names shared by the operator and the CLI).
KEYRING_LABEL = "sealed-gitops.io/keyring"
STATE_LABEL = "sealed-gitops.io/key-state"
FINGERPRINT_ANNOTATION = "sealed-gitops.io/key-fingerprint"
CREATED_ANNOTATION = "sealed-gitops.io/key-created"
RETIRED_ANNOTATION = "sealed-gitops.io/key-retired"

#: Annotations on a KeyRing the CLI writes and the operator acts on. A new value of the first
#: asks for a rotation (the CLI writes the current time); the second lists comma-separated
#: fingerprints (or unique prefixes) of keys to retire.
ROTATE_ANNOTATION = "sealed-gitops.io/rotate-requested-at"
RETIRE_ANNOTATION = "sealed-gitops.io/retire"


def secret_name(keyring: str, key_fingerprint: str) -> str:
    """One Secret per key; 16 hex digits make a collision within one KeyRing implausible."""
    return f"{keyring}-key-{key_fingerprint[:16]}"


def _rsa_public(cert: x509.Certificate, source: str) -> rsa.RSAPublicKey:
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise FormatError(f"{source}: the certificate's key is not RSA")
    return public


def decode_secret_data(data: Mapping[str, Any], *, source: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, value in data.items():
        try:
            out[name] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FormatError(f"{source}: entry {name} is not base64") from exc
        register(out[name])
    return out


def generate_cluster_key(
    *,
    bits: int = DEFAULT_KEY_BITS,
    state: KeyState = KeyState.ACTIVE,
    now: dt.datetime | None = None,
) -> ClusterKey:
    """A fresh age identity and RSA sealing key; the private parts are registered for redaction."""
    moment = now or _now()
    identity = pyrage.x25519.Identity.generate()
    sealing = generate_sealing_key(bits=bits, now=moment)
    age_text = str(identity)
    register(age_text)
    register(private_key_pem(sealing.private_key))
    return ClusterKey(
        age_identity=age_text,
        sealing_key=sealing.private_key,
        certificate=sealing.certificate,
        state=state,
        created=format_time(moment),
    )


def rotate_keys(
    keys: Sequence[ClusterKey], *, bits: int = DEFAULT_KEY_BITS, now: dt.datetime | None = None
) -> list[ClusterKey]:
    """A new active key first; the former active key(s) become previous."""
    fresh = generate_cluster_key(bits=bits, now=now)
    demoted = [k.with_state(KeyState.PREVIOUS) if k.state is KeyState.ACTIVE else k for k in keys]
    return [fresh, *demoted]


def find_key(keys: Iterable[ClusterKey], wanted: str) -> ClusterKey:
    """The key whose fingerprint starts with ``wanted`` (or whose age recipient is ``wanted``)."""
    text = wanted.strip().lower()
    if not text:
        raise ConfigError("an empty fingerprint")
    found = [k for k in keys if k.fingerprint.startswith(text) or k.age_recipient == wanted]
    if not found:
        raise ConfigError(f"no key with fingerprint {wanted}")
    if len(found) > 1:
        raise ConfigError(f"fingerprint prefix {wanted} is ambiguous: give more digits")
    return found[0]


def ordered(keys: Iterable[ClusterKey]) -> list[ClusterKey]:
    """Active first, then previous newest first, then retired: the order keys are tried in."""
    rank = {KeyState.ACTIVE: 0, KeyState.PREVIOUS: 1, KeyState.RETIRED: 2}
    by_age = sorted(keys, key=lambda k: k.created, reverse=True)
    return sorted(by_age, key=lambda k: rank[k.state])


def public_status(keys: Iterable[ClusterKey]) -> list[dict[str, str]]:
    """The ``status.keys`` list: public parts only."""
    out = []
    for key in ordered(keys):
        entry = {
            "fingerprint": key.fingerprint,
            "state": key.state.value,
            "created": key.created,
            "ageRecipient": key.age_recipient,
            "sealingCertificate": key.certificate_pem,
        }
        if key.retired:
            entry["retired"] = key.retired
        out.append(entry)
    return out


def decrypting_keys(keys: Iterable[ClusterKey]) -> tuple[KeyRing, SealingKeyring]:
    """The SOPS unwrapper and the sealing keyring of every key that is not retired."""
    usable = [k for k in ordered(keys) if k.state is not KeyState.RETIRED]
    ring = KeyRing()
    if usable:
        ring.add(
            AgeIdentities(pyrage.x25519.Identity.from_str(k.age_identity) for k in usable),
            kinds={"age"},
            source="KeyRing age identities",
        )
    return ring, SealingKeyring(k.sealing_key for k in usable)
