"""A throw-away GnuPG home for tests: generated or imported keys, its gpg-agent killed on exit.

Why: PGP tests must run against the real gpg, and must never read or write the user's keyring.
Each home is a fresh temporary directory (mode 0700, as gpg insists); leaving the block runs
``gpgconf --kill gpg-agent`` for that home and deletes it, so no agent outlives the test run.

Generated keys use ed25519/cv25519 without a passphrase: generation takes milliseconds, where
RSA-4096 would take seconds per key.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GnupgHome", "gnupg_home"]


@dataclass
class GnupgHome:
    """A temporary GNUPGHOME and helpers to run gpg in it."""

    path: Path

    @property
    def env(self) -> dict[str, str]:
        """The current environment with ``GNUPGHOME`` pointing here (for sops or gpg)."""
        env = dict(os.environ)
        env["GNUPGHOME"] = str(self.path)
        return env

    def gpg(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            env=self.env,
            input=input,
            capture_output=True,
            check=True,
            timeout=60,
        )

    def generate_key(self, uid: str = "sealed-gitops test <test@example.invalid>") -> str:
        """Make a primary ed25519 key with a cv25519 encryption subkey; return its fingerprint."""
        self.gpg("--quick-gen-key", uid, "ed25519", "cert,sign", "never")
        fingerprint = self.fingerprints(uid)[0]
        self.gpg("--quick-add-key", fingerprint, "cv25519", "encr", "never")
        return fingerprint

    def import_key(self, armored: bytes | str) -> list[str]:
        """Import keys; return the fingerprints of the primary keys now in the home."""
        data = armored.encode() if isinstance(armored, str) else armored
        self.gpg("--import", input=data)
        return self.fingerprints()

    def fingerprints(self, query: str | None = None) -> list[str]:
        args = ["--with-colons", "--list-keys"]
        if query:
            args.append(query)
        out = self.gpg(*args).stdout.decode()
        found: list[str] = []
        expect_primary = False
        for line in out.splitlines():
            fields = line.split(":")
            if fields[0] == "pub":
                expect_primary = True
            elif fields[0] == "fpr" and expect_primary:
                found.append(fields[9])
                expect_primary = False
            elif fields[0] == "sub":
                expect_primary = False
        return found

    def export_public(self, fingerprint: str) -> bytes:
        return self.gpg("--armor", "--export", fingerprint).stdout

    def export_secret(self, fingerprint: str) -> bytes:
        return self.gpg("--armor", "--export-secret-keys", fingerprint).stdout

    def kill_agent(self) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["gpgconf", "--kill", "gpg-agent"],
                env=self.env,
                capture_output=True,
                timeout=10,
                check=False,
            )


@contextlib.contextmanager
def gnupg_home(
    *, import_keys: Mapping[str, bytes] | None = None, generate: int = 0
) -> Iterator[GnupgHome]:
    """A temporary GNUPGHOME, optionally with imported and generated keys; cleaned up on exit.

    Short paths matter: gpg-agent's socket path must fit in ``sun_path`` (108 bytes), so the
    home is made directly under the system temp directory.
    """
    path = Path(tempfile.mkdtemp(prefix="sg-gpg-"))
    path.chmod(0o700)
    home = GnupgHome(path=path)
    try:
        for armored in (import_keys or {}).values():
            home.import_key(armored)
        for n in range(generate):
            home.generate_key(f"sealed-gitops test {n} <test{n}@example.invalid>")
        yield home
    finally:
        home.kill_agent()
        shutil.rmtree(path, ignore_errors=True)
