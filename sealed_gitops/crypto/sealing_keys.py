"""Sealing keys: RSA key pairs and the self-signed certificate Sealed Secrets expects.

Why this module exists: compatibility with Bitnami Sealed Secrets runs through its key material.
``kubeseal --cert`` takes a PEM certificate, and its controller keeps each key as a
``kubernetes.io/tls`` Secret (``tls.key`` PKCS#1, ``tls.crt``). To let users move keys both ways we
make certificates shaped like the controller's and read the forms its users export.

The controller's certificate (``pkg/crypto/keys.go`` upstream) is: a random 128-bit serial;
subject and issuer carrying only a common name, empty unless the controller runs with
``--my-cn``; validity from now for 10 years (``--key-ttl`` default 87,600 h); a critical key
usage of *encipherOnly* alone; CA basic constraints (critical); signed SHA-256 with RSA. Go
adds a SHA-1 subject key identifier to CA certificates. We produce the same fields.

Pure: no file or network access; callers pass bytes and get objects back.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

if TYPE_CHECKING:
    from cryptography import x509

from sealed_gitops.errors import FormatError

__all__ = [
    "CONTROLLER_KEY_LABEL",
    "DEFAULT_KEY_BITS",
    "DEFAULT_VALIDITY",
    "SealingKey",
    "certificate_pem",
    "fingerprint",
    "generate_sealing_key",
    "load_private_keys",
    "load_public_key",
    "make_certificate",
    "private_key_pem",
    "tls_secret_manifest",
]

#: Default modulus size, as the Sealed Secrets controller's ``--key-size`` default.
DEFAULT_KEY_BITS = 4096
#: Certificate lifetime: the controller's ``--key-ttl`` default, 10 * 365 * 24 hours.
DEFAULT_VALIDITY = dt.timedelta(days=3650)
#: The label the controller selects its key Secrets by (value ``active``).
CONTROLLER_KEY_LABEL = "sealedsecrets.bitnami.com/sealed-secrets-key"

# keyUsage = BIT STRING, one byte, bit 7 (encipherOnly) set: the exact DER Go writes for
# x509.KeyUsageEncipherOnly. cryptography's KeyUsage class refuses encipherOnly without
# keyAgreement, so the extension value is given as raw DER.
_ENCIPHER_ONLY_DER = bytes.fromhex("03020001")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)


def fingerprint(public_key: rsa.RSAPublicKey) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo: the key id in hints and errors."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class SealingKey:
    """A private sealing key with its certificate (the certificate is what sealers get)."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


def make_certificate(
    private_key: rsa.RSAPrivateKey,
    *,
    common_name: str = "",
    not_before: dt.datetime | None = None,
    validity: dt.timedelta = DEFAULT_VALIDITY,
    serial: int | None = None,
) -> x509.Certificate:
    """A self-signed certificate with the controller's fields (see the module docstring)."""
    # Imported here: cryptography.x509 costs ~18 ms at start-up, and `build` and the sops
    # commands import this module for fingerprint() alone (issue 16, start-up).
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID, NameOID

    start = not_before or dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    public = private_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(serial if serial is not None else secrets.randbits(128) or 1)
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.KEY_USAGE, _ENCIPHER_ONLY_DER),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return builder.sign(private_key, hashes.SHA256())


def generate_sealing_key(
    *,
    bits: int = DEFAULT_KEY_BITS,
    common_name: str = "",
    validity: dt.timedelta = DEFAULT_VALIDITY,
    now: dt.datetime | None = None,
) -> SealingKey:
    """A new RSA key (public exponent 65537) and its certificate."""
    if bits < 2048:
        raise ValueError("sealing keys must have at least 2048 bits")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    cert = make_certificate(key, common_name=common_name, not_before=now, validity=validity)
    return SealingKey(private_key=key, certificate=cert)


def private_key_pem(key: rsa.RSAPrivateKey, *, pkcs8: bool = False) -> bytes:
    """Unencrypted PEM; PKCS#1 (``RSA PRIVATE KEY``) by default, as the controller stores it."""
    fmt = (
        serialization.PrivateFormat.PKCS8
        if pkcs8
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def tls_secret_manifest(key: SealingKey, *, name: str, namespace: str) -> dict[str, Any]:
    """The Secret a Sealed Secrets controller loads as one of its keys (for moving keys to it)."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {CONTROLLER_KEY_LABEL: "active"},
        },
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": b64(certificate_pem(key.certificate)),
            "tls.key": b64(private_key_pem(key.private_key)),
        },
    }


def _as_rsa_private(obj: object, *, source: str) -> rsa.RSAPrivateKey:
    if not isinstance(obj, rsa.RSAPrivateKey):
        raise FormatError("private key is not an RSA key", file=source)
    return obj


def _private_keys_from_pem(data: bytes, *, source: str) -> list[rsa.RSAPrivateKey]:
    keys: list[rsa.RSAPrivateKey] = []
    for match in _PEM_BLOCK.finditer(data):
        kind = match.group(1)
        if not kind.endswith(b"PRIVATE KEY"):
            continue
        if kind == b"ENCRYPTED PRIVATE KEY":
            raise FormatError("encrypted private keys are not supported", file=source)
        try:
            loaded = serialization.load_pem_private_key(match.group(0), password=None)
        except (ValueError, TypeError) as exc:
            raise FormatError("unreadable PEM private key", file=source) from exc
        keys.append(_as_rsa_private(loaded, source=source))
    return keys


def _manifest_secrets(docs: list[Any]) -> list[dict[str, Any]]:
    """Secrets in parsed documents, looking inside ``kind: List`` (``kubectl get -o yaml``)."""
    found: list[dict[str, Any]] = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "Secret":
            found.append(doc)
        elif doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
            found.extend(_manifest_secrets(doc["items"]))
    return found


def load_private_keys(data: bytes, *, source: str) -> list[rsa.RSAPrivateKey]:
    """Every RSA private key in ``data``.

    Accepted: PEM (PKCS#1 or PKCS#8, one or more blocks), or YAML/JSON Secret manifests holding
    ``tls.key`` (a single Secret, several documents, or a ``List`` as
    ``kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml`` prints it).
    """
    if b"-----BEGIN" in data:
        keys = _private_keys_from_pem(data, source=source)
    else:
        try:
            docs = list(yaml.safe_load_all(data))
        except yaml.YAMLError as exc:
            raise FormatError("neither PEM nor a YAML/JSON Secret manifest", file=source) from exc
        keys = []
        for secret in _manifest_secrets(docs):
            pem = _tls_key_of(secret, source=source)
            if pem is not None:
                keys.extend(_private_keys_from_pem(pem, source=source))
    if not keys:
        raise FormatError("no RSA private key found", file=source)
    return keys


def _tls_key_of(secret: dict[str, Any], *, source: str) -> bytes | None:
    data = secret.get("data") or {}
    string_data = secret.get("stringData") or {}
    if isinstance(data, dict) and "tls.key" in data:
        try:
            return base64.b64decode(str(data["tls.key"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FormatError("data.tls.key is not valid base64", file=source) from exc
    if isinstance(string_data, dict) and "tls.key" in string_data:
        return str(string_data["tls.key"]).encode("utf-8")
    return None


def load_public_key(data: bytes, *, source: str) -> rsa.RSAPublicKey:
    """The RSA public key of a PEM certificate (what ``kubeseal --fetch-cert`` prints) or key."""
    from cryptography import x509  # here, not at the top: see make_certificate

    for match in _PEM_BLOCK.finditer(data):
        kind = match.group(1)
        try:
            if kind == b"CERTIFICATE":
                public: object = x509.load_pem_x509_certificate(match.group(0)).public_key()
            elif kind in (b"PUBLIC KEY", b"RSA PUBLIC KEY"):
                public = serialization.load_pem_public_key(match.group(0))
            else:
                continue
        except ValueError as exc:
            raise FormatError(f"unreadable PEM {kind.decode()}", file=source) from exc
        if not isinstance(public, rsa.RSAPublicKey):
            raise FormatError("the certificate's key is not an RSA key", file=source)
        return public
    raise FormatError("no PEM certificate or public key found", file=source)
