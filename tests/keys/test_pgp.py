"""PGP master keys against the real gpg, in temporary GnuPG homes."""

from __future__ import annotations

import base64
import logging
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealed_gitops.crypto.sops.masterkey import KeyStanza, MasterKey, Unwrapper
from sealed_gitops.errors import ConfigError, IntegrityError, KeyProviderError, NoMatchingKey
from sealed_gitops.keys.pgp import (
    GnuPG,
    PgpMasterKey,
    PgpUnwrapper,
    normalize_fingerprint,
    require_secret_key,
)
from sealed_gitops.testing.gnupg import gnupg_home
from tests.conftest_tools import PgpKey

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def home(pgp_key: PgpKey) -> GnuPG:
    return GnuPG(home=str(pgp_key.home.path))


class TestRoundTrip:
    @settings(max_examples=8, deadline=None)
    @given(data_key=st.binary(min_size=1, max_size=64))
    def test_wrap_then_unwrap_returns_the_data_key(
        self, home: GnuPG, pgp_key: PgpKey, data_key: bytes
    ) -> None:
        stanza = PgpMasterKey(pgp_key.fingerprint, gnupg_home=home).wrap(data_key)
        assert PgpUnwrapper(gnupg_home=home).unwrap(stanza) == data_key

    def test_stanza_has_the_fields_sops_writes_in_its_order(
        self, home: GnuPG, pgp_key: PgpKey
    ) -> None:
        stanza = PgpMasterKey(pgp_key.fingerprint.lower(), gnupg_home=home).wrap(os.urandom(32))
        assert stanza.kind == "pgp"
        assert list(stanza.data) == ["created_at", "enc", "fp"]
        assert RFC3339.match(stanza.data["created_at"])
        assert stanza.enc.startswith("-----BEGIN PGP MESSAGE-----")
        assert stanza.data["fp"] == pgp_key.fingerprint
        assert stanza.key_id == pgp_key.fingerprint

    def test_the_message_is_readable_by_plain_gpg(self, home: GnuPG, pgp_key: PgpKey) -> None:
        data_key = os.urandom(32)
        stanza = PgpMasterKey(pgp_key.fingerprint, gnupg_home=home).wrap(data_key)
        assert pgp_key.home.gpg("--decrypt", input=stanza.enc.encode()).stdout == data_key

    def test_provider_and_key_satisfy_the_engine_protocols(
        self, home: GnuPG, pgp_key: PgpKey
    ) -> None:
        assert isinstance(PgpMasterKey(pgp_key.fingerprint, gnupg_home=home), MasterKey)
        assert isinstance(PgpUnwrapper(gnupg_home=home), Unwrapper)

    def test_from_armored_imports_a_public_key_into_another_home(self, pgp_key: PgpKey) -> None:
        public = pgp_key.home.export_public(pgp_key.fingerprint)
        with gnupg_home() as other:
            key = PgpMasterKey.from_armored(public, gnupg_home=GnuPG(home=str(other.path)))
            assert key.fingerprint == pgp_key.fingerprint
            stanza = key.wrap(b"k" * 32)
        owner = PgpUnwrapper(gnupg_home=GnuPG(home=str(pgp_key.home.path)))
        assert owner.unwrap(stanza) == b"k" * 32


class TestNoMatch:
    def test_stanza_for_a_key_not_held_is_no_match(
        self, home: GnuPG, other_pgp_key: PgpKey
    ) -> None:
        foreign = PgpMasterKey(
            other_pgp_key.fingerprint, gnupg_home=GnuPG(home=str(other_pgp_key.home.path))
        ).wrap(os.urandom(32))
        assert PgpUnwrapper(gnupg_home=home).unwrap(foreign) is None

    def test_stanza_whose_fp_lies_is_no_match(
        self, home: GnuPG, pgp_key: PgpKey, other_pgp_key: PgpKey
    ) -> None:
        # fp says "ours" but the message is for the other key: gpg reports NO_SECKEY.
        foreign = PgpMasterKey(
            other_pgp_key.fingerprint, gnupg_home=GnuPG(home=str(other_pgp_key.home.path))
        ).wrap(os.urandom(32))
        lying = KeyStanza("pgp", {**foreign.data, "fp": pgp_key.fingerprint})
        assert PgpUnwrapper(gnupg_home=home).unwrap(lying) is None

    def test_other_kinds_are_not_ours(self, home: GnuPG) -> None:
        assert PgpUnwrapper(gnupg_home=home).unwrap(KeyStanza("age", {"enc": "x"})) is None

    def test_require_secret_key(self, home: GnuPG, pgp_key: PgpKey) -> None:
        unwrapper = PgpUnwrapper(gnupg_home=home)
        require_secret_key(unwrapper, pgp_key.fingerprint)
        with pytest.raises(NoMatchingKey):
            require_secret_key(unwrapper, "AB" * 20)


class TestFailures:
    @pytest.mark.parametrize("position", [40, 120, -40], ids=["head", "body", "tail"])
    def test_corrupted_message_is_an_integrity_error(
        self, home: GnuPG, pgp_key: PgpKey, position: int
    ) -> None:
        stanza = PgpMasterKey(pgp_key.fingerprint, gnupg_home=home).wrap(os.urandom(32))
        enc = stanza.enc
        i = position % len(enc)
        while enc[i] in "\n-=":
            i += 1
        flipped = enc[:i] + ("B" if enc[i] != "B" else "C") + enc[i + 1 :]
        with pytest.raises(IntegrityError) as caught:
            PgpUnwrapper(gnupg_home=home).unwrap(KeyStanza("pgp", {**stanza.data, "enc": flipped}))
        assert pgp_key.fingerprint in str(caught.value)

    def test_enc_that_is_not_a_pgp_message(self, home: GnuPG, pgp_key: PgpKey) -> None:
        with pytest.raises(IntegrityError):
            PgpUnwrapper(gnupg_home=home).unwrap(
                KeyStanza("pgp", {"fp": pgp_key.fingerprint, "enc": "not armoured"})
            )

    def test_wrap_for_unknown_fingerprint_names_the_home(self, home: GnuPG) -> None:
        with pytest.raises(KeyProviderError, match="no usable public key") as caught:
            PgpMasterKey("CD" * 20, gnupg_home=home).wrap(b"x" * 32)
        assert "CD" * 20 in str(caught.value)

    @pytest.mark.parametrize("bad", ["", "not-hex", "age1abc", "0xZZ"])
    def test_bad_fingerprint_is_a_config_error(self, bad: str) -> None:
        with pytest.raises(ConfigError):
            PgpMasterKey(bad)

    def test_missing_home_is_a_config_error(self, tmp_path: object) -> None:
        gpg = GnuPG(home=f"{tmp_path}/absent")
        with pytest.raises(ConfigError, match="does not exist"):
            PgpUnwrapper(gnupg_home=gpg).unwrap(KeyStanza("pgp", {"fp": "AB", "enc": "x"}))

    def test_debug_logging_never_shows_the_data_key(
        self, home: GnuPG, pgp_key: PgpKey, caplog: pytest.LogCaptureFixture
    ) -> None:
        data_key = b"\x01PLAINTEXT-DATA-KEY-CANARY-0123456"
        caplog.set_level(logging.DEBUG)
        stanza = PgpMasterKey(pgp_key.fingerprint, gnupg_home=home).wrap(data_key)
        assert PgpUnwrapper(gnupg_home=GnuPG(home=home.home)).unwrap(stanza) == data_key
        text = caplog.text
        assert "CANARY" not in text
        assert base64.b64encode(data_key).decode() not in text


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0xabcdef0123456789", "ABCDEF0123456789"),
        ("ABCD EF01 2345 6789", "ABCDEF0123456789"),
        ("  abcdef  ", "ABCDEF"),
    ],
)
def test_normalize_fingerprint(given: str, expected: str) -> None:
    assert normalize_fingerprint(given) == expected
