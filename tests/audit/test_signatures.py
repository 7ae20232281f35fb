"""Commit signatures in audit records: good, bad, unknown-key and none, with the signer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sealed_gitops.audit import SignatureStatus, audit_history
from sealed_gitops.crypto.sops import encrypt_bytes
from sealed_gitops.testing.gnupg import GnupgHome, gnupg_home

from .conftest import AgeKeys, History, init_repo, secret_yaml


@pytest.fixture(scope="module")
def stranger_public() -> Iterator[bytes]:
    with gnupg_home() as home:
        yield home.export_public(home.generate_key("Mallory <mallory@example.invalid>"))


@pytest.mark.parametrize(
    ("step", "trusted", "expected"),
    [
        ("bob-password", "signer", SignatureStatus.GOOD),
        ("add-sealed", "signer", SignatureStatus.GOOD),
        ("add-db", "signer", SignatureStatus.NONE),
        ("bob-password", "stranger", SignatureStatus.UNKNOWN_KEY),
        ("add-db", "stranger", SignatureStatus.NONE),
    ],
)
def test_signature_status_against_given_keys(
    history: History, stranger_public: bytes, step: str, trusted: str,
    expected: SignatureStatus,
) -> None:
    keys = [history.signer_public if trusted == "signer" else stranger_public]
    records = audit_history(history.repo.path, signer_keys=keys).records
    rows = [r for r in records if r.commit == history.commits[step]]
    assert rows
    assert {r.signature for r in rows} == {expected}
    signer = {r.signer for r in rows}
    if expected is SignatureStatus.GOOD:
        assert signer == {history.signer_fingerprint}
    elif expected is SignatureStatus.NONE:
        assert signer == {None}


def test_altered_signed_commit_is_bad(
    tmp_path: Path, age_keys: AgeKeys, signing_home: tuple[GnupgHome, str]
) -> None:
    home, fingerprint = signing_home
    repo = init_repo(tmp_path / "repo")
    repo.gnupghome = home.path
    repo.write("s.yaml", encrypt_bytes(secret_yaml("s", {"k": "CANARY-7f3a-x"}),
                                       key_groups=[[age_keys.recipients[0]]], file="s.yaml"))
    repo.commit("signed", who="Bob", day=1, sign_with=fingerprint)
    raw = repo.git("cat-file", "commit", "HEAD")
    forged = raw.replace("signed\n", "signed, then altered\n")
    path = tmp_path / "forged"
    path.write_text(forged)
    sha = repo.git("hash-object", "-t", "commit", "-w", str(path)).strip()
    repo.git("update-ref", "refs/heads/main", sha)
    records = audit_history(repo.path, signer_keys=[home.export_public(fingerprint)]).records
    assert records
    assert {r.signature for r in records} == {SignatureStatus.BAD}
    assert {r.commit for r in records} == {sha}
