"""Path rules' answers for map keys are kept across walks (crypto/sops/tree.py): kept per
pattern, for short keys only, in a bounded memo, and never changing what is encrypted."""

from __future__ import annotations

import pytest

from sealed_gitops.crypto.sops import tree
from sealed_gitops.crypto.sops.tree import Rules, Selector


@pytest.fixture(autouse=True)
def empty_memo() -> None:
    tree._KEY_VERDICTS.clear()


@pytest.mark.parametrize(
    ("rules", "path", "expected"),
    [
        (Rules(encrypted_regex="^(data|stringData)$"), ("data", "password"), True),
        (Rules(encrypted_regex="^(data|stringData)$"), ("metadata", "name"), False),
        (Rules(encrypted_regex="^password$"), ("data", "password"), True),
        (Rules(encrypted_regex="^password$"), ("data", "user"), False),
        (Rules(unencrypted_regex="^metadata$"), ("metadata", "name"), False),
        (Rules(unencrypted_regex="^metadata$"), ("data", "password"), True),
    ],
)
def test_a_key_is_judged_by_each_files_own_pattern(
    rules: Rules, path: tuple[str, ...], expected: bool
) -> None:
    # another file's rule answered for the same keys first: its answers must not leak over
    Selector(Rules(encrypted_regex="^(metadata|name|user|password|data)$")).should_encrypt(
        path, [], False
    )
    assert Selector(rules).should_encrypt(path, [], False) is expected
    assert Selector(rules).should_encrypt(path, [], False) is expected  # from the memo


def test_long_keys_are_not_kept_and_the_memo_stays_bounded() -> None:
    selector = Selector(Rules(encrypted_regex="^k"))
    long_key = "k" * (tree._KEY_VERDICT_LENGTH + 1)
    assert selector.should_encrypt((long_key,), [], False)
    assert not any(key == long_key for _, key in tree._KEY_VERDICTS)
    for n in range(tree._KEY_VERDICTS_MAX + 10):
        assert selector.should_encrypt((f"k{n}",), [], False)
    assert len(tree._KEY_VERDICTS) <= tree._KEY_VERDICTS_MAX


def test_comments_are_never_kept() -> None:
    rules = Rules(unencrypted_comment_regex="sops:plain")
    # a comment rule asks about decrypted comments (plaintext): nothing of it outlives the walk
    assert not Selector(rules).should_encrypt(("data", "x"), [["sops:plain secret"]], False)
    assert tree._KEY_VERDICTS == {}
