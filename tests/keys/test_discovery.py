"""Identity discovery from the environment, explicit inputs and a Flux decryption Secret."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyrage
import pytest

from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.errors import ConfigError, KeyProviderError
from sealed_gitops.keys.discovery import (
    age_identity_sources,
    default_age_keys_file,
    default_gnupghome,
    discover_keyring,
    keyring_from_secret_data,
)
from sealed_gitops.keys.pgp import GnuPG, PgpMasterKey
from sealed_gitops.keys.vault import VaultTransitKey
from tests.conftest_tools import PgpKey, Transit

DATA_KEY = os.urandom(32)


def age_pair() -> tuple[str, str]:
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def identity_file(path: Path, secret: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# created: today\n# public key: ignored\n\n{secret}\n")
    return path


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """An environment with a private HOME and none of the variables discovery reads."""
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "PATH": os.environ.get("PATH", "")}


def home_of(env: dict[str, str]) -> Path:
    return Path(env["HOME"])


class TestAge:
    @pytest.mark.parametrize(
        "where",
        ["SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD", "XDG_CONFIG_HOME", "HOME"],
    )
    def test_each_sops_location_is_found(
        self, where: str, clean_env: dict[str, str], tmp_path: Path
    ) -> None:
        secret, recipient = age_pair()
        env = dict(clean_env)
        if where == "SOPS_AGE_KEY":
            env["SOPS_AGE_KEY"] = secret
        elif where == "SOPS_AGE_KEY_FILE":
            env["SOPS_AGE_KEY_FILE"] = str(identity_file(tmp_path / "k.txt", secret))
        elif where == "SOPS_AGE_KEY_CMD":
            path = identity_file(tmp_path / "k.txt", secret)
            env["SOPS_AGE_KEY_CMD"] = f"{sys.executable} -c 'print(open(\"{path}\").read())'"
        elif where == "XDG_CONFIG_HOME":
            env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
            identity_file(tmp_path / "xdg" / "sops" / "age" / "keys.txt", secret)
        else:
            identity_file(home_of(env) / ".config" / "sops" / "age" / "keys.txt", secret)
        ring = discover_keyring(env=env, home=home_of(env))
        assert ring.kinds == {"age"}
        origin = "sops/age/keys.txt" if where.endswith("HOME") else where
        assert origin in "".join(ring.sources())
        assert ring.unwrap(AgeRecipient(recipient).wrap(DATA_KEY)) == DATA_KEY

    def test_all_locations_are_used_together_with_explicit_files(
        self, clean_env: dict[str, str], tmp_path: Path
    ) -> None:
        (s1, r1), (s2, r2), (s3, r3) = age_pair(), age_pair(), age_pair()
        env = {**clean_env, "SOPS_AGE_KEY": f"{s1}\n{s2}"}
        ring = discover_keyring(
            age_identity_files=[identity_file(tmp_path / "x.txt", s3)],
            env=env,
            home=home_of(env),
        )
        for recipient in (r1, r2, r3):
            assert ring.unwrap(AgeRecipient(recipient).wrap(DATA_KEY)) == DATA_KEY
        assert ring.unwrap(AgeRecipient(age_pair()[1]).wrap(DATA_KEY)) is None

    def test_use_environment_false_ignores_every_variable(
        self, clean_env: dict[str, str], tmp_path: Path
    ) -> None:
        secret, _ = age_pair()
        env = {**clean_env, "SOPS_AGE_KEY": secret, "VAULT_TOKEN": "s.x"}
        identity_file(home_of(env) / ".config" / "sops" / "age" / "keys.txt", secret)
        ring = discover_keyring(env=env, home=home_of(env), use_environment=False)
        assert len(ring) == 0

    def test_malformed_identity_names_line_not_content(
        self, clean_env: dict[str, str], tmp_path: Path
    ) -> None:
        bad = tmp_path / "bad.txt"
        bad.write_text("# comment\nAGE-SECRET-KEY-1NOTAVALIDKEYATALL\n")
        with pytest.raises(ConfigError, match="line 2") as caught:
            discover_keyring(age_identity_files=[bad], env=clean_env, home=home_of(clean_env))
        assert "NOTAVALIDKEY" not in str(caught.value)

    @pytest.mark.parametrize(
        ("variable", "value", "error"),
        [
            ("SOPS_AGE_KEY_FILE", "/nonexistent/keys.txt", ConfigError),
            ("SOPS_AGE_KEY_CMD", "false", KeyProviderError),
            ("SOPS_AGE_KEY_CMD", "/nonexistent/cmd", KeyProviderError),
            ("SOPS_AGE_KEY_CMD", "'unbalanced", ConfigError),
        ],
    )
    def test_broken_sources_are_reported(
        self, clean_env: dict[str, str], variable: str, value: str, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match=variable):
            discover_keyring(env={**clean_env, variable: value}, home=home_of(clean_env))

    def test_defaults_follow_sops(self, tmp_path: Path) -> None:
        assert default_age_keys_file(env={}, home=tmp_path) == (
            tmp_path / ".config" / "sops" / "age" / "keys.txt"
        )
        assert default_age_keys_file(env={"XDG_CONFIG_HOME": "/x"}, home=tmp_path) == Path(
            "/x/sops/age/keys.txt"
        )
        assert default_gnupghome(env={}, home=tmp_path) == tmp_path / ".gnupg"
        assert default_gnupghome(env={"GNUPGHOME": "/g"}, home=tmp_path) == Path("/g")

    def test_sources_never_show_the_identity(self, clean_env: dict[str, str]) -> None:
        secret, _ = age_pair()
        sources = age_identity_sources(env={**clean_env, "SOPS_AGE_KEY": secret})
        assert secret not in repr(sources)


class TestPgpAndVault:
    def test_gnupghome_from_environment(self, pgp_key: PgpKey, clean_env: dict[str, str]) -> None:
        env = {**clean_env, "GNUPGHOME": str(pgp_key.home.path)}
        ring = discover_keyring(env=env, home=home_of(env))
        assert ring.kinds == {"pgp"}
        stanza = PgpMasterKey(
            pgp_key.fingerprint, gnupg_home=GnuPG(home=str(pgp_key.home.path))
        ).wrap(DATA_KEY)
        assert ring.unwrap(stanza) == DATA_KEY

    def test_explicit_gnupghome_wins(self, pgp_key: PgpKey, clean_env: dict[str, str]) -> None:
        env = {**clean_env, "GNUPGHOME": "/nonexistent"}
        ring = discover_keyring(gnupghome=pgp_key.home.path, env=env, home=home_of(env))
        assert f"GNUPGHOME={pgp_key.home.path}" in ring.sources()[0]

    def test_missing_explicit_gnupghome(self, clean_env: dict[str, str], tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            discover_keyring(gnupghome=tmp_path / "none", env=clean_env, home=home_of(clean_env))

    @pytest.mark.parametrize("how", ["VAULT_TOKEN", "~/.vault-token", "explicit"])
    def test_vault_token(self, transit: Transit, clean_env: dict[str, str], how: str) -> None:
        # The token goes only to VAULT_ADDR (or SEALED_GITOPS_VAULT_ADDRESSES), issue 11.
        env = {**clean_env, "VAULT_ADDR": transit.server.address}
        explicit = None
        if how == "VAULT_TOKEN":
            env["VAULT_TOKEN"] = transit.server.token
        elif how == "explicit":
            explicit = transit.server.token
        else:
            (home_of(env) / ".vault-token").write_text(transit.server.token)
        ring = discover_keyring(vault_token=explicit, env=env, home=home_of(env))
        assert ring.kinds == {"hc_vault"}
        stanza = VaultTransitKey.from_uri(transit.uri, token=transit.server.token).wrap(DATA_KEY)
        assert ring.unwrap(stanza) == DATA_KEY

    def test_nothing_found_is_an_empty_ring(self, clean_env: dict[str, str]) -> None:
        ring = discover_keyring(env=clean_env, home=home_of(clean_env))
        assert len(ring) == 0 and ring.kinds == frozenset()


class TestFluxSecret:
    def test_all_entry_kinds(self, pgp_key: PgpKey, transit: Transit) -> None:
        secret, recipient = age_pair()
        data = {
            "identity.agekey": secret.encode(),
            "private.asc": pgp_key.home.export_secret(pgp_key.fingerprint),
            "sops.vault-token": transit.server.token.encode() + b"\n",
            "sops.aws-kms": b"ignored",
        }
        stanzas = [
            AgeRecipient(recipient).wrap(DATA_KEY),
            PgpMasterKey(pgp_key.fingerprint, gnupg_home=GnuPG(home=str(pgp_key.home.path))).wrap(
                DATA_KEY
            ),
            VaultTransitKey.from_uri(transit.uri, token=transit.server.token).wrap(DATA_KEY),
        ]
        ring = keyring_from_secret_data(data, vault_addresses=[transit.server.address])
        pgp_source = next(s for s in ring.sources() if s.startswith("pgp"))
        assert "private.asc" in pgp_source
        temp_home = next(
            e.unwrapper.gnupg.home  # type: ignore[attr-defined]
            for e in ring._entries
            if "pgp" in e.kinds
        )
        try:
            assert ring.kinds == {"age", "pgp", "hc_vault"}
            for stanza in stanzas:
                assert ring.unwrap(stanza) == DATA_KEY
            assert Path(temp_home).is_dir()
            assert oct(Path(temp_home).stat().st_mode & 0o777) == "0o700"
        finally:
            ring.close()
        assert not Path(temp_home).exists()

    def test_bad_pgp_entry_names_the_entry(self) -> None:
        with pytest.raises(KeyProviderError, match=r"secret entry bad\.asc"):
            keyring_from_secret_data({"bad.asc": b"-----BEGIN PGP PRIVATE KEY BLOCK-----\nx\n"})

    def test_empty_secret_is_an_empty_ring(self) -> None:
        assert len(keyring_from_secret_data({"unrelated": b"x"})) == 0
