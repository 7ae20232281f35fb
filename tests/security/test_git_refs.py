"""A Repository's pinned commit is a full sha1 and nothing more (issue 11, noticed by the review).

``$`` in Python's ``re`` also matches before a final newline, so ``<sha>\\n`` passed the check
and reached git's argv; the check now matches the whole string.
"""

from __future__ import annotations

import pytest

from sealed_gitops.errors import ConfigError
from sealed_gitops.source import Ref

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("commit", [SHA + "\n", SHA + " ", "\n" + SHA, SHA.upper(), SHA[:39]])
def test_a_commit_with_anything_around_it_is_refused(commit: str) -> None:
    with pytest.raises(ConfigError, match="full 40-character sha1"):
        Ref(commit=commit)


def test_a_bare_sha_with_a_newline_is_neither_a_commit_nor_a_branch() -> None:
    assert Ref.parse(SHA).commit == SHA
    with pytest.raises(ConfigError, match="invalid branch name"):
        Ref.parse(SHA + "\n")


def test_a_full_sha_is_accepted() -> None:
    assert Ref(commit=SHA).commit == SHA
