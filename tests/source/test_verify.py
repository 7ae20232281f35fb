"""Commit signature verification: only commits signed by a listed key are handed out."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealed_gitops.errors import ConfigError, VerificationFailed
from sealed_gitops.source import Ref, Verification, VerifyMode, fetch
from sealed_gitops.source.verify import split_signature
from tests.source.conftest import SignedOrigin, Signers


def test_a_commit_signed_by_a_listed_key_is_accepted_and_names_its_signer(
    signed_origin: SignedOrigin, signers: Signers, tmp_path: Path
) -> None:
    artifact = fetch(
        signed_origin.url,
        Ref(branch="signed"),
        cache_dir=tmp_path,
        verify=Verification.head(signers.public(signers.trusted)),
    )
    assert artifact.commit == signed_origin.commits["signed"]
    assert artifact.signer == signers.trusted


@pytest.mark.parametrize(
    ("branch", "reason"),
    [
        ("unsigned", "is not signed"),
        ("stranger", "signed by an unknown key"),
    ],
)
def test_unsigned_or_unknown_signer_is_refused_before_checkout(
    signed_origin: SignedOrigin, signers: Signers, tmp_path: Path, branch: str, reason: str
) -> None:
    with pytest.raises(VerificationFailed) as info:
        fetch(
            signed_origin.url,
            Ref(branch=branch),
            cache_dir=tmp_path,
            verify=Verification.head(signers.public(signers.trusted)),
        )
    message = str(info.value)
    assert reason in message
    assert signed_origin.commits[branch] in message  # names the commit
    assert info.value.code == "VerificationFailed"
    # Never rendered: no checkout of the refused commit exists.
    assert not list(tmp_path.glob(f"*/worktrees/{signed_origin.commits[branch]}"))


def test_verification_off_accepts_an_unsigned_commit(
    signed_origin: SignedOrigin, tmp_path: Path
) -> None:
    artifact = fetch(signed_origin.url, Ref(branch="unsigned"), cache_dir=tmp_path)
    assert artifact.signer is None


def test_a_tampered_signature_is_refused(signers: Signers) -> None:
    """Payload altered after signing: gpg reports BADSIG, we refuse."""
    from sealed_gitops.source.verify import verify_commit

    home = signers.home
    payload = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x> 1 +0000\n" \
        b"committer A <a@x> 1 +0000\n\nmessage\n"  # fmt: skip
    sig = home.gpg("--detach-sign", "--armor", "-u", signers.trusted, input=payload).stdout
    header, _, body = payload.partition(b"\n\n")
    sig_lines = sig.strip().split(b"\n")
    gpgsig = b"gpgsig " + b"\n ".join(sig_lines)
    raw_good = header + b"\n" + gpgsig + b"\n\n" + body
    verification = Verification.head(signers.public(signers.trusted))
    assert verify_commit("0" * 40, raw_good, verification) == signers.trusted
    with pytest.raises(VerificationFailed, match="bad signature"):
        verify_commit("0" * 40, raw_good.replace(b"message", b"massage"), verification)


def test_split_signature_restores_the_signed_payload() -> None:
    raw = b"tree t\nparent p\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\nmergetag x\n\nmsg\n"  # noqa: E501
    signature, payload = split_signature(raw)
    assert signature == b"-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n"
    assert payload == b"tree t\nparent p\nmergetag x\n\nmsg\n"
    assert split_signature(b"tree t\n\nmsg\n") == (None, b"tree t\n\nmsg\n")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ((), "no public keys"),
        ((b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n...",), "public keys, not private"),
    ],
)
def test_bad_verification_settings_are_config_errors(keys: tuple[bytes, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Verification(mode=VerifyMode.HEAD, public_keys=keys)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(None, VerifyMode.OFF), ("off", VerifyMode.OFF), ("HEAD", VerifyMode.HEAD)],
)
def test_verification_from_the_repository_spec(mode: str | None, expected: VerifyMode) -> None:
    assert Verification.from_spec(mode, {"a.asc": b"key"}).mode is expected


def test_an_unsupported_verification_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported verification mode 'Tag'"):
        Verification.from_spec("Tag", {"a.asc": b"key"})
    with pytest.raises(ConfigError, match="no public keys"):
        Verification.from_spec("HEAD", {})


def test_keys_that_are_not_openpgp_are_refused(signed_origin: SignedOrigin, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="could be imported"):
        fetch(
            signed_origin.url,
            Ref(branch="signed"),
            cache_dir=tmp_path,
            verify=Verification.head(b"not a key"),
        )
