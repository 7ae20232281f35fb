"""Fresh certificates and keys for one control plane, made with ``cryptography``.

Why fresh each time: a control plane for tests must trust nothing from an earlier run, and a test
that breaks the CA's key must not break the next one. One CA signs everything:

- the kube-apiserver serving certificate, for 127.0.0.1 and ``localhost``;
- client certificates: the admin (group ``system:masters``, so RBAC always allows it) and
  kube-controller-manager (user ``system:kube-controller-manager``, which RBAC's bootstrap roles
  bind), both checked against ``--client-ca-file``;
- apart from the CA, an RSA key pair that signs and verifies ServiceAccount tokens
  (``--service-account-signing-key-file`` / ``--service-account-key-file``) and that
  kube-controller-manager is given too. RSA (RS256) because every JWT consumer accepts it.

ECDSA P-256 for the X.509 keys keeps generation to milliseconds; certificates last one day.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ADMIN_GROUP", "ADMIN_USER", "CONTROLLER_MANAGER_USER", "PkiFiles", "write_pki"]

ADMIN_USER = "sealed-gitops-admin"
#: Members of this group pass every authorization check (RBAC's bootstrap policy binds it).
ADMIN_GROUP = "system:masters"
#: The user RBAC's bootstrap ClusterRoleBinding ``system:kube-controller-manager`` names.
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
_VALIDITY = timedelta(days=1)
#: Clocks of processes on one machine agree, but a certificate "not yet valid" by a second is a
#: failure nobody wants to debug: start validity a few minutes back.
_BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class PkiFiles:
    """Paths of the PEM files the three processes and the kubeconfigs read."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    controller_manager_cert: Path
    controller_manager_key: Path
    service_account_key: Path
    service_account_public_key: Path


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, *, private: bool) -> Path:
    # Keys are created 0600 up front rather than chmod-ed after the bytes are on disk.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=ca,
        crl_sign=ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


class _Authority:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = _name("sealed-gitops control-plane CA")
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        subject: x509.Name,
        *,
        usage: x509.ObjectIdentifier,
        names: list[x509.GeneralName] | None = None,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - _BACKDATE)
            .not_valid_after(self.now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key


def write_pki(directory: Path) -> PkiFiles:
    """Make the CA, the certificates and the ServiceAccount key pair as files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = _Authority(datetime.now(UTC))
    serving, serving_key = authority.issue(
        _name("kube-apiserver"),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        names=[
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ],
    )
    admin, admin_key = authority.issue(
        _name(ADMIN_USER, ADMIN_GROUP), usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    manager, manager_key = authority.issue(
        _name(CONTROLLER_MANAGER_USER), usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    service_accounts = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = service_accounts.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PkiFiles(
        ca_cert=_write(directory / "ca.crt", _cert_pem(authority.cert), private=False),
        serving_cert=_write(directory / "apiserver.crt", _cert_pem(serving), private=False),
        serving_key=_write(directory / "apiserver.key", _key_pem(serving_key), private=True),
        admin_cert=_write(directory / "admin.crt", _cert_pem(admin), private=False),
        admin_key=_write(directory / "admin.key", _key_pem(admin_key), private=True),
        controller_manager_cert=_write(
            directory / "controller-manager.crt", _cert_pem(manager), private=False
        ),
        controller_manager_key=_write(
            directory / "controller-manager.key", _key_pem(manager_key), private=True
        ),
        service_account_key=_write(
            directory / "service-accounts.key", _key_pem(service_accounts), private=True
        ),
        service_account_public_key=_write(
            directory / "service-accounts.pub", public, private=False
        ),
    )
