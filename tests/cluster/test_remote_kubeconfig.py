"""A tenant's kubeconfig (a Sync's ``kubeConfig.secretRef``) is hostile input: cluster/kubeconfig.py
takes inline credentials only, no plugins and no files, an https server, and never shows a value."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sealed_gitops.cluster.kubeconfig import (
    MAX_KUBECONFIG_BYTES,
    parse_kubeconfig,
    remote_client,
)
from sealed_gitops.errors import ConfigError

SOURCE = "Secret team-a/remote key value"
TOKEN = "tok-5f1e2d3c4b5a69788796a5b4c3d2e1f0"


def _config(
    *, cluster: dict[str, Any] | None = None, user: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": "https://10.0.0.1:6443", **(cluster or {})}}
        ],
        "users": [{"name": "u", "user": {"token": TOKEN, **(user or {})}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }


def _parse(config: dict[str, Any]) -> Any:
    return parse_kubeconfig(yaml.safe_dump(config).encode(), source=SOURCE)


def test_inline_token_is_taken() -> None:
    parsed = _parse(_config())
    assert parsed.server == "https://10.0.0.1:6443" and parsed.token == TOKEN
    assert TOKEN not in repr(parsed)


@pytest.mark.parametrize(
    ("block", "change", "field"),
    [
        ("user", {"exec": {"command": "sh"}}, "user.exec"),
        ("user", {"auth-provider": {"name": "oidc"}}, "user.auth-provider"),
        ("user", {"tokenFile": "/var/run/secrets/token"}, "user.tokenFile"),
        ("user", {"client-certificate": "/etc/cert"}, "user.client-certificate"),
        ("user", {"client-key": "/etc/key"}, "user.client-key"),
        ("user", {"username": "a"}, "user.username"),
        ("user", {"password": "b"}, "user.password"),
        ("user", {"as": "system:admin"}, "user.as"),
        ("cluster", {"certificate-authority": "/etc/ca"}, "cluster.certificate-authority"),
        ("cluster", {"insecure-skip-tls-verify": True}, "cluster.insecure-skip-tls-verify"),
        ("cluster", {"proxy-url": "http://proxy:3128"}, "cluster.proxy-url"),
    ],
)
def test_plugins_files_and_weakened_tls_are_refused(
    block: str, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=f"{field} is refused") as caught:
        _parse(_config(**{block: change}))
    assert SOURCE in str(caught.value) and TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    "server",
    [
        "http://10.0.0.1:6443",
        "https://user:pw@10.0.0.1",
        "https://10.0.0.1/?x=1",
        "https://10.0.0.1/#frag",
        "https://",
        "file:///etc/passwd",
        "https://10.0.0.1:99999",
        "https://10.0.0.1\r\nHost: evil",
    ],
)
def test_server_must_be_a_plain_https_url(server: str) -> None:
    with pytest.raises(ConfigError, match=r"cluster\.server"):
        _parse(_config(cluster={"server": server}))


def test_token_cannot_add_a_header() -> None:
    with pytest.raises(ConfigError, match="printable ASCII") as caught:
        _parse(_config(user={"token": "abc\r\nX-Evil: 1"}))
    assert "X-Evil" not in str(caught.value)


def test_unknown_fields_and_bad_documents() -> None:
    with pytest.raises(ConfigError, match="not supported"):
        _parse(_config(user={"surprise": 1}))
    with pytest.raises(ConfigError, match="no cluster named"):
        config = _config()
        config["contexts"][0]["context"]["cluster"] = "missing"
        _parse(config)
    with pytest.raises(ConfigError, match="not a valid kubeconfig") as caught:
        parse_kubeconfig(f"token: {TOKEN}\n  bad: [".encode(), source=SOURCE)
    assert TOKEN not in str(caught.value)
    with pytest.raises(ConfigError, match="more than"):
        parse_kubeconfig(b"#" * (MAX_KUBECONFIG_BYTES + 1), source=SOURCE)


def _self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenant")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_client_certificate_is_loaded_from_memory() -> None:
    cert, key = _self_signed()
    b64 = base64.b64encode
    parsed = _parse(
        _config(
            cluster={"certificate-authority-data": b64(cert).decode()},
            user={
                "client-certificate-data": b64(cert).decode(),
                "client-key-data": b64(key).decode(),
            },
        )
    )
    client = remote_client(parsed, source=SOURCE)
    try:
        assert client.api.configuration.host == "https://10.0.0.1:6443"
        assert client.api.configuration.cert_file is None  # nothing on disk
    finally:
        client.close()
    with pytest.raises(ConfigError, match="both client-certificate-data and client-key-data"):
        _parse(_config(user={"client-certificate-data": b64(cert).decode()}))
    broken = _parse(
        _config(
            user={
                "client-certificate-data": b64(cert).decode(),
                "client-key-data": b64(b"not a key").decode(),
            }
        )
    )
    with pytest.raises(ConfigError, match="TLS material is not usable"):
        remote_client(broken, source=SOURCE)
