"""Commit signature verification against a fixed set of armored OpenPGP public keys.

Why: a Repository may say ``verify: {mode: HEAD}``; then a commit is rendered only if its
signature is good and made by one of the keys its owner listed, never by whatever happens to be in
a keyring. So every verification runs gpg in a fresh, private ``GNUPGHOME`` holding only those
keys, reads gpg's machine-readable ``--status-fd`` lines (not its prose), and kills the agent and
removes the home afterwards.

The signature is taken from the commit object itself (its ``gpgsig`` header), and the signed
payload is the object without that header, which is exactly what ``git verify-commit`` checks.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sealed_gitops.errors import ConfigError, VerificationFailed

__all__ = ["Verification", "VerifyMode", "split_signature", "verify_commit"]

#: Seconds any one gpg invocation may take (import or verify; no network is involved).
GPG_TIMEOUT = 30


class VerifyMode(StrEnum):
    OFF = "off"
    HEAD = "HEAD"


@dataclass(frozen=True, repr=False)
class Verification:
    """What to verify and with which keys: ``public_keys`` are ASCII-armored OpenPGP blocks."""

    mode: VerifyMode = VerifyMode.OFF
    public_keys: Sequence[bytes] = ()

    @classmethod
    def head(cls, *public_keys: bytes) -> Verification:
        return cls(mode=VerifyMode.HEAD, public_keys=tuple(public_keys))

    @classmethod
    def from_spec(cls, mode: str | None, keys: Mapping[str, bytes] | None) -> Verification:
        """From a Repository's ``verify.mode`` and the data of its ``verify.secretRef`` Secret,
        whose every entry is an armored public key (Flux's layout; entry names are free)."""
        if mode is None or mode.lower() in ("", "off", "none"):
            return cls()
        if mode.lower() != "head":
            raise ConfigError(f"unsupported verification mode {mode!r} (use HEAD or off)")
        return cls(mode=VerifyMode.HEAD, public_keys=tuple((keys or {}).values()))

    def __post_init__(self) -> None:
        if self.mode is VerifyMode.HEAD and not self.public_keys:
            raise ConfigError("signature verification is on but no public keys are given")
        for key in self.public_keys:
            if b"PRIVATE KEY" in key:
                raise ConfigError("verification keys must be public keys, not private ones")

    def __repr__(self) -> str:
        return f"Verification(mode={self.mode.value}, keys={len(self.public_keys)})"


def split_signature(raw: bytes) -> tuple[bytes | None, bytes]:
    """Split a raw commit object into (signature or None, the payload the signature covers)."""
    header, sep, body = raw.partition(b"\n\n")
    kept: list[bytes] = []
    signature: list[bytes] = []
    in_sig = False
    for line in header.split(b"\n"):
        if line.startswith(b"gpgsig "):
            in_sig = True
            signature.append(line[len(b"gpgsig ") :])
        elif in_sig and line.startswith(b" "):
            signature.append(line[1:])
        else:
            in_sig = False
            kept.append(line)
    payload = b"\n".join(kept) + sep + body
    return (b"\n".join(signature) + b"\n" if signature else None), payload


def _gpg(
    home: Path, args: list[str], *, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--status-fd", "1", *args],
            input=stdin,
            capture_output=True,
            timeout=GPG_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise VerificationFailed(f"gpg did not finish within {GPG_TIMEOUT}s") from exc
    except OSError as exc:
        raise VerificationFailed(f"cannot run gpg: {exc.strerror}") from exc


def _status(output: bytes) -> list[list[str]]:
    lines = []
    for line in output.decode("utf-8", "replace").splitlines():
        if line.startswith("[GNUPG:] "):
            lines.append(line[len("[GNUPG:] ") :].split(" "))
    return lines


def verify_commit(sha: str, raw: bytes, verification: Verification) -> str | None:
    """Check commit ``sha``'s signature; return the signer's primary key fingerprint.

    Returns ``None`` when verification is off. Raises :class:`VerificationFailed` naming the commit
    and the reason when the commit is unsigned, the signature is bad, or the signer is not one of
    the given keys (or is expired or revoked).
    """
    if verification.mode is VerifyMode.OFF:
        return None
    signature, payload = split_signature(raw)
    if signature is None:
        raise VerificationFailed(f"commit {sha} is not signed")
    if b"BEGIN PGP SIGNATURE" not in signature:
        raise VerificationFailed(f"commit {sha} has a signature that is not OpenPGP")
    home = Path(tempfile.mkdtemp(prefix="sg-gpg-"))  # short path: gpg's socket names are limited
    try:
        imported = _gpg(home, ["--import"], stdin=b"\n".join(verification.public_keys))
        if not any(s[0] == "IMPORT_OK" for s in _status(imported.stdout)):
            raise ConfigError("none of the verification public keys could be imported")
        (home / "sig.asc").write_bytes(signature)
        (home / "payload").write_bytes(payload)
        result = _gpg(home, ["--verify", str(home / "sig.asc"), str(home / "payload")])
        return _judge(sha, _status(result.stdout))
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"],
            capture_output=True,
            timeout=GPG_TIMEOUT,
            check=False,
        )
        shutil.rmtree(home, ignore_errors=True)


def _judge(sha: str, status: list[list[str]]) -> str:
    """Turn gpg's status lines into the signer fingerprint or a clear refusal."""
    kinds = {s[0]: s for s in status}
    if "ERRSIG" in kinds:
        errsig = kinds["ERRSIG"]
        key_id = errsig[1] if len(errsig) > 1 else "?"
        if "NO_PUBKEY" in kinds or (len(errsig) > 6 and errsig[6] == "9"):
            raise VerificationFailed(f"commit {sha} is signed by an unknown key {key_id}")
        raise VerificationFailed(f"commit {sha}: the signature cannot be checked (key {key_id})")
    if "BADSIG" in kinds:
        raise VerificationFailed(f"commit {sha} has a bad signature (the commit was altered)")
    for refusal, why in (
        ("EXPKEYSIG", "the signing key has expired"),
        ("REVKEYSIG", "the signing key is revoked"),
        ("EXPSIG", "the signature has expired"),
    ):
        if refusal in kinds:
            raise VerificationFailed(f"commit {sha}: {why}")
    valid = kinds.get("VALIDSIG")
    if "GOODSIG" not in kinds or valid is None:
        raise VerificationFailed(f"commit {sha}: the signature could not be verified")
    # VALIDSIG <sig-fpr> <date> <ts> <expire> <ver> <rsv> <pk-algo> <hash> <class> <primary-fpr>
    return valid[10] if len(valid) > 10 else valid[1]
