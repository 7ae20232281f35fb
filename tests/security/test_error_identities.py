"""Invariant 8 in error messages: a value that equals a file path, a place in a file or a key id
never blanks them; the reason is still redacted.

Seen (issue 12's sweep of published fixtures): `sealed-gitops verify kustomize-sops` printed
`error: [REDACTED]/z-plain.yaml` because a decrypted value was "kustomize-sops".
"""

from __future__ import annotations

from sealed_gitops.errors import MacMismatch, SealedGitopsError
from sealed_gitops.redact import MASK, register


def test_the_file_location_and_key_stay_while_the_reason_is_redacted() -> None:
    register("kustomize-sops")
    register("db-password-0042")
    error = MacMismatch(
        "the value db-password-0042 was changed",
        file="kustomize-sops/z-plain.yaml",
        location="document 0",
        key_id="kustomize-sops",
    )

    text = str(error)

    assert text == (
        f"kustomize-sops/z-plain.yaml (document 0): the value {MASK} was changed "
        "[key kustomize-sops]"
    )


def test_a_file_name_with_a_newline_cannot_forge_a_second_line() -> None:
    text = str(SealedGitopsError("bad", file="a.yaml\nerror: forged"))

    assert "\n" not in text
    assert text.endswith(": bad")
