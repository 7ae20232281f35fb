"""Fixtures for the SOPS command-line tests: isolated environment, age keys, the real sops.

Every test runs with an empty key environment (no SOPS_*, no GNUPGHOME, no VAULT_*, HOME in the
test's temporary folder) so a developer's own keys can neither help nor leak into a test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sealed_gitops.cli.main import cli
from sealed_gitops.testing.sops_tool import run_sops
from tests.conftest_tools import AgeKey, age_keys, pgp_key, sops_binary, transit

__all__ = ["AgeKey", "age_keys", "pgp_key", "sops_binary", "transit"]

#: A plaintext distinctive enough that finding it anywhere is proof of a leak.
CANARY = "canary-Zq7vX-9f3k-plaintext"

SECRET_YAML = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: team-a
type: Opaque
stringData:
  password: {CANARY}
  user: user-a1x
  port: "p-5432-x"
"""


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key from the developer's environment; HOME and the cwd inside the test folder."""
    for name in list(os.environ):
        if name.startswith(("SOPS_", "VAULT_", "SEALED_GITOPS_")) or name in (
            "GNUPGHOME", "EDITOR", "VISUAL", "XDG_CONFIG_HOME",
        ):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SOPS_DISABLE_VERSION_CHECK", "true")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def work(isolated_env: Path) -> Path:
    return isolated_env


@pytest.fixture
def use_key(monkeypatch: pytest.MonkeyPatch, age_keys: list[AgeKey]) -> AgeKey:
    """Key 0 as the user's identity, through SOPS_AGE_KEY_FILE as a sops user would have it."""
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys[0].file))
    return age_keys[0]


@pytest.fixture
def secret_file(work: Path) -> Path:
    path = work / "secret.yaml"
    path.write_text(SECRET_YAML)
    return path


def run(*args: str, stdin: str | bytes | None = None) -> Result:
    """The CLI in process; exceptions are not swallowed so a traceback fails the test loudly."""
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def encrypt_file(path: Path, *recipients: str, extra: tuple[str, ...] = ()) -> Path:
    """Encrypt ``path`` in place for the given age recipients."""
    flags = [f for r in recipients for f in ("--age", r)]
    result = run("encrypt", str(path), "-i", *flags, *extra)
    assert result.exit_code == 0, result.stderr
    return path


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The CLI as a real process: exit codes, stderr and tracebacks exactly as a user sees them."""
    return subprocess.run(
        [sys.executable, "-m", "sealed_gitops", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def sops(sops_binary: str, work: Path) -> Iterator[object]:
    """Run the real sops in the work folder with the current (isolated) environment."""

    def call(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        return run_sops(list(args), cwd=str(work), **kwargs)  # type: ignore[arg-type]

    yield call
