"""Fixtures for the key-provider tests: real gpg, OpenBao and sops (see tests/conftest_tools)."""

from tests.conftest_tools import other_pgp_key, pgp_key, sops_env, transit

__all__ = ["other_pgp_key", "pgp_key", "sops_env", "transit"]
