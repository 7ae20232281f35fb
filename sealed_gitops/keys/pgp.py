"""PGP master keys for SOPS through gpg (python-gnupg): wrap for a fingerprint, unwrap in a home.

Why gpg and not a pure-Python OpenPGP: users' private keys live in a GnuPG home, often behind
gpg-agent or a smartcard, and sops itself falls back to the gpg binary. Only gpg can reach them.

A sops ``pgp`` stanza is ``{created_at, enc, fp}``: ``enc`` is an ASCII-armoured OpenPGP message
whose plaintext is the raw 32-byte data key (or a Shamir share), ``fp`` the fingerprint the user
named, ``created_at`` RFC 3339 UTC.

Every gnupg call goes through this module so its failures become :class:`KeyProviderError` or
:class:`NoMatchingKey` here. python-gnupg logs the bytes it reads from gpg's stdout (the decrypted
data key) and imported key material at DEBUG; its logger is capped at WARNING below so a debug log
level set for the whole process can never print a key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sealed_gitops.crypto.sops.masterkey import KeyStanza
from sealed_gitops.errors import ConfigError, IntegrityError, KeyProviderError, NoMatchingKey

__all__ = [
    "PGP_KIND",
    "GnuPG",
    "PgpMasterKey",
    "PgpUnwrapper",
    "normalize_fingerprint",
]

PGP_KIND = "pgp"

# See the module docstring: python-gnupg logs decrypted bytes and imported keys at DEBUG.
logging.getLogger("gnupg").setLevel(logging.WARNING)

#: Arguments that keep gpg from ever waiting for a human: the operator has no terminal, and a
#: pinentry prompt would hang a reconcile. A passphrase-protected key then fails at once instead.
_NON_INTERACTIVE = ["--batch", "--pinentry-mode", "loopback"]


def normalize_fingerprint(fp: str) -> str:
    """Upper-case hex without spaces or a ``0x`` prefix: how fingerprints are compared here."""
    text = fp.strip().replace(" ", "")
    if text[:2].lower() == "0x":
        text = text[2:]
    return text.upper()


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: gpg's words for a message that was damaged in transit or tampered with.
_CORRUPT_MARKERS = (
    "CRC error",
    "BADMDC",
    "invalid packet",
    "invalid armor",
    "no valid OpenPGP data",
    "Bad session key",
    "packet(s) with unknown",
)


def _status_summary(result: Any) -> str:
    """A one-line reason from a python-gnupg result; gpg's status text carries no key material."""
    status = getattr(result, "status", None) or ""
    problems = getattr(result, "problems", None) or []
    reasons = [str(status)] if status else []
    reasons += [str(p.get("status", "")) for p in problems if isinstance(p, dict)]
    if not reasons:
        # gpg's human messages ("gpg: decryption failed: No secret key") name keys, never data.
        lines = [
            line.strip()
            for line in str(getattr(result, "stderr", "") or "").splitlines()
            if line.startswith("gpg: ")
        ]
        reasons = lines[-1:]
    return "; ".join(r for r in reasons if r) or "gpg failed"


@dataclass
class GnuPG:
    """One GnuPG home and the python-gnupg handle on it, shared by the keys that use it.

    ``home`` None means gpg's own default (``$GNUPGHOME``, else ``~/.gnupg``), as sops does.
    The handle is created lazily: building it runs ``gpg --version``.
    """

    home: str | None = None
    interactive: bool = False
    binary: str = "gpg"
    env: Mapping[str, str] | None = None
    #: a home this process made (from a Kubernetes Secret): :meth:`close` deletes it
    temporary: bool = False
    _gpg: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def gpg(self) -> Any:
        with self._lock:
            if self._gpg is None:
                if self.home is not None and not Path(self.home).is_dir():
                    raise ConfigError(f"GNUPGHOME {self.home} does not exist")
                # Imported here, not at the top: python-gnupg pulls in email, socket and
                # subprocess (~6 ms), and every sops command imports this module for the
                # class alone, while only files with a PGP key ever start gpg (issue 16).
                import gnupg

                try:
                    self._gpg = gnupg.GPG(
                        gpgbinary=self.binary,
                        gnupghome=self.home,
                        env=dict(self.env) if self.env is not None else None,
                    )
                except (OSError, ValueError, RuntimeError) as exc:
                    raise KeyProviderError(f"cannot start gpg ({self.binary})") from exc
            return self._gpg

    @property
    def extra_args(self) -> list[str]:
        return [] if self.interactive else list(_NON_INTERACTIVE)

    def import_keys(self, armored: str | bytes) -> list[str]:
        """Import public or private keys; return the fingerprints gpg reports."""
        try:
            result = self.gpg.import_keys(armored, extra_args=self.extra_args)
        except (OSError, ValueError) as exc:
            raise KeyProviderError("gpg could not import keys") from exc
        fingerprints = [normalize_fingerprint(f) for f in (result.fingerprints or [])]
        if not fingerprints:
            raise KeyProviderError("gpg imported no key from the given data")
        # dict.fromkeys: a secret key import reports the fingerprint twice.
        return list(dict.fromkeys(fingerprints))

    def key_fingerprints(self, *, secret: bool) -> frozenset[str]:
        """Fingerprints of every key and subkey in the home (secret ones, or public ones)."""
        try:
            keys = self.gpg.list_keys(secret=secret)
        except (OSError, ValueError) as exc:
            raise KeyProviderError("gpg could not list keys") from exc
        found: set[str] = set()
        for key in keys:
            if key.get("fingerprint"):
                found.add(normalize_fingerprint(key["fingerprint"]))
            for sub in key.get("subkeys") or []:
                # python-gnupg subkey rows: [keyid, capabilities, fingerprint, grip]
                if len(sub) > 2 and sub[2]:
                    found.add(normalize_fingerprint(sub[2]))
        return frozenset(found)

    def close(self) -> None:
        """Stop this home's gpg-agent and, if it is a temporary home, delete it.

        A no-op for the default home: that is the user's, and their agent is not ours to stop.
        """
        if self.home is None:
            return
        import shutil
        import subprocess

        env = dict(os.environ if self.env is None else self.env)
        env["GNUPGHOME"] = self.home
        # Best effort: an agent whose socket directory is gone exits on its own.
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                ["gpgconf", "--kill", "gpg-agent"],
                env=env,
                capture_output=True,
                timeout=10,
                check=False,
            )
        if self.temporary:
            shutil.rmtree(self.home, ignore_errors=True)


class PgpMasterKey:
    """A PGP recipient (:class:`~sealed_gitops.crypto.sops.masterkey.MasterKey`).

    The public key must be in the GnuPG home; :meth:`from_armored` imports it first.
    """

    kind = PGP_KIND

    def __init__(self, fingerprint: str, *, gnupg_home: GnuPG | None = None) -> None:
        fp = normalize_fingerprint(fingerprint)
        if not fp or any(c not in "0123456789ABCDEF" for c in fp):
            raise ConfigError(f"not a PGP fingerprint: {fingerprint!r}")
        self.fingerprint = fp
        self.gnupg = gnupg_home or GnuPG()

    @classmethod
    def from_armored(cls, armored: str | bytes, *, gnupg_home: GnuPG) -> PgpMasterKey:
        """Import an armoured public key into ``gnupg_home`` and return a key for it."""
        fingerprints = gnupg_home.import_keys(armored)
        return cls(fingerprints[0], gnupg_home=gnupg_home)

    @property
    def key_id(self) -> str:
        return self.fingerprint

    def wrap(self, data_key: bytes) -> KeyStanza:
        try:
            result = self.gnupg.gpg.encrypt(
                data_key,
                [self.fingerprint],
                armor=True,
                # sops does not check web-of-trust either: naming the fingerprint is the trust.
                always_trust=True,
                extra_args=self.gnupg.extra_args,
            )
        except (OSError, ValueError) as exc:
            raise KeyProviderError("gpg encrypt failed", key_id=self.fingerprint) from exc
        if not result.ok:
            reason = _status_summary(result)
            if "invalid recipient" in reason or "no public key" in reason:
                home = self.gnupg.home or "the default GNUPGHOME"
                reason = f"no usable public key for this fingerprint in {home}"
            raise KeyProviderError(f"gpg encrypt failed: {reason}", key_id=self.fingerprint)
        armored = result.data.decode("ascii")
        return KeyStanza(
            kind=PGP_KIND,
            data={"created_at": _now_rfc3339(), "enc": armored, "fp": self.fingerprint},
        )

    def __repr__(self) -> str:
        return f"PgpMasterKey({self.fingerprint})"


class PgpUnwrapper:
    """Unwraps ``pgp`` stanzas with the secret keys of one GnuPG home (a keyring provider).

    Before starting gpg it checks that the home holds a secret key whose fingerprint (or a
    subkey's) ends with the stanza's ``fp``: a stanza for somebody else's key costs no process.
    """

    kinds = frozenset({PGP_KIND})

    def __init__(self, *, gnupg_home: GnuPG | None = None, owns_home: bool = False) -> None:
        self.gnupg = gnupg_home or GnuPG()
        self._owns_home = owns_home
        self._secret: frozenset[str] | None = None

    def secret_fingerprints(self) -> frozenset[str]:
        if self._secret is None:
            self._secret = self.gnupg.key_fingerprints(secret=True)
        return self._secret

    def _holds(self, fp: str) -> bool:
        wanted = normalize_fingerprint(fp)
        if not wanted:
            return True  # no fp to filter on: let gpg find out
        return any(
            have.endswith(wanted) or wanted.endswith(have) for have in self.secret_fingerprints()
        )

    def unwrap(self, stanza: KeyStanza) -> bytes | None:
        if stanza.kind != PGP_KIND:
            return None
        fp = str(stanza.data.get("fp", ""))
        if not self._holds(fp):
            return None
        enc = stanza.enc
        if "-----BEGIN PGP MESSAGE-----" not in enc:
            raise IntegrityError("pgp stanza holds no armoured PGP message", key_id=fp or None)
        try:
            result = self.gnupg.gpg.decrypt(enc, extra_args=self.gnupg.extra_args)
        except (OSError, ValueError) as exc:
            raise KeyProviderError("gpg decrypt failed", key_id=fp or None) from exc
        if result.ok:
            return bytes(result.data)
        reason = _status_summary(result)
        stderr = str(getattr(result, "stderr", "") or "")
        if "NO_SECKEY" in stderr and "DECRYPTION_OKAY" not in stderr:
            # Encrypted to a key we do not hold after all (the fp filter matched loosely).
            return None
        if any(marker in stderr for marker in _CORRUPT_MARKERS):
            raise IntegrityError("pgp message in the stanza is corrupt", key_id=fp or None)
        raise KeyProviderError(f"gpg decrypt failed: {reason}", key_id=fp or None)

    def close(self) -> None:
        if self._owns_home:
            self.gnupg.close()

    def __repr__(self) -> str:
        return f"PgpUnwrapper(home={self.gnupg.home or 'default'})"


def require_secret_key(unwrapper: PgpUnwrapper, fingerprint: str) -> None:
    """Raise :class:`NoMatchingKey` unless the home holds the secret key for ``fingerprint``."""
    if not unwrapper._holds(fingerprint):
        raise NoMatchingKey("no secret PGP key in the GnuPG home", key_id=fingerprint)
