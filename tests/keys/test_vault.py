"""Vault transit master keys against a real OpenBao dev server."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import hvac
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealed_gitops.crypto.sops.masterkey import KeyStanza, MasterKey, Unwrapper
from sealed_gitops.errors import ConfigError, IntegrityError, KeyProviderError
from sealed_gitops.keys.keyring import KeyRing
from sealed_gitops.keys.vault import VaultTransitKey, VaultUnwrapper
from sealed_gitops.keys.vault_addresses import (
    TransitKeyRef,
    normalize_address,
    parse_transit_uri,
    resolve_vault_token,
)
from sealed_gitops.testing.openbao import free_port
from tests.conftest_tools import Transit


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "https://vault.example.com:8200/v1/transit/keys/app",
            TransitKeyRef("https://vault.example.com:8200", "transit", "app"),
        ),
        (
            "http://127.0.0.1:8200/v1/team/a/transit/keys/k-1",
            TransitKeyRef("http://127.0.0.1:8200", "team/a/transit", "k-1"),
        ),
        (
            "http://vault/v1/sops/keys/firstkey/",
            TransitKeyRef("http://vault", "sops", "firstkey"),
        ),
    ],
)
def test_parse_transit_uri(uri: str, expected: TransitKeyRef) -> None:
    ref = parse_transit_uri(uri)
    assert ref == expected
    assert parse_transit_uri(ref.uri) == ref


@pytest.mark.parametrize(
    "uri",
    [
        "vault.example.com:8200/v1/transit/keys/app",  # no scheme
        "https://vault.example.com/transit/keys/app",  # no /v1
        "https://vault.example.com/v1/transit/app",  # no /keys/
        "https://vault.example.com/v1/keys/app",  # no engine
        "ftp://vault.example.com/v1/transit/keys/app",
    ],
)
def test_parse_transit_uri_rejects(uri: str) -> None:
    with pytest.raises(ConfigError):
        parse_transit_uri(uri)


@pytest.mark.parametrize(
    ("explicit", "env", "file", "expected"),
    [
        ("s.explicit", {"VAULT_TOKEN": "s.env"}, "s.file", "s.explicit"),
        (None, {"VAULT_TOKEN": "s.env\n"}, "s.file", "s.env"),
        (None, {}, "s.file\n", "s.file"),
        (None, {}, None, None),
        (None, {"VAULT_TOKEN": ""}, "", None),
    ],
    ids=["explicit", "env", "file", "none", "empty"],
)
def test_resolve_vault_token(
    tmp_path: Path,
    explicit: str | None,
    env: dict[str, str],
    file: str | None,
    expected: str | None,
) -> None:
    if file is not None:
        (tmp_path / ".vault-token").write_text(file)
    assert resolve_vault_token(explicit, env=env, home=tmp_path) == expected


def test_normalize_address() -> None:
    assert normalize_address("HTTP://Vault:8200/") == "http://vault:8200"
    with pytest.raises(ConfigError):
        normalize_address("vault:8200")


class TestAgainstOpenBao:
    @settings(max_examples=10, deadline=None)
    @given(data_key=st.binary(min_size=1, max_size=64))
    def test_round_trip(self, transit: Transit, data_key: bytes) -> None:
        stanza = VaultTransitKey.from_uri(transit.uri, token=transit.server.token).wrap(data_key)
        assert VaultUnwrapper(token=transit.server.token).unwrap(stanza) == data_key

    def test_stanza_is_what_sops_writes(self, transit: Transit) -> None:
        key = VaultTransitKey.from_uri(transit.nested_uri, token=transit.server.token)
        assert isinstance(key, MasterKey)
        assert key.key_id == transit.nested_uri
        data_key = os.urandom(32)
        stanza = key.wrap(data_key)
        assert list(stanza.data) == [
            "vault_address", "engine_path", "key_name", "created_at", "enc"
        ]
        assert stanza.data["vault_address"] == transit.server.address
        assert stanza.data["engine_path"] == "team/a/transit"
        assert stanza.data["key_name"] == "second"
        assert stanza.enc.startswith("vault:v1:")
        assert stanza.key_id == transit.nested_uri
        # Same convention as sops: Vault's plaintext is the base64 of the data key.
        client = hvac.Client(url=transit.server.address, token=transit.server.token)
        answer = client.secrets.transit.decrypt_data(
            name="second", ciphertext=stanza.enc, mount_point="team/a/transit"
        )
        assert answer["data"]["plaintext"] == base64.b64encode(data_key).decode()

    def test_token_from_environment(
        self, transit: Transit, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("VAULT_TOKEN", transit.server.token)
        monkeypatch.setenv("HOME", str(tmp_path))
        stanza = VaultTransitKey.from_uri(transit.uri).wrap(b"d" * 32)
        assert VaultUnwrapper(token=resolve_vault_token()).unwrap(stanza) == b"d" * 32

    def test_unwrapper_never_picks_up_the_processs_own_token(
        self, transit: Transit, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        # The operator passes the token from the Sync's Secret; an absent one must not fall
        # back to whatever VAULT_TOKEN the operator process happens to have.
        stanza = VaultTransitKey.from_uri(transit.uri, token=transit.server.token).wrap(b"k" * 32)
        monkeypatch.setenv("VAULT_TOKEN", transit.server.token)
        monkeypatch.setenv("HOME", str(tmp_path))
        with pytest.raises(KeyProviderError, match=r"denied|refused"):
            VaultUnwrapper(token=None).unwrap(stanza)

    def test_unwrapper_is_a_keyring_provider(self, transit: Transit) -> None:
        unwrapper = VaultUnwrapper(token=transit.server.token)
        assert isinstance(unwrapper, Unwrapper)
        stanza = VaultTransitKey.from_uri(transit.uri, token=transit.server.token).wrap(b"k" * 32)
        ring = KeyRing([unwrapper])
        assert ring.unwrap(stanza) == ring.unwrap(stanza) == b"k" * 32
        assert ring.operation_count("hc_vault") == 1

    def test_allowed_addresses_keep_the_token_home(self, transit: Transit) -> None:
        stanza = VaultTransitKey.from_uri(transit.uri, token=transit.server.token).wrap(b"k" * 32)
        elsewhere = VaultUnwrapper(
            token=transit.server.token, allowed_addresses=["https://vault.example.com:8200"]
        )
        with pytest.raises(KeyProviderError, match=r"not one of .*the Vault token was not sent"):
            elsewhere.unwrap(stanza)
        here = VaultUnwrapper(
            token=transit.server.token, allowed_addresses=[transit.server.address + "/"]
        )
        assert here.unwrap(stanza) == b"k" * 32

    @pytest.mark.parametrize(
        ("change", "error", "words"),
        [
            ({"key_name": "absent"}, KeyProviderError, "no transit key 'absent'"),
            ({"engine_path": "nope"}, KeyProviderError, "Vault at"),
            ({"enc": "vault:v1:" + "A" * 44}, IntegrityError, "tampered"),
            ({"enc": "not-vault"}, IntegrityError, "no transit ciphertext"),
            ({"vault_address": "nonsense"}, IntegrityError, "vault_address"),
        ],
        ids=["missing-key", "missing-engine", "tampered", "not-transit", "bad-address"],
    )
    def test_failures(
        self, transit: Transit, change: dict[str, str], error: type[Exception], words: str
    ) -> None:
        data_key = b"\x07SECRET-DATA-KEY-CANARY-000000000"
        stanza = VaultTransitKey.from_uri(transit.uri, token=transit.server.token).wrap(data_key)
        broken = KeyStanza("hc_vault", {**stanza.data, **change})
        with pytest.raises(error, match=words) as caught:
            VaultUnwrapper(token=transit.server.token).unwrap(broken)
        assert "CANARY" not in str(caught.value)

    def test_bad_token_is_refused(self, transit: Transit) -> None:
        stanza = VaultTransitKey.from_uri(transit.uri, token=transit.server.token).wrap(b"k" * 32)
        with pytest.raises(KeyProviderError, match=r"denied|refused") as caught:
            VaultUnwrapper(token="s.wrong").unwrap(stanza)
        assert "s.wrong" not in str(caught.value)
        with pytest.raises(KeyProviderError):
            VaultTransitKey.from_uri(transit.uri, token="s.wrong").wrap(b"k" * 32)


def test_unreachable_vault_names_the_address() -> None:
    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    key = VaultTransitKey.from_uri(f"{address}/v1/transit/keys/k", token="t", timeout=2)
    with pytest.raises(KeyProviderError, match=f"Vault is unreachable at {address}"):
        key.wrap(b"k" * 32)
    stanza = KeyStanza(
        "hc_vault",
        {"vault_address": address, "engine_path": "transit", "key_name": "k", "enc": "vault:v1:x"},
    )
    with pytest.raises(KeyProviderError, match=f"Vault is unreachable at {address}"):
        VaultUnwrapper(token="t", timeout=2).unwrap(stanza)
