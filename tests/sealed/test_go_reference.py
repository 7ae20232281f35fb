"""Interop with Go's standard library: the crypto that kubeseal and the controller run.

``go_reference/main.go`` is a small stdlib-only program written for these tests: it reads a
certificate the way ``kubeseal --cert`` does (``x509.ParseCertificate``, RSA key, not expired) and
seals and opens values with ``rsa.EncryptOAEP``/``DecryptOAEP`` and AES-GCM. Skipped when no Go
toolchain is installed (Debian package ``golang-go``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sealed_gitops.crypto import sealed
from sealed_gitops.crypto.sealed import Scope, scope_label
from sealed_gitops.crypto.sealed_document import SealedSecretDoc
from sealed_gitops.crypto.sealing_keys import SealingKey, certificate_pem, private_key_pem
from sealed_gitops.errors import ScopeMismatch
from sealed_gitops.keys.sealing import SealingKeyring

SOURCE = Path(__file__).parent / "go_reference" / "main.go"


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
) -> dict[str, tuple[Path, Path, SealingKey]]:
    root = tmp_path_factory.mktemp("go-keys")
    files = {}
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
    go_ref: Path, pem_files: dict, bits: str
) -> None:
    cert, _, _ = pem_files[bits]
    assert _ref(go_ref, "cert", str(cert)).strip() == bits.encode()


@pytest.mark.parametrize("bits", ["2048", "4096"])
@pytest.mark.parametrize("scope", list(Scope))
def test_go_sealed_values_open_with_ours(
    go_ref: Path, pem_files: dict, bits: str, scope: Scope
) -> None:
    cert, _, key = pem_files[bits]
    label = scope_label(scope, namespace="team-a", name="db")
    value = _ref(go_ref, "seal", str(cert), label.decode(), stdin=b"from-go \x00\xff").decode()
    doc = SealedSecretDoc(name="db", namespace="team-a", scope=scope, encrypted_data={"v": value})
    assert SealingKeyring([key.private_key]).unseal(doc).values == {"v": b"from-go \x00\xff"}


@pytest.mark.parametrize("bits", ["2048", "4096"])
@pytest.mark.parametrize("scope", list(Scope))
def test_our_sealed_values_open_with_go(
    go_ref: Path, pem_files: dict, bits: str, scope: Scope
) -> None:
    _, priv, key = pem_files[bits]
    label = scope_label(scope, namespace="team-a", name="db")
    value = sealed.seal_value(b"from-python \x01", public_key=key.public_key, label=label)
    assert _ref(go_ref, "open", str(priv), label.decode(), stdin=value.encode()) == (
        b"from-python \x01"
    )


def test_go_value_in_the_wrong_scope_is_a_scope_mismatch(go_ref: Path, pem_files: dict) -> None:
    cert, _, key = pem_files["2048"]
    value = _ref(go_ref, "seal", str(cert), "team-a", stdin=b"x").decode()
    doc = SealedSecretDoc(name="db", namespace="team-a", scope=Scope.STRICT,
                          encrypted_data={"v": value})
    with pytest.raises(ScopeMismatch, match="team-a/db"):
        SealingKeyring([key.private_key]).unseal(doc)
