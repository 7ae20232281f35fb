"""Sealing keys: the controller-shaped certificate, the key forms users bring, fingerprints."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sealed_gitops.crypto.sealing_keys import (
    CONTROLLER_KEY_LABEL,
    DEFAULT_KEY_BITS,
    SealingKey,
    certificate_pem,
    fingerprint,
    load_private_keys,
    load_public_key,
    make_certificate,
    private_key_pem,
    tls_secret_manifest,
)
from sealed_gitops.errors import FormatError


def _openssl_text(cert_pem: bytes, tmp_path: Path) -> str:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: it is the independent reader of the certificate")
    path = tmp_path / "cert.pem"
    path.write_bytes(cert_pem)
    return subprocess.run(
        [openssl, "x509", "-in", str(path), "-noout", "-text"],
        capture_output=True, text=True, check=True,
    ).stdout


def test_default_key_is_rsa_4096(key_4096: SealingKey) -> None:
    assert DEFAULT_KEY_BITS == 4096
    assert key_4096.private_key.key_size == 4096
    assert key_4096.public_key.public_numbers().e == 65537


def test_certificate_has_the_controllers_fields(key_a: SealingKey, tmp_path: Path) -> None:
    cert = key_a.certificate
    assert cert.subject.rfc4514_string() == "" and cert.issuer == cert.subject
    assert 64 < cert.serial_number.bit_length() <= 128
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=3650)
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha256"
    text = _openssl_text(certificate_pem(cert), tmp_path)
    # Go writes keyUsage=encipherOnly (critical) and CA basic constraints (critical).
    assert "X509v3 Key Usage: critical\n                Encipher Only\n" in text
    assert "X509v3 Basic Constraints: critical\n                CA:TRUE" in text
    assert "Subject Key Identifier" in text


def test_certificate_common_name_and_start(key_a: SealingKey, tmp_path: Path) -> None:
    start = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    cert = make_certificate(key_a.private_key, common_name="sealed-secret", not_before=start)
    assert cert.subject.rfc4514_string() == "CN=sealed-secret"
    assert cert.not_valid_before_utc == start
    assert "Subject: CN = sealed-secret" in _openssl_text(certificate_pem(cert), tmp_path)


def test_fingerprint_is_sha256_of_spki(key_a: SealingKey) -> None:
    der = key_a.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_a.fingerprint == fingerprint(key_a.public_key) == hashlib.sha256(der).hexdigest()


def _pkcs1(key: SealingKey) -> bytes:
    return private_key_pem(key.private_key)


def _pkcs8(key: SealingKey) -> bytes:
    return private_key_pem(key.private_key, pkcs8=True)


def _tls_secret_yaml(key: SealingKey) -> bytes:
    return yaml.safe_dump(tls_secret_manifest(key, name="k1", namespace="kube-system")).encode()


def _tls_secret_json(key: SealingKey) -> bytes:
    return json.dumps(tls_secret_manifest(key, name="k1", namespace="kube-system")).encode()


def _kubectl_list(key: SealingKey) -> bytes:
    # What `kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml` prints.
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
        "items": [tls_secret_manifest(key, name="k1", namespace="kube-system")],
    }).encode()


@pytest.mark.parametrize(
    "form", [_pkcs1, _pkcs8, _tls_secret_yaml, _tls_secret_json, _kubectl_list]
)
def test_private_key_forms(key_a: SealingKey, form: Callable[[SealingKey], bytes]) -> None:
    keys = load_private_keys(form(key_a), source="k")
    assert [fingerprint(k.public_key()) for k in keys] == [key_a.fingerprint]


def test_several_keys_in_one_file(key_a: SealingKey, key_b: SealingKey) -> None:
    pem = _pkcs1(key_a) + b"\n" + _pkcs8(key_b)
    assert [fingerprint(k.public_key()) for k in load_private_keys(pem, source="k")] == [
        key_a.fingerprint, key_b.fingerprint,
    ]
    docs = _tls_secret_yaml(key_a) + b"---\n" + _tls_secret_yaml(key_b)
    assert len(load_private_keys(docs, source="k")) == 2


def test_tls_secret_manifest_is_what_the_controller_loads(key_a: SealingKey) -> None:
    manifest = tls_secret_manifest(key_a, name="sealed-secrets-key1", namespace="kube-system")
    assert manifest["type"] == "kubernetes.io/tls"
    assert manifest["metadata"]["labels"] == {CONTROLLER_KEY_LABEL: "active"}
    assert set(manifest["data"]) == {"tls.crt", "tls.key"}


def test_bad_private_keys_are_format_errors(tmp_path: Path) -> None:
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    encrypted = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    cases = {
        ec_pem: "not an RSA key",
        encrypted: "encrypted private keys",
        b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n": "unreadable",
        b"kind: Secret\nmetadata: {name: x}\ndata: {}\n": "no RSA private key",
        b"key: [unclosed": "neither PEM nor",
    }
    for data, message in cases.items():
        with pytest.raises(FormatError, match=message) as info:
            load_private_keys(data, source="bad.key")
        assert str(info.value).startswith("bad.key")


def test_public_key_from_certificate_or_pem(key_a: SealingKey) -> None:
    spki = key_a.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for data in (certificate_pem(key_a.certificate), spki):
        assert fingerprint(load_public_key(data, source="c")) == key_a.fingerprint
    with pytest.raises(FormatError, match="no PEM certificate"):
        load_public_key(_pkcs1(key_a), source="c")
