"""PGP and Vault transit files interoperate with the real sops in both directions.

sops encrypts with ``--pgp`` (a temporary GNUPGHOME) and ``--hc-vault-transit`` (a real OpenBao dev
server, ``VAULT_ADDR``/``VAULT_TOKEN``); the native engine decrypts through a discovered KeyRing.
Then the other way round, and a key group mix of age + PGP + Vault with a Shamir threshold of 2,
opened with any two of the three.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml

from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.crypto.sops import decrypt_bytes, encrypt_bytes
from sealed_gitops.crypto.sops.masterkey import MasterKey
from sealed_gitops.errors import NoMatchingKey
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.keys.keyring import KeyRing
from sealed_gitops.keys.pgp import GnuPG, PgpMasterKey
from sealed_gitops.keys.sops_binary import SopsBinary
from sealed_gitops.keys.vault import VaultTransitKey
from sealed_gitops.testing.gnupg import GnupgHome
from tests.conftest_tools import PgpKey, Transit, pgp_key, sops_env, transit

__all__ = ["pgp_key", "sops_env", "transit"]  # fixtures used by this module

YAML_DOC = """\
# a comment at the top
app:
    name: interop
    password: pässwörd ✓ ünïcode
    empty: ""
    multiline: |
        line one
        line two
    port: 5432
    ratio: 0.125
    negative: -2.5
    enabled: true
    disabled: false
    # a comment in a map
    list:
        - first
        - 2
        - 3.5
        - true
        - nested: value
plain_unencrypted: visible
"""

JSON_DOC = json.dumps(
    {
        "app": {
            "password": "pässwörd ✓",
            "empty": "",
            "multiline": "a\nb\n",
            "port": 5432,
            "ratio": 0.125,
            "enabled": True,
            "list": ["x", 1, 2.5, False, {"k": "v"}],
        }
    },
    indent=4,
    ensure_ascii=False,
)

DOCS = {"yaml": YAML_DOC.encode(), "json": JSON_DOC.encode()}


@pytest.fixture(scope="module")
def age_identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    identity = pyrage.x25519.Identity.generate()
    path = tmp_path_factory.mktemp("age") / "keys.txt"
    path.write_text(f"{identity}\n")
    return path, str(identity.to_public())


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """An empty folder (no stray .sops.yaml) that is also HOME: no ~/.vault-token leaks in.

    sops runs without a PGP key get an empty GnuPG home in here; any agent gpg starts in it is
    stopped afterwards.
    """
    yield tmp_path
    empty = tmp_path / ".gnupg"
    if empty.exists():
        GnupgHome(path=empty).kill_agent()


def sops_with(
    base: dict[str, str],
    workdir: Path,
    *,
    pgp: PgpKey | None = None,
    transit: Transit | None = None,
    age: Path | None = None,
) -> SopsBinary:
    env = {**base, "HOME": str(workdir), "GNUPGHOME": str(workdir / ".gnupg")}
    if pgp is not None:
        env["GNUPGHOME"] = str(pgp.home.path)
    if transit is not None:
        env["VAULT_ADDR"] = transit.server.address
        env["VAULT_TOKEN"] = transit.server.token
    if age is not None:
        env["SOPS_AGE_KEY_FILE"] = str(age)
    return SopsBinary(env=env)


def ring_with(
    *, pgp: PgpKey | None = None, transit: Transit | None = None, age: Path | None = None
) -> KeyRing:
    return discover_keyring(
        age_identity_files=[age] if age else [],
        gnupghome=pgp.home.path if pgp else None,
        vault_token=transit.server.token if transit else None,
        use_environment=False,
    )


def data(fmt: str, text: bytes) -> Any:
    return json.loads(text) if fmt == "json" else yaml.safe_load(text)


def ordered(value: Any) -> Any:
    if isinstance(value, dict):
        return [(k, ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value


def same(fmt: str, left: bytes, right: bytes) -> bool:
    return bool(ordered(data(fmt, left)) == ordered(data(fmt, right)))


@pytest.mark.parametrize("fmt", ["yaml", "json"])
class TestSopsToOurs:
    def test_pgp(self, fmt: str, pgp_key: PgpKey, sops_env: dict[str, str], workdir: Path) -> None:
        sops = sops_with(sops_env, workdir, pgp=pgp_key)
        encrypted = sops.encrypt(
            DOCS[fmt], fmt=fmt, key_args=["--pgp", pgp_key.fingerprint], cwd=workdir
        )
        assert b"pgp" in encrypted and "pässwörd".encode() not in encrypted
        with ring_with(pgp=pgp_key) as ring:
            out = decrypt_bytes(encrypted, unwrapper=ring, fmt=fmt)
        assert same(fmt, out, DOCS[fmt])
        if fmt == "yaml":
            # Comments survive and the bytes match what sops itself prints.
            assert out == sops.decrypt(encrypted, fmt=fmt)

    def test_vault(
        self, fmt: str, transit: Transit, sops_env: dict[str, str], workdir: Path
    ) -> None:
        sops = sops_with(sops_env, workdir, transit=transit)
        encrypted = sops.encrypt(
            DOCS[fmt], fmt=fmt, key_args=["--hc-vault-transit", transit.nested_uri], cwd=workdir
        )
        meta = data(fmt, encrypted)["sops"]["hc_vault"][0]
        assert meta["engine_path"] == "team/a/transit"
        with ring_with(transit=transit) as ring:
            out = decrypt_bytes(encrypted, unwrapper=ring, fmt=fmt)
            assert ring.operation_count("hc_vault", "ok") == 1
        assert same(fmt, out, DOCS[fmt])


@pytest.mark.parametrize("fmt", ["yaml", "json"])
class TestOursToSops:
    def test_pgp(self, fmt: str, pgp_key: PgpKey, sops_env: dict[str, str], workdir: Path) -> None:
        key = PgpMasterKey(pgp_key.fingerprint, gnupg_home=GnuPG(home=str(pgp_key.home.path)))
        encrypted = encrypt_bytes(DOCS[fmt], key_groups=[[key]], fmt=fmt)
        out = sops_with(sops_env, workdir, pgp=pgp_key).decrypt(encrypted, fmt=fmt)
        assert same(fmt, out, DOCS[fmt])

    def test_vault(
        self, fmt: str, transit: Transit, sops_env: dict[str, str], workdir: Path
    ) -> None:
        key = VaultTransitKey.from_uri(transit.uri, token=transit.server.token)
        encrypted = encrypt_bytes(DOCS[fmt], key_groups=[[key]], fmt=fmt)
        out = sops_with(sops_env, workdir, transit=transit).decrypt(encrypted, fmt=fmt)
        assert same(fmt, out, DOCS[fmt])


@dataclass(frozen=True)
class Material:
    """The three kinds of keys of the mixed-group tests."""

    age_file: Path
    age_recipient: str
    pgp: PgpKey
    transit: Transit

    def key_groups(self) -> list[list[MasterKey]]:
        home = GnuPG(home=str(self.pgp.home.path))
        return [
            [AgeRecipient(self.age_recipient)],
            [PgpMasterKey(self.pgp.fingerprint, gnupg_home=home)],
            [VaultTransitKey.from_uri(self.transit.uri, token=self.transit.server.token)],
        ]

    def pick(self, subset: tuple[str, ...]) -> dict[str, Any]:
        return {
            "age": self.age_file if "age" in subset else None,
            "pgp": self.pgp if "pgp" in subset else None,
            "transit": self.transit if "vault" in subset else None,
        }


@pytest.fixture
def material(age_identity: tuple[Path, str], pgp_key: PgpKey, transit: Transit) -> Material:
    return Material(age_identity[0], age_identity[1], pgp_key, transit)


SUBSETS = [("age", "pgp"), ("age", "vault"), ("pgp", "vault")]


class TestMixedKeyGroups:
    """age + PGP + Vault, one per group, threshold 2: any two groups open the file."""

    @pytest.fixture
    def ours(self, material: Material) -> bytes:
        return encrypt_bytes(
            DOCS["yaml"], key_groups=material.key_groups(), threshold=2, fmt="yaml"
        )

    @pytest.mark.parametrize("subset", SUBSETS, ids="+".join)
    def test_ours_opens_with_sops_given_two_groups(
        self,
        ours: bytes,
        subset: tuple[str, ...],
        material: Material,
        sops_env: dict[str, str],
        workdir: Path,
    ) -> None:
        meta = yaml.safe_load(ours)["sops"]
        assert meta["shamir_threshold"] == 2 and len(meta["key_groups"]) == 3
        sops = sops_with(sops_env, workdir, **material.pick(subset))
        assert same("yaml", sops.decrypt(ours, fmt="yaml"), DOCS["yaml"])

    @pytest.mark.parametrize("subset", SUBSETS, ids="+".join)
    def test_sops_made_opens_with_ours_given_two_groups(
        self,
        subset: tuple[str, ...],
        material: Material,
        sops_env: dict[str, str],
        workdir: Path,
    ) -> None:
        (workdir / ".sops.yaml").write_text(
            "creation_rules:\n"
            "  - shamir_threshold: 2\n"
            "    key_groups:\n"
            f"      - age: ['{material.age_recipient}']\n"
            f"      - pgp: ['{material.pgp.fingerprint}']\n"
            f"      - hc_vault: ['{material.transit.uri}']\n"
        )
        sops = sops_with(sops_env, workdir, pgp=material.pgp, transit=material.transit)
        encrypted = sops.encrypt(DOCS["yaml"], fmt="yaml", filename="s.yaml", cwd=workdir)
        assert len(yaml.safe_load(encrypted)["sops"]["key_groups"]) == 3
        with ring_with(**material.pick(subset)) as ring:
            out = decrypt_bytes(encrypted, unwrapper=ring, fmt="yaml")
        assert same("yaml", out, DOCS["yaml"])

    def test_one_group_is_not_enough(
        self, ours: bytes, material: Material, sops_env: dict[str, str], workdir: Path
    ) -> None:
        with ring_with(age=material.age_file) as ring, pytest.raises(NoMatchingKey):
            decrypt_bytes(ours, unwrapper=ring, fmt="yaml", file="mixed.yaml")
        with pytest.raises(NoMatchingKey):
            sops_with(sops_env, workdir, age=material.age_file).decrypt(ours, fmt="yaml")
