"""Issue 11, finding 13: stable ciphertext must not show that two list items are equal.

``set``, ``unset``, ``edit``, ``updatekeys`` and the merge driver reuse a value's previous
ciphertext while its plaintext is unchanged, so a Git diff shows only what changed. The reuse was
keyed by the additional data (the path of map keys: list items add nothing to it, as in sops)
and the plaintext, so a value that moved within a list took its old ciphertext along: anyone
reading the history saw that the new first item equals the old second one. The rule now is the
same position (document, map keys *and* list indexes) and the same plaintext; anything else gets
a fresh IV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.crypto.age import AgeIdentities
from sealed_gitops.crypto.sops import encrypt_bytes, reencrypt_plain, set_value
from sealed_gitops.testing.sops_tool import run_sops
from tests.conftest_tools import AgeKey


@pytest.fixture(scope="module")
def identities(age_keys: list[AgeKey]) -> AgeIdentities:
    return AgeIdentities.from_text(age_keys[0].file.read_text())


def _ciphertexts(encrypted: bytes) -> dict[str, str]:
    """Every ``ENC[...]`` of a (multi-document) file by its position, metadata left out."""
    out: dict[str, str] = {}

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")
        elif isinstance(node, str) and node.startswith("ENC["):
            out[where] = node

    for n, doc in enumerate(yaml.safe_load_all(encrypted)):
        walk({k: v for k, v in doc.items() if k != "sops"}, f"doc{n}")
    return out


def _moved(before: bytes, after: bytes) -> dict[str, str]:
    """Ciphertexts of ``after`` that ``before`` held at another position: each one tells a
    reader of the history which old value a new position holds."""
    old = {ct: where for where, ct in _ciphertexts(before).items()}
    return {
        where: old[ct]
        for where, ct in _ciphertexts(after).items()
        if ct in old and old[ct] != where
    }


@pytest.fixture
def make(age_keys: list[AgeKey], sops_binary: str, tmp_path: Path) -> Any:
    def _make(plain: bytes, *, maker: str) -> bytes:
        if maker == "ours":
            return encrypt_bytes(plain, key_groups=[[age_keys[0].recipient]], file="f.yaml")
        (tmp_path / "f.yaml").write_bytes(plain)
        env = {"HOME": str(tmp_path), "SOPS_DISABLE_VERSION_CHECK": "true"}
        done = run_sops(["-e", "--age", age_keys[0].public, "f.yaml"], env=env, cwd=str(tmp_path))
        return done.stdout

    return _make


@pytest.mark.parametrize("maker", ["ours", "sops"])
@pytest.mark.parametrize(
    ("before", "after"),
    [
        # swapped: each item would carry its ciphertext to the other's position
        (b"hosts:\n    - alpha-pw\n    - beta-pw\n", b"hosts:\n    - beta-pw\n    - alpha-pw\n"),
        # duplicated: the first item now equals the old second one
        (b"hosts:\n    - alpha-pw\n    - beta-pw\n", b"hosts:\n    - beta-pw\n    - beta-pw\n"),
        # the first item removed: the rest shift up
        (b"l:\n    - x-pw\n    - y-pw\n    - z-pw\n", b"l:\n    - y-pw\n    - z-pw\n"),
        # an item inserted at the front of a list of maps
        (b"users:\n    - pw: one\n", b"users:\n    - pw: two\n    - pw: one\n"),
        # a document inserted before another (the path restarts in every document)
        (b"a: same-pw\n", b"a: other-pw\n---\na: same-pw\n"),
    ],
    ids=["swap", "duplicate", "remove-first", "insert-in-list-of-maps", "insert-document"],
)
def test_a_value_that_moves_gets_a_fresh_ciphertext(
    *, before: bytes, after: bytes, maker: str, make: Any, identities: AgeIdentities
) -> None:
    encrypted = make(before, maker=maker)
    out = reencrypt_plain(encrypted, after, unwrapper=identities, file="f.yaml")
    assert out is not None
    assert _moved(encrypted, out) == {}


def test_a_moved_value_is_not_reused_through_set(
    age_keys: list[AgeKey], identities: AgeIdentities
) -> None:
    encrypted = encrypt_bytes(
        b"hosts:\n    - alpha-pw\n    - beta-pw\n",
        key_groups=[[age_keys[0].recipient]],
        file="f.yaml",
    )
    out = set_value(encrypted, '["hosts"][0]', '"beta-pw"', unwrapper=identities, file="f.yaml")
    assert _moved(encrypted, out) == {}


PLAIN = b"""\
db:
    password: s3cr3t-pw
    user: admin
hosts:
    - alpha
    - beta
    - gamma
users:
    - name: a
      pw: one
    - name: b
      pw: two
"""


@pytest.mark.parametrize("maker", ["ours", "sops"])
def test_values_that_stay_at_their_position_keep_their_ciphertext(
    *, maker: str, make: Any, identities: AgeIdentities
) -> None:
    # The promise of stable ciphertext is unchanged where nothing moves: only the edited value
    # (and an appended one) differ, whatever the list holds.
    encrypted = make(PLAIN, maker=maker)
    edited = PLAIN.replace(b"- beta", b"- BETA").replace(b"pw: two", b"pw: two\n    - name: c")
    out = reencrypt_plain(encrypted, edited, unwrapper=identities, file="f.yaml")
    assert out is not None
    before, after = _ciphertexts(encrypted), _ciphertexts(out)
    changed = {where for where in after if before.get(where) != after[where]}
    assert changed == {"doc0/hosts[1]", "doc0/users[2]/name"}
