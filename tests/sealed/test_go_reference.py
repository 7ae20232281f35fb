"""Interop with Go's standard library: the crypto that kubeseal and the controller run.

``go_reference/main.go`` is a small stdlib-only program written for these tests: it reads a
certificate the way ``kubeseal --cert`` does (``x509.ParseCertificate``, RSA key, not expired),
seals and opens values with ``rsa.EncryptOAEP``/``DecryptOAEP`` and AES-GCM, and makes a key and
certificate with ``x509.CreateCertificate`` and the controller's certificate fields, so both
directions are checked: kubeseal accepts our certificates, and we accept the controller's.
Skipped when no Go toolchain is installed (Debian package ``golang-go``).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509

from sealed_gitops.cli.main import cli
from sealed_gitops.crypto import sealed
from sealed_gitops.crypto.sealed import Scope, scope_label
from sealed_gitops.crypto.sealed_document import SealedSecretDoc
from sealed_gitops.crypto.sealing_keys import (
    CONTROLLER_KEY_LABEL,
    SealingKey,
    certificate_pem,
    fingerprint,
    load_private_keys,
    load_public_key,
    private_key_pem,
)
from sealed_gitops.errors import ScopeMismatch
from sealed_gitops.keys.sealing import SealingKeyring

SOURCE = Path(__file__).parent / "go_reference" / "main.go"

#: Per key size ("2048", "4096"): the certificate file, the private key file, and the key itself.
PemFiles = dict[str, tuple[Path, Path, SealingKey]]


@pytest.fixture(scope="session")
def go_ref(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain (apt-get install golang-go): the Go interop tests need one")
    out = tmp_path_factory.mktemp("go-ref")
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "", "GO111MODULE": "auto",
           "GOTOOLCHAIN": "local"}
    if not os.access(Path.home(), os.W_OK):
        env["GOCACHE"] = str(out / "cache")
    subprocess.run([go, "build", "-o", str(out / "ref"), str(SOURCE)], cwd=out, env=env,
                   check=True, capture_output=True, timeout=240)
    return out / "ref"


@pytest.fixture(scope="session")
def pem_files(
    tmp_path_factory: pytest.TempPathFactory, key_a: SealingKey, key_4096: SealingKey
) -> PemFiles:
    root = tmp_path_factory.mktemp("go-keys")
    files: PemFiles = {}
    for name, key in (("2048", key_a), ("4096", key_4096)):
        cert, priv = root / f"{name}.crt", root / f"{name}.key"
        cert.write_bytes(certificate_pem(key.certificate))
        priv.write_bytes(private_key_pem(key.private_key))
        files[name] = (cert, priv, key)
    return files


def _ref(go_ref: Path, *args: str, stdin: bytes = b"") -> bytes:
    result = subprocess.run([str(go_ref), *args], input=stdin, capture_output=True, timeout=30,
                            check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


@pytest.mark.parametrize("bits", ["2048", "4096"])
def test_go_x509_reads_our_certificate_like_kubeseal(
    go_ref: Path, pem_files: PemFiles, bits: str
) -> None:
    cert, _, _ = pem_files[bits]
    assert _ref(go_ref, "cert", str(cert)).strip() == bits.encode()


@pytest.mark.parametrize("bits", ["2048", "4096"])
@pytest.mark.parametrize("scope", list(Scope))
def test_go_sealed_values_open_with_ours(
    go_ref: Path, pem_files: PemFiles, bits: str, scope: Scope
) -> None:
    cert, _, key = pem_files[bits]
    label = scope_label(scope, namespace="team-a", name="db")
    value = _ref(go_ref, "seal", str(cert), label.decode(), stdin=b"from-go \x00\xff").decode()
    doc = SealedSecretDoc(name="db", namespace="team-a", scope=scope, encrypted_data={"v": value})
    assert SealingKeyring([key.private_key]).unseal(doc).values == {"v": b"from-go \x00\xff"}


@pytest.mark.parametrize("bits", ["2048", "4096"])
@pytest.mark.parametrize("scope", list(Scope))
def test_our_sealed_values_open_with_go(
    go_ref: Path, pem_files: PemFiles, bits: str, scope: Scope
) -> None:
    _, priv, key = pem_files[bits]
    label = scope_label(scope, namespace="team-a", name="db")
    value = sealed.seal_value(b"from-python \x01", public_key=key.public_key, label=label)
    assert _ref(go_ref, "open", str(priv), label.decode(), stdin=value.encode()) == (
        b"from-python \x01"
    )


def test_go_value_in_the_wrong_scope_is_a_scope_mismatch(go_ref: Path, pem_files: PemFiles) -> None:
    cert, _, key = pem_files["2048"]
    value = _ref(go_ref, "seal", str(cert), "team-a", stdin=b"x").decode()
    doc = SealedSecretDoc(name="db", namespace="team-a", scope=Scope.STRICT,
                          encrypted_data={"v": value})
    with pytest.raises(ScopeMismatch, match="team-a/db"):
        SealingKeyring([key.private_key]).unseal(doc)


@pytest.fixture(scope="session")
def controller_made(go_ref: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A key and certificate made with Go's crypto/x509 the way the controller makes its own."""
    out = tmp_path_factory.mktemp("go-controller-key")
    _ref(go_ref, "mkcert", str(out), "2048")
    return {"crt": out / "tls.crt", "key": out / "tls.key"}


def _openssl_fields(cert: Path) -> list[str]:
    """Subject, issuer, signature algorithm and the extensions, as openssl reads them."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: it is the independent reader of the certificates")
    text = subprocess.run([openssl, "x509", "-in", str(cert), "-noout", "-text"],
                          capture_output=True, text=True, check=True, timeout=30).stdout
    lines = [line.strip() for line in text.splitlines()]
    head = [line for line in lines if line.startswith(("Subject:", "Issuer:", "Signature Alg"))]
    start = lines.index("X509v3 extensions:")
    end = lines.index("Signature Algorithm: sha256WithRSAEncryption", start)
    # The key identifier differs with the key; its presence and criticality are compared.
    return head + [
        "<key id>" if ":" in line and len(line) > 40 else line for line in lines[start:end]
    ]


def test_our_certificate_matches_a_controller_made_one(
    controller_made: dict[str, Path], pem_files: PemFiles
) -> None:
    ours, _, _ = pem_files["2048"]
    assert _openssl_fields(ours) == _openssl_fields(controller_made["crt"])
    assert any("Encipher Only" in line for line in _openssl_fields(ours))
    lifetimes = {
        cert.not_valid_after_utc - cert.not_valid_before_utc
        for cert in (x509.load_pem_x509_certificate(path.read_bytes())
                     for path in (ours, controller_made["crt"]))
    }
    assert lifetimes == {dt.timedelta(days=3650)}


def test_we_accept_a_controller_made_certificate_and_key(
    go_ref: Path, controller_made: dict[str, Path], tmp_path: Path
) -> None:
    public = load_public_key(controller_made["crt"].read_bytes(), source="tls.crt")
    # The key as `kubectl get secret -o yaml` exports it from the controller's namespace.
    exported = tmp_path / "main.key"
    exported.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "sealed-secrets-key7", "namespace": "kube-system",
                     "labels": {CONTROLLER_KEY_LABEL: "active"}},
        "data": {name: base64.b64encode(controller_made[part].read_bytes()).decode()
                 for name, part in (("tls.crt", "crt"), ("tls.key", "key"))},
    }))
    (private,) = load_private_keys(exported.read_bytes(), source=str(exported))
    assert fingerprint(private.public_key()) == fingerprint(public)
    # Sealed by us for their certificate, opened by Go with their key ...
    value = sealed.seal_value(b"to-the-controller", public_key=public, label=b"team-a/db")
    assert _ref(go_ref, "open", str(controller_made["key"]), "team-a/db",
                stdin=value.encode()) == b"to-the-controller"
    # ... and sealed by Go for their certificate, opened by `unseal --key` with the export.
    go_value = _ref(go_ref, "seal", str(controller_made["crt"]), "team-a/db",
                    stdin=b"from-the-controller").decode()
    file = tmp_path / "sealed.yaml"
    file.write_text(yaml.safe_dump({
        "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
        "metadata": {"name": "db", "namespace": "team-a"},
        "spec": {"encryptedData": {"v": go_value}, "template": {"metadata": {"name": "db"}}},
    }))
    result = CliRunner().invoke(cli, ["unseal", str(file), "--key", str(exported)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    (secret,) = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert base64.b64decode(secret["data"]["v"]) == b"from-the-controller"
